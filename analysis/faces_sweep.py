"""A face batch's sweep: recall and paired hiding under each artificial transform, and the stability baseline.

Reads ``BATCH/sweep-faces-<target>.json`` (:mod:`contracts.facesweep`, written by
``photoproof sweep BATCH --model TARGET``). Per target, attack and ε:

- **per transform and strength** (Kurakin et al. 2016, https://arxiv.org/abs/1607.02533,
  sec. 4): recall at IoU 0.5 of the transformed clean and adversarial PNGs, and paired
  hiding (truth faces found on the transformed clean PNG and not on the adversarial one
  after the same transform);
- **the stability baseline**: the hiding of the adversarial PNG next to what the budget
  does without the attack, on the same clean faces: ``±ε`` random sign noise of the
  item's ε, and mere resampling (the capture baseline's mild transforms, pooled). A
  figure that noise of the same budget gives as well is **not transfer**
  (:func:`stability_verdict`).

Intervals: 95% Wilson on the effective n, clustered by source photo
(:func:`contracts.verdict.clustered_interval`), as the rest of the face report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.faces import fmt, groups
from analysis.tables import Table, plain_table
from contracts.facesweep import FaceRow, FaceSweep, face_sweep_files, read_face_sweep
from contracts.manifest import Batch, Item
from contracts.verdict import Clustered, clustered_interval

log = logging.getLogger(__name__)

NOISE = "noise"
RESAMPLING = ("resolution", "blur", "jpeg")
NOT_TRANSFER_NOISE = "not transfer: noise of the same budget hides as much"
NOT_TRANSFER_RESAMPLING = "not transfer: resampling alone hides as much"
TRANSFER = "transfer: hides more than noise of the same budget and resampling"
INCONCLUSIVE = "inconclusive: the intervals overlap the controls'; more photos needed"


@dataclass(frozen=True)
class Stability:
    """One target, attack and ε: the adversarial PNG's digital hiding and the controls' hiding, and the verdict."""

    target: str
    attack: str
    eps: float
    adversarial: Clustered
    noise: Clustered
    resampling: Clustered
    verdict: str


def load_face_sweeps(batch_dir: Path, batch: Batch) -> tuple[list[FaceSweep], list[str]]:
    """The batch's face sweeps (a file of another batch is skipped, with a note)."""
    out, notes = [], []
    for f in face_sweep_files(batch_dir):
        s = read_face_sweep(f)
        if s.header.get("batch_id") not in (None, batch.batch_id):
            notes.append(f"{f.name}: a sweep of batch {s.header.get('batch_id')}, not {batch.batch_id}; skipped")
            continue
        out.append(s)
    return out, notes


def _found(rows: Iterable[FaceRow]) -> dict[tuple[str, str], np.ndarray]:
    return {(r.item_id, r.role): np.array(r.found, bool) for r in rows}


def _rate(items: list[Item], pairs: Iterable[tuple[str, int, int]]) -> Clustered:
    """``(item, k, n)`` summed per photo, then :func:`clustered_interval`."""
    photo = {it.id: it.photo for it in items}
    counts: dict[str, list[int]] = {}
    for item, k, n in pairs:
        if item in photo:
            c = counts.setdefault(photo[item], [0, 0])
            c[0] += k
            c[1] += n
    return clustered_interval([(k, n) for k, n in counts.values()])


def _recall(items: list[Item], found: dict[tuple[str, str], np.ndarray], role: str) -> Clustered:
    hits = (found.get((it.id, role)) for it in items)
    return _rate(items, ((it.id, int(h.sum()), len(h)) for it, h in zip(items, hits, strict=True) if h is not None))


