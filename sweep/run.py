"""``photoproof sweep``: one artificial transform at a time, at increasing strength.

Section 4 of Kurakin, Goodfellow & Bengio 2016 ("Adversarial examples in the physical
world", https://arxiv.org/abs/1607.02533) measures how much of an adversarial effect
each transform destroys *on its own*: brightness ``X + δ``, contrast ``X · μ``, Gaussian
blur, Gaussian noise and JPEG encoding. This module adds the pose (perspective) and the
printer's tone curve of ``channel.model``. Each transform runs on the digital clean and
adversarial PNG of every item, at the PNG's own resolution (the perturbation's pixel
scale), and the target model's top-5 goes into ``BATCH/sweep.json``, which
``analysis.sweep`` turns into destruction rates. Torch-free (numpy, OpenCV, onnxruntime).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from capture.classify import OnnxClassifier
from capture.digital import classify_images, digital_top5
from contracts.batchdir import capture_dbs
from contracts.capturedb import open_db_readonly
from contracts.errors import UserError
from contracts.images import batch_images
from contracts.labels import target_map
from contracts.manifest import ROLES, load_batch, require_classifier_batch
from contracts.sweep import BASELINE, SweepRecord, read_sweep, sweep_path, write_sweep
from sweep.transforms import RESAMPLED, TRANSFORMS, apply_transform, check_transforms

log = logging.getLogger(__name__)

CHUNK = 64  # images classified per call


def _row(
    transform: str, strength: float, item: str, role: str, model: str, ids: np.ndarray, probs: np.ndarray
) -> SweepRecord:
    return SweepRecord(
        transform, strength, item, role, tuple(int(i) for i in ids), tuple(float(p) for p in probs), model
    )


def _kept_rows(batch_dir: Path, sha256: str, seed: int, redo: set[str]) -> tuple[list[SweepRecord], dict[str, Any]]:
    """Rows and grids of an earlier sweep of the same model and seed, for transforms not run again."""
    try:
        old = read_sweep(batch_dir)
    except UserError as e:
        log.warning("%s; replacing it", e)
        return [], {}
    if old is None:
        return [], {}
    model = old.header.get("model")
    if not isinstance(model, dict) or model.get("sha256") != sha256 or old.header.get("seed") != seed:
        log.warning("%s: an earlier sweep of another model or seed; replacing it", sweep_path(batch_dir))
        return [], {}
    transforms = old.header.get("transforms")
    grids = {k: v for k, v in (transforms if isinstance(transforms, dict) else {}).items() if k not in redo}
    return [r for r in old.rows if r.transform in grids], grids


def run_sweep(
    batch_dir: Path,
    model_path: Path,
    transforms: list[str] | None = None,
    steps: int = 6,
    seed: int = 0,
    classifier: OnnxClassifier | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    label_map: dict[str, str] | None = None,
) -> Path:
    """Sweep each transform on its own over ``steps`` strengths; write ``BATCH/sweep.json`` and return its path.

    Args:
        batch_dir: the batch (``batch.json`` and ``images/``).
        model_path: the ONNX target model (ignored when ``classifier`` is given).
        transforms: names from :data:`TRANSFORMS` (default: :data:`sweep.transforms.DEFAULT_TRANSFORMS`).
        steps: strengths per transform from the identity to the strongest (two-sided
            transforms get ``steps - 1`` on each side of the identity).
        seed: seeds the noise fields and the perspective tilt axes (recorded).
        classifier: an already built classifier (foreign models with flags).
        progress: called as ``progress(transform, done, total)`` after each transform.
        label_map: batch class name -> model class name (``--label-map``); labels map by name
            without it, and the map is recorded in ``sweep.json`` (``labels``) when the sets differ.

    Rows of an earlier ``sweep.json`` for the same model and seed are kept for transforms not run again.
    """
    t0 = time.perf_counter()
    batch_dir = Path(batch_dir)
    names = check_transforms(transforms)
    if not 2 <= int(steps) <= 50:
        raise UserError(f"--levels: expected 2..50 strengths per transform, got {steps}")
    batch = load_batch(batch_dir)
    require_classifier_batch(batch, batch_dir, "sweep")
    clf = classifier or OnnxClassifier(Path(model_path))
    used = {it.label.index for it in batch.items} | {it.target for it in batch.items if it.target is not None}
    lmap = target_map(batch.class_names(), clf.class_names, used, label_map, where=f"--model {clf.path}")
    images = list(batch_images(batch_dir, batch))
    index = {it.id: k for k, it in enumerate(batch.items)}
    rng = np.random.default_rng([int(seed), 0])
    axes = {it.id: float(a) for it, a in zip(batch.items, rng.uniform(0.0, 360.0, len(batch.items)), strict=True)}
    fields: dict[str, np.ndarray] = {}  # one noise field per item (and image shape), shared by its clean and adv PNG

    def z_for(item: str, shape: tuple[int, ...]) -> np.ndarray:
        key = f"{item}|{shape}"
        if key not in fields:
            fields[key] = np.random.default_rng([int(seed), 1, index[item]]).standard_normal(shape, dtype=np.float32)
        return fields[key]

    digital = [
        _row(BASELINE, 0.0, item, role, clf.name, ids, probs)
        for item, role, ids, probs in digital_top5(batch_dir, batch, clf, CHUNK, images)
    ]
    rows, grids = _kept_rows(batch_dir, clf.sha256, int(seed), set(names))
    for done, name in enumerate(names):
        if progress is not None:
            progress(name, done, len(names))
        tr = TRANSFORMS[name]
        grid = tr.grid(int(steps))
        grids[name] = {"unit": tr.unit, "description": tr.description, "strengths": grid}
        jobs = [(s, item, role, im) for s in grid for item, role, im in images]
        outs = [
            apply_transform(
                name, s, im, z_for(item, im.shape) if name == "noise" else None, axes[item], clf.spec.input_size
            )
            for s, item, role, im in jobs
        ]
        ids, probs = classify_images(clf, outs, CHUNK)
        finite = np.isfinite(probs).all(axis=1)
        if not finite.all():
            log.warning(
                "sweep %s: the model gave NaN or infinite outputs on %d of %d images; those are not recorded",
                name,
                int((~finite).sum()),
                len(jobs),
            )
        rows += [
            _row(name, s, item, role, clf.name, ids[k], probs[k])
            for k, (s, item, role, _) in enumerate(jobs)
            if finite[k]
        ]
        log.info("sweep %s: %d strengths x %d images", name, len(grid), len(images))
    header = {
        "batch_id": batch.batch_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"name": clf.name, "file": clf.path.name, "sha256": clf.sha256, "input_size": clf.spec.input_size},
        "seed": int(seed),
        "steps": int(steps),
        "transforms": grids,
        "applied_at": "the PNG's own resolution, before the model's resize and centre crop (resolution and angle: at "
        "the camera's pixel grid, output at the model's input size)",
        "reference": "Kurakin, Goodfellow & Bengio 2016, sec. 4, https://arxiv.org/abs/1607.02533",
    }
    if lmap is not None:
        header["labels"] = {
            "target_classes": list(clf.class_names),
            "map": {str(b): t for b, t in sorted(lmap.items())},
        }
    out = write_sweep(batch_dir, header, digital, rows)
    if progress is not None:
        progress("done", len(names), len(names))
    log.info("wrote %s: %d rows in %.1f s", out, len(rows), time.perf_counter() - t0)
    return out


def digital_baseline_known(batch_dir: Path, model: str) -> bool:
    """Whether the report can find ``model``'s digital top-5: in batch.json or in a capture session."""

    batch = load_batch(Path(batch_dir))
    if batch.items and all(model in it.image(r).top5 for it in batch.items for r in ROLES):
        return True
    for db in capture_dbs(batch_dir):
        try:
            con = open_db_readonly(db)
        except UserError:
            continue  # the report names it; here it only cannot help
        try:
            if con.execute("SELECT 1 FROM sessions WHERE model=? LIMIT 1", (model,)).fetchone():
                return True
        except sqlite3.DatabaseError:
            continue
        finally:
            con.close()
    return False


def strengths_table(names: list[str], steps: int) -> list[tuple[str, str, str]]:
    """(transform, unit, strengths) for the CLI."""
    return [(n, TRANSFORMS[n].unit, ", ".join(f"{v:g}" for v in TRANSFORMS[n].grid(steps))) for n in names]


def clean_accuracy(
    path: Path, batch_dir: Path, names: tuple[str, ...] = RESAMPLED
) -> list[tuple[str, float, int, int]]:
    """(transform, strength, clean top-1 right, n) from a written sweep, for the transforms ``names``."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    truth = {it.id: it.label.index for it in load_batch(Path(batch_dir)).items}
    out: dict[tuple[str, float], list[int]] = {}
    for r in doc.get("rows", []):
        if r.get("transform") in names and r.get("role") == "clean" and r.get("item_id") in truth:
            c = out.setdefault((r["transform"], float(r["strength"])), [0, 0])
            c[0] += int(r["top1"] == truth[r["item_id"]])
            c[1] += 1
    return [(t, s, k, n) for (t, s), (k, n) in out.items()]
