"""A face batch's figures: recall, paired hiding, transfer and the channel check, per session and target.

Every unit is a *truth face*: a box the source detector (MTCNN) found on the clean
PNG (``batch.json``'s ``truth``). A target finds it when one of its boxes overlaps
it at IoU >= 0.5 (:func:`contracts.detection.found`, PASCAL VOC matching):

- **recall**: faces found / truth faces, on the clean and on the adversarial image,
  digitally (the target on the saved PNG: capture's ``digital`` rows) and
  photographed (the target on each good tile crop; truth scaled from PNG to crop);
- **paired hiding**: of the faces found on the clean image, the share not found on
  the adversarial one. Digitally per face; photographed per frame, pairing the clean
  and adversarial tiles of the same item seen (good) in the same frame of the session;
- **transfer from the source**: the source's own digital hiding (``batch.json``'s
  boxes on the adversarial PNG, white-box) next to each target's, digital and
  photographed.

Intervals: 95% Wilson on the effective n, clustered by source photo
(:func:`contracts.verdict.clustered_interval`, the channel check's method): every face
and frame of one photo is one cluster. The channel check is the classifier's rule
(:func:`contracts.verdict.judge`) on the clean tiles, where "right" means every truth
face of the tile was found, against the clean PNGs (``D``) and the digital stability
baseline (``B``: the clean PNGs through capture's mild resampling, blur and JPEG,
:mod:`capture.stability`; absent in sessions captured before detectors recorded it):
a session whose clean faces are not found as well as digitally is camera-limited (or
inconclusive, or model-fragile when mere resampling already loses them), and its
photographed hiding is never reported as hiding.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contracts.capturedb import has_column, open_db_readonly, read_stability
from contracts.detection import Detections, found
from contracts.manifest import Batch, Item
from contracts.verdict import FLAGGED, Clustered, Tally, Verdict, clustered_interval, judge

IOU = 0.5


@dataclass
class FaceObs:
    """One good-or-not observation of a tile: its frame, whether it passed the gates, per truth face found."""

    frame: int
    good: bool
    found: np.ndarray
    boxes: Detections
    size: int


@dataclass
class FaceSession:
    """One capture session of a face batch, read from its database."""

    id: str
    path: Path
    model: str
    source: str
    crop_px: int
    digital: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (item, role) -> found per truth face
    digital_boxes: dict[tuple[str, str], Detections] = field(default_factory=dict)
    obs: dict[tuple[str, str], list[FaceObs]] = field(default_factory=dict)  # (item, role) -> observations
    n_obs: int = 0
    stability: dict[str, float] | None = None  # item -> share of mild transforms under which every face is found
    verdict: Verdict | None = None


def truth_boxes(it: Item) -> np.ndarray:
    """The item's truth faces (PNG pixels), ``N x 4``."""
    if it.truth is None:
        return np.zeros((0, 4), np.float32)
    return Detections.from_json(it.truth.boxes, where=f"{it.id}: truth").boxes


def _dets(raw: str | None, where: str) -> Detections:
    if raw is None:
        return Detections.empty()
    try:
        return Detections.from_json(json.loads(raw), where=where)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{where}: malformed boxes ({e})") from None


def read_face_session(path: Path, batch: Batch, png_sizes: dict[str, tuple[int, int]]) -> FaceSession | None:
    """A face session of ``batch`` from its database; ``None`` when it holds no detector rows (schema < 3, or a
    ``capture --scene`` session, whose frames :mod:`analysis.scene` reads)."""
    con = open_db_readonly(path)
    try:
        return _read(con, path, batch, png_sizes)
    finally:
        con.close()


def _read(
    con: sqlite3.Connection, path: Path, batch: Batch, png_sizes: dict[str, tuple[int, int]]
) -> FaceSession | None:
    if not has_column(con, "observations", "boxes"):
        return None
    row = con.execute("SELECT id, model, source, config FROM sessions").fetchone()
    if row is None:
        return None
    cfg = json.loads(row[3] or "{}")
    if cfg.get("mode") == "scene":  # capture --scene: frames, not tiles (analysis.scene reads them)
        return None
    s = FaceSession(str(row[0]), path, str(row[1]), str(row[2]), int(cfg.get("crop_size") or 224))
    items = {it.id: it for it in batch.items if it.truth is not None}
    for item, role, raw in con.execute("SELECT item_id, role, boxes FROM digital_boxes WHERE session_id = ?", (s.id,)):
        if item in items:
            d = _dets(raw, f"{path}: digital {item} {role}")
            s.digital_boxes[(item, role)] = d
            s.digital[(item, role)] = found(truth_boxes(items[item]), d.boxes, IOU)
    q = "SELECT item_id, role, frame_idx, good, boxes FROM observations WHERE session_id = ? AND boxes IS NOT NULL"
    for item, role, frame, good, raw in con.execute(q + " ORDER BY id", (s.id,)):
        s.n_obs += 1
        if item not in items:
            continue
        d = _dets(raw, f"{path}: observation {item} {role} frame {frame}")
        w, h = png_sizes[item]
        f = np.array([s.crop_px / w, s.crop_px / h] * 2, np.float32)
        hit = found(truth_boxes(items[item]) * f, d.boxes, IOU)
        s.obs.setdefault((str(item), str(role)), []).append(FaceObs(int(frame), bool(good), hit, d, s.crop_px))
    baseline = read_stability(con, s.id, {i: 1 for i in items})  # top-1 1: every truth face still found
    s.stability = None if baseline is None else baseline[0]
    s.verdict = channel_verdict(s, batch)
    return s


