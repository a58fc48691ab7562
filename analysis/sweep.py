"""Transformation sweeps: destruction rate against the strength of one artificial transform.

``BATCH/sweep.json`` (optional; its schema is in :mod:`contracts.sweep`) holds rows
``{transform, strength, item_id, role, top1, top5_ids, top5_probs}`` (and an
optional ``model``): one model's prediction on an item's clean or adversarial
PNG after the transform. As in Kurakin et al. 2016 (section 4,
https://arxiv.org/abs/1607.02533), the destruction rate per transform and
strength uses the same model's digital predictions on the untransformed PNGs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.load import Pred, ReportInput, manifest_pred
from analysis.metrics import ItemData, photo_counts
from analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Rate, bootstrap_weights, rate_from_counts
from contracts.batchdir import SWEEP
from contracts.sweep import BASELINE, read_sweep

log = logging.getLogger(__name__)

SWEEP_METRICS = ("destruction", "destruction_prefiltered", "clean_acc", "adv_acc")


@dataclass(frozen=True)
class SweepRow:
    transform: str
    strength: float
    item_id: str
    role: str
    pred: Pred
    model: str | None = None


@dataclass(frozen=True)
class SweepPoint:
    """The metrics of one (transform, strength, top-k)."""

    transform: str
    strength: float
    model: str
    topk: int
    rates: dict[str, Rate]


def load_sweep(batch_dir: Path) -> list[SweepRow] | None:
    """Read ``sweep.json`` (:func:`contracts.sweep.read_sweep`); ``None`` if there is none.

    The sweep model's predictions on the untransformed PNGs, the digital baseline, come
    first, as rows of the transform :data:`BASELINE`.

    Raises:
        UserError: naming the file when it is corrupt, of another schema version, or malformed.
    """
    doc = read_sweep(batch_dir)
    if doc is None:
        return None
    return [
        SweepRow(r.transform, r.strength, r.item_id, r.role, Pred(r.top5_ids, r.top5_probs), r.model)
        for r in (*doc.digital, *doc.rows)
    ]


def sweep_units(batch_dir: Path) -> dict[str, str]:
    """Each transform's strength unit from ``sweep.json``'s ``grids`` (empty for an old or bare list file)."""
    doc = read_sweep(batch_dir)
    grids = doc.header.get("grids") if doc is not None else None
    if not isinstance(grids, dict):
        return {}
    return {str(k): str(v["unit"]) for k, v in grids.items() if isinstance(v, dict) and isinstance(v.get("unit"), str)}


def sweep_label_map(batch_dir: Path) -> dict[int, int]:
    """``sweep.json``'s ``labels.map`` (batch class -> model class), empty
    when the model shares the batch's label set.
    """
    try:
        doc = read_sweep(batch_dir)  # a UserError is a ValueError
        if doc is None:
            return {}
        return {int(k): int(v) for k, v in ((doc.header.get("labels") or {}).get("map") or {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _digital(
    inp: ReportInput, model: str, item_id: str, role: str, baseline: dict[tuple[str, str, str], Pred]
) -> Pred | None:
    """The model's prediction on the saved PNG: batch.json, a capture session, or the sweep's own baseline."""
    it = next((i for i in inp.batch.items if i.id == item_id), None)
    if it is None:
        return None
    p = manifest_pred(it, role, model)
    if p is not None:
        return p
    for s in inp.sessions:
        if s.model_name == model and (item_id, role) in s.digital:
            return s.digital[(item_id, role)]
    return baseline.get((model, item_id, role))


def sweep_points(
    inp: ReportInput, rows: list[SweepRow], seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES
) -> list[SweepPoint]:
    """Destruction rate and accuracies for every transform, strength and top-k."""
    default_model = inp.source_models[0] if inp.source_models else ""
    baseline = {(r.model or default_model, r.item_id, r.role): r.pred for r in rows if r.transform == BASELINE}
    rows = [r for r in rows if r.transform != BASELINE]
    items = {it.id: it for it in inp.batch.items}
    lmap = sweep_label_map(inp.batch_dir)  # batch class -> the sweep model's own class
    groups: dict[tuple[str, float, str], dict[str, ItemData]] = defaultdict(dict)
    skipped = 0
    for r in rows:
        it = items.get(r.item_id)
        if it is None:
            skipped += 1
            continue
        model = r.model or default_model
        g = groups[(r.transform, r.strength, model)]
        d = g.get(r.item_id)
        if d is None:
            d = g[r.item_id] = ItemData(
                it.id,
                it.attack,
                it.eps,
                lmap.get(it.label.index, it.label.index),
                None if it.target is None else lmap.get(it.target, it.target),
                _digital(inp, model, it.id, "clean", baseline),
                _digital(inp, model, it.id, "adv", baseline),
            )
        (d.photo_clean if r.role == "clean" else d.photo_adv).append(r.pred)
    if skipped:
        log.warning("%s: %d rows name items that are not in batch.json; ignored", SWEEP, skipped)
    out = []
    for (transform, strength, model), g in sorted(groups.items()):
        cell = list(g.values())
        weights = bootstrap_weights(len(cell), seed, f"sweep|{transform}|{strength:g}|{model}", resamples)
        for k in (1, 5):
            counts = photo_counts(cell, k)
            out.append(
                SweepPoint(
                    transform, strength, model, k, {m: rate_from_counts(counts[m], weights) for m in SWEEP_METRICS}
                )
            )
    return out


def sweep_rows(points: list[SweepPoint]) -> list[dict[str, Any]]:
    """Rows of the ``sweep`` table (rates kept as :class:`Rate` for the exporters)."""
    return [
        {"transform": p.transform, "strength": p.strength, "model": p.model, "topk": p.topk, **p.rates} for p in points
    ]
