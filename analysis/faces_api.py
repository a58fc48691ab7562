"""A face batch's figures for the Python API (``photoproof.summary`` and ``channel_check``), as plain dicts.

The same figures as the report's tables (:mod:`analysis.faces_report`), one dict per
figure so that ``pandas.DataFrame(rows)`` reads them: face recall at IoU 0.5 and
paired hiding, per session, attack and ε, digital and photographed, each with its
95% interval (Wilson on the effective n, clustered by photo), and the source's own
white-box hiding. A photographed figure of a session the channel check flags says so
in ``figure_is`` (never "hiding").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.faces import FaceSession, cell, groups, limited, source_hiding
from analysis.faces_report import load_face_sessions, tables
from analysis.faces_sweep import load_face_sweeps, stability
from contracts.manifest import Batch, load_batch
from contracts.verdict import FRAGILE

COLUMNS = (
    "measure", "session", "target", "attack", "eps", "image", "seen", "value", "lo", "hi", "k", "n", "photos",
    "figure_is", "channel_check",
)  # fmt: skip


def _source(batch: Batch) -> str:
    return next((m.name for m in batch.models if m.role == "source"), "mtcnn")


def _row(**kw: Any) -> dict[str, Any]:
    return {c: kw.get(c) for c in COLUMNS}


def face_summary(batch_dir: Path, wanted: list[str] | None = None) -> list[dict[str, Any]]:
    """Every figure of a face batch's report as a dict with the keys :data:`COLUMNS` (``measure``: ``recall``,
    ``hiding`` or ``stability``: a sweep's digital hiding of the attack (``image`` adv), of ``±ε`` noise (noise) and
    of resampling, with the verdict in ``figure_is``; ``target``: a session's or sweep's detector, or the source for
    its own white-box hiding)."""
    batch = load_batch(batch_dir)
    source = _source(batch)
    sessions, _ = load_face_sessions(batch_dir, batch, wanted)
    verdict = {s.id: None if s.verdict is None else s.verdict.verdict for s in sessions}
    rows = []
    for (attack, eps), items in groups(batch).items():
        c = cell(source_hiding(batch, items, source), "value")
        where = {"session": "", "target": source, "attack": attack, "eps": eps, "image": "adv", "seen": "digital"}
        rows.append(_row(measure="hiding", figure_is="hiding", **where, **c))
    _, rec, hide, _ = tables(batch, sessions, source)
    for measure, table in (("recall", rec), ("hiding", hide)):
        for r in table.rows:
            fig = {k: r[k] for k in ("session", "target", "attack", "eps", "seen", "lo", "hi", "k", "n", "photos")}
            fig |= {"image": r.get("image", "adv"), "value": r[measure], "figure_is": r.get("figure_is", measure)}
            rows.append(_row(measure=measure, channel_check=verdict[r["session"]], **fig))
    sweeps, _ = load_face_sweeps(batch_dir, batch)  # photoproof sweep: the stability baseline, per target
    for sw in sweeps:
        for x in stability(sw, batch):
            where = {"session": "", "target": x.target, "attack": x.attack, "eps": x.eps, "seen": "digital"}
            for image, rate in (("adv", x.adversarial), ("noise", x.noise), ("resampling", x.resampling)):
                rows.append(_row(measure="stability", image=image, figure_is=x.verdict, **where, **cell(rate, "value")))
    return rows


def _check(s: FaceSession) -> dict[str, Any]:
    v = s.verdict
    out: dict[str, Any] = {"session": s.id, "model": s.model, "source": s.source, "observations": s.n_obs}
    if v is None:
        return out | {"verdict": "n/a", "why": "no clean face to check", "more_photos_needed": None}
    p = v.photo
    advice = []
    if v.verdict == FRAGILE:
        advice.append(
            "the target already loses these clean faces to mild resampling, blur and JPEG digitally, so the "
            "photographed hiding of this session is the detector's fragility, not hiding: use photos whose faces it "
            "finds robustly (larger faces)"
        )
    elif limited(s):
        advice.append(
            "the photographed hiding of this session is not reported as hiding: capture more frames, or closer and "
            "sharper tiles (bigger prints, better light), until clean faces are found as they are digitally"
        )
    return out | {
        "verdict": v.verdict,
        "why": v.why,
        "more_photos_needed": v.more_photos,
        "clean_digital": v.digital,  # share of clean PNGs whose every truth face the target finds
        "clean_baseline": v.baseline,  # the same after mild resampling, blur and JPEG (None: not recorded)
        "clean_photo": p.value,  # the same, photographed (good tiles), clustered by photo
        "ci_low": p.lo,
        "ci_high": p.hi,
        "n": p.n,
        "n_photos": p.clusters,
        "advice": advice,
    }


def face_channel_check(batch_dir: Path, wanted: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each face session's channel check (:func:`contracts.verdict.judge` on its clean tiles, "right" meaning every
    truth face found at IoU 0.5), by session id."""
    batch = load_batch(batch_dir)
    sessions, _ = load_face_sessions(batch_dir, batch, wanted)
    return {s.id: _check(s) for s in sessions}
