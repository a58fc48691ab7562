"""Synthetic capture databases for tests, benchmarks and demos (no camera, no model).

(A synthetic batch to go with them is :func:`testkit.batch.write_batch`.)

:func:`write_capture_db` fills a ``captures/<session>.sqlite`` with the schema of
``contracts.capturedb``: a digital table and frames whose tiles are classified
at random with fixed odds, so that the report has something to show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts.capturedb import create_db, encode_top5
from contracts.manifest import Batch


@dataclass(frozen=True)
class Odds:
    """Chance that the capture model is right (top-1) on each kind of image."""

    clean_digital: float = 0.9
    adv_digital: float = 0.2
    clean_photo: float = 0.8
    adv_photo: float = 0.45
    good: float = 0.85


def _top5(rng: np.random.Generator, label: int, right: bool, wrong: int | None = None) -> tuple[list[int], list[float]]:
    """A top-5 with ``label`` first if ``right``, else ``wrong`` (or a random class) first."""
    top1 = label if right else (wrong if wrong is not None else int((label + rng.integers(1, 999)) % 1000))
    others = [int(c) for c in rng.choice(1000, size=8, replace=False) if c not in (top1, label)]
    ids = [top1, *others[:4]]
    if not right and rng.random() < 0.3:
        ids[rng.integers(1, 5)] = label  # sometimes right at top-5 only
    p1 = float(rng.uniform(0.35, 0.98))
    rest = rng.dirichlet(np.ones(4)) * (1 - p1) * 0.9
    return ids, [p1, *(float(x) for x in sorted(rest, reverse=True))]


def write_capture_db(
    path: Path,
    batch: Batch,
    session_id: str = "s1",
    model: str = "lite2",
    n_frames: int = 20,
    tiles_per_frame: int = 16,
    seed: int = 0,
    odds: Odds = Odds(),
    profile: str | None = "office",
    tile_px: tuple[float, float] = (60.0, 200.0),
    angle_deg: tuple[float, float] = (0.0, 40.0),
    input_size: int | None = None,
) -> Path:
    """Write a capture database for ``batch`` with ``n_frames`` frames of ``tiles_per_frame`` tiles each.

    ``tile_px`` and ``angle_deg`` are the uniform ranges the observations' tile
    size and viewing angle are drawn from; ``input_size`` (the model's input side)
    goes into the session config as the capture stage records it.
    """
    rng = np.random.default_rng(seed)
    con = create_db(path)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('batch_id', ?)", (batch.batch_id,))
    con.execute(
        "INSERT INTO sessions (id, batch_id, source, model, model_sha256, provider, profile, seed, started, stopped, "
        "config) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            session_id,
            batch.batch_id,
            "simulate",
            model,
            "0" * 64,
            "CPUExecutionProvider",
            profile,
            seed,
            0.0,
            n_frames / 10.0,
            json.dumps(
                {
                    "min_sharpness": 50.0,
                    "min_tile_px": 80,
                    "printer": "synthetic printer, plain paper",
                    **({"crop_size": input_size, "preprocess": {"input_size": input_size}} if input_size else {}),
                }
            ),
        ),
    )
    tiles = [(it, role) for it in batch.items for role in ("clean", "adv")]
    for it in batch.items:
        for role, p in (("clean", odds.clean_digital), ("adv", odds.adv_digital)):
            ids, probs = _top5(rng, it.label.index, bool(rng.random() < p))
            con.execute("INSERT INTO digital VALUES (?,?,?,?,?)", (session_id, it.id, role, *encode_top5(ids, probs)))
    obs = []
    pos = 0
    for f in range(n_frames):
        sheet = f"{batch.batch_id}/s{f % 4}"
        con.execute("INSERT INTO frames VALUES (?,?,?,?,?)", (session_id, f, f / 10.0, 1, json.dumps([sheet])))
        for _ in range(min(tiles_per_frame, len(tiles))):
            it, role = tiles[pos % len(tiles)]
            pos += 1
            p = odds.clean_photo if role == "clean" else odds.adv_photo
            # a photographed tile that is wrong is mostly wrong in the same way (like the digital adversarial class)
            wrong = (it.label.index + 1 + len(it.id) + (role == "adv")) % 1000 if rng.random() < 0.7 else None
            ids, probs = _top5(rng, it.label.index, bool(rng.random() < p), wrong)
            good = int(rng.random() < odds.good)
            obs.append(
                (
                    session_id,
                    f,
                    sheet,
                    it.id,
                    role,
                    float(rng.uniform(20, 400)),
                    float(rng.uniform(*tile_px)),
                    float(rng.uniform(*angle_deg)),
                    float(rng.uniform(0, 0.05)),
                    good,
                    ids[0],
                    probs[0],
                    *encode_top5(ids, probs),
                )
            )
    con.executemany(
        "INSERT INTO observations (session_id, frame_idx, sheet_id, item_id, role, sharpness, tile_px, angle_deg, "
        "clipped, good, top1, top1_prob, top5_ids, top5_probs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        obs,
    )
    con.commit()
    con.close()
    return path