def channel_verdict(s: FaceSession, batch: Batch) -> Verdict:
    """The channel check (:func:`contracts.verdict.judge`): clean tiles whose every truth face is found, against the
    clean PNGs (``D``) and, when the session recorded it, the stability baseline (``B``: the same after mild
    resampling, blur and JPEG, :meth:`capture.facetarget.FaceTarget.stability`)."""
    faces = [it for it in batch.items if it.truth is not None and len(truth_boxes(it))]
    cluster = {it.id: it.photo for it in faces}
    digital = {it.id: bool(s.digital[(it.id, "clean")].all()) for it in faces if (it.id, "clean") in s.digital}
    tally = Tally(cluster, {it.id: 1 for it in faces}, digital, s.stability, len(set(cluster.values())))
    for (item, role), obs in s.obs.items():
        for o in obs:
            tally.add(item, role, int(bool(len(o.found)) and bool(o.found.all())), o.good)
    return judge(tally.evidence())


def _rate(counts: dict[str, list[int]]) -> Clustered:
    return clustered_interval([(k, n) for k, n in counts.values()])


def _add(counts: dict[str, list[int]], key: str, k: int, n: int) -> None:
    c = counts.setdefault(key, [0, 0])
    c[0] += k
    c[1] += n


def recall(s: FaceSession, items: list[Item], role: str, photographed: bool) -> Clustered:
    """Faces found / truth faces on ``role`` images: digital per face, photographed per good observation and face."""
    counts: dict[str, list[int]] = {}
    for it in items:
        if photographed:
            for o in s.obs.get((it.id, role), []):
                if o.good:
                    _add(counts, it.photo, int(o.found.sum()), len(o.found))
        elif (it.id, role) in s.digital:
            hit = s.digital[(it.id, role)]
            _add(counts, it.photo, int(hit.sum()), len(hit))
    return _rate(counts)


def paired_hiding(s: FaceSession, items: list[Item], photographed: bool) -> Clustered:
    """Of the faces found on the clean image, the share the adversarial one hides (photographed: frame by frame)."""
    counts: dict[str, list[int]] = {}
    for it in items:
        if not photographed:
            c, a = s.digital.get((it.id, "clean")), s.digital.get((it.id, "adv"))
            if c is not None and a is not None:
                _add(counts, it.photo, int((c & ~a).sum()), int(c.sum()))
            continue
        adv = {o.frame: o for o in s.obs.get((it.id, "adv"), []) if o.good}
        for o in s.obs.get((it.id, "clean"), []):
            a2 = adv.get(o.frame)
            if o.good and a2 is not None:
                _add(counts, it.photo, int((o.found & ~a2.found).sum()), int(o.found.sum()))
    return _rate(counts)


def source_hiding(batch: Batch, items: list[Item], source: str) -> Clustered:
    """The source's own digital hiding (white-box): its boxes on each adversarial PNG, from ``batch.json``."""
    counts: dict[str, list[int]] = {}
    for it in items:
        t = truth_boxes(it)
        clean = found(t, Detections.from_json(it.clean.boxes.get(source, []), where=it.id).boxes, IOU)
        adv = found(t, Detections.from_json(it.adv.boxes.get(source, []), where=it.id).boxes, IOU)
        _add(counts, it.photo, int((clean & ~adv).sum()), int(clean.sum()))
    return _rate(counts)


def source_recall(batch: Batch, items: list[Item], source: str, role: str = "clean") -> Clustered:
    """The source's recall of the truth faces on its own ``role`` PNGs (from ``batch.json``): 1 by construction when
    the truth is its clean detections, a figure of its own when the truth is a labels file."""
    counts: dict[str, list[int]] = {}
    for it in items:
        hit = found(truth_boxes(it), Detections.from_json(it.image(role).boxes.get(source, []), where=it.id).boxes, IOU)
        _add(counts, it.photo, int(hit.sum()), len(hit))
    return _rate(counts)


def groups(batch: Batch) -> dict[tuple[str, float], list[Item]]:
    """The items with truth faces, by (attack, ε)."""
    out: dict[tuple[str, float], list[Item]] = defaultdict(list)
    for it in batch.items:
        if it.truth is not None and len(truth_boxes(it)):
            out[(it.attack, it.eps)].append(it)
    return dict(out)


def cell(c: Clustered, prefix: str) -> dict[str, Any]:
    """A rate as table columns: value, interval, counts and photos."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {prefix: r(c.value), "lo": r(c.lo), "hi": r(c.hi), "k": c.num, "n": c.n, "photos": c.clusters}


def fmt(c: Clustered) -> str:
    """``0.36 [0.26, 0.46] (30/84, 40 photos)``, or ``n/a``."""
    if c.value is None:
        return "n/a"
    return f"{c.value:.2f} [{c.lo or 0:.2f}, {c.hi or 0:.2f}] ({c.num}/{c.n}, {c.clusters} photos)"


def limited(s: FaceSession) -> bool:
    """The session's photographed hiding is not about the attack (camera-limited, inconclusive or fragile)."""
    return s.verdict is not None and s.verdict.verdict in FLAGGED