def _hiding(items: list[Item], clean: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> Clustered:
    """Of the faces found in ``clean``, the share not found in ``other`` (paired per item)."""
    pairs = []
    for it in items:
        c, o = clean.get(it.id), other.get(it.id)
        if c is not None and o is not None and len(c) == len(o):
            pairs.append((it.id, int((c & ~o).sum()), int(c.sum())))
    return _rate(items, pairs)


def stability_verdict(adversarial: Clustered, noise: Clustered, resampling: Clustered) -> str:
    """``not transfer`` when a control's hiding reaches the adversarial interval's lower bound; ``transfer`` when
    that bound lies above every control's interval; else ``inconclusive``."""
    if adversarial.value is None or adversarial.lo is None:
        return "n/a: the target finds no truth face on the clean PNGs"
    if noise.value is not None and noise.value >= adversarial.lo:
        return NOT_TRANSFER_NOISE
    if resampling.value is not None and resampling.value >= adversarial.lo:
        return NOT_TRANSFER_RESAMPLING
    his = [c.hi for c in (noise, resampling) if c.hi is not None]
    if noise.value is not None and adversarial.lo > max(his):
        return TRANSFER
    if noise.value is None:
        return "no noise control (an unbounded perturbation: the sticker); " + (
            "beyond resampling" if his and adversarial.lo > max(his) else "within resampling's interval"
        )
    return INCONCLUSIVE


def stability(sweep: FaceSweep, batch: Batch) -> list[Stability]:
    """Per attack and ε: the adversarial PNG's digital hiding against sign noise and resampling (module docstring)."""
    dig = _found(sweep.digital)
    clean = {i: f for (i, r), f in dig.items() if r == "clean"}
    adv = {i: f for (i, r), f in dig.items() if r == "adv"}
    noise = {r.item_id: np.array(r.found, bool) for r in sweep.control if r.transform == NOISE}
    out = []
    for (attack, eps), items in groups(batch).items():
        resampled = []
        for m in RESAMPLING:
            other = {r.item_id: np.array(r.found, bool) for r in sweep.control if r.transform == m}
            for it in items:
                c, o = clean.get(it.id), other.get(it.id)
                if c is not None and o is not None and len(c) == len(o):
                    resampled.append((it.id, int((c & ~o).sum()), int(c.sum())))
        a, n, r = _hiding(items, clean, adv), _hiding(items, clean, noise), _rate(items, resampled)
        out.append(Stability(sweep.target, attack, eps, a, n, r, stability_verdict(a, n, r)))
    return out


def sweep_table_rows(sweep: FaceSweep, batch: Batch) -> list[dict[str, Any]]:
    """Per attack, ε, transform and strength: recall of clean and adversarial, and paired hiding."""
    by: dict[tuple[str, float], list[FaceRow]] = {("none", 0.0): list(sweep.digital)}
    for r in sweep.rows:
        by.setdefault((r.transform, r.strength), []).append(r)
    out = []
    for (attack, eps), items in groups(batch).items():
        for (transform, strength), rows in by.items():
            f = _found(rows)
            clean = {i: v for (i, r), v in f.items() if r == "clean"}
            adv = {i: v for (i, r), v in f.items() if r == "adv"}
            out.append(
                {
                    "target": sweep.target,
                    "attack": attack,
                    "eps": eps,
                    "transform": transform,
                    "strength": strength,
                    "recall_clean": fmt(_recall(items, f, "clean")),
                    "recall_adv": fmt(_recall(items, f, "adv")),
                    "hiding": fmt(_hiding(items, clean, adv)),
                }  # fmt: skip
            )
    return out


def stability_row(s: Stability) -> dict[str, Any]:
    """A row of the ``faces_stability`` table."""
    return {
        "target": s.target,
        "attack": s.attack,
        "eps": s.eps,
        "adversarial_hiding": fmt(s.adversarial),
        "noise_same_eps_hiding": fmt(s.noise),
        "resampling_hiding": fmt(s.resampling),
        "verdict": s.verdict,
    }


def face_sweep_tables(batch: Batch, sweeps: list[FaceSweep]) -> list[Table]:
    """``faces_sweep`` and ``faces_stability``, or nothing when no face sweep was run."""
    if not sweeps:
        return []
    rows = [r for s in sweeps for r in sweep_table_rows(s, batch)]
    stab = [stability_row(x) for s in sweeps for x in stability(s, batch)]
    note = "rate [95% interval] (k/n, photos); Wilson on the effective n, clustered by photo; transform 'none': the PNG"
    return [
        plain_table(
            "faces_sweep", "Sweep: recall and paired hiding under one transform at a time (IoU 0.5)", rows, note
        ),  # fmt: skip
        plain_table(
            "faces_stability",
            "Stability baseline: the attack's digital hiding against ±ε noise of the same budget and resampling",
            stab,
            "hiding of the faces each target finds on the clean PNG; " + note,
        ),
    ]


def face_sweep_notes(batch: Batch, sweeps: list[FaceSweep]) -> list[str]:
    """One line per target, attack and ε: the verdict of the stability baseline, with its figures."""
    return [
        f"stability baseline, {x.target} {x.attack} ε={x.eps:g}: {x.verdict} (attack {fmt(x.adversarial)}; "
        f"±ε noise {fmt(x.noise)}; resampling {fmt(x.resampling)})"
        for s in sweeps
        for x in stability(s, batch)
    ]
