"""``photoproof report`` for a face batch: the tables, notes, gallery and ``report.json`` of :mod:`analysis.faces`.

Written into the same ``report/`` folder, by the same renderer, as a classifier
report (docs/detectors.md):

- ``faces_transfer``: per attack and ε, the source's white-box hiding (digital) and
  each session's target, digital and photographed, as ``rate [lo, hi] (k/n, photos)``;
- ``faces_recall``: per session, recall at IoU 0.5 of clean and adversarial, digital
  and photographed, with intervals and counts;
- ``faces_hiding``: per session, paired hiding, digital and photographed, and what the
  photographed figure is (``hiding`` or the channel check's verdict);
- ``faces_channel``: per session, the channel check (:func:`contracts.verdict.judge`);
- ``faces_sweep`` and ``faces_stability`` (:mod:`analysis.faces_sweep`), when ``photoproof sweep`` was run with a
  face target: recall and hiding per transform, and the attack's hiding against noise of the same budget;
- ``scene`` (:mod:`analysis.scene`), when there are ``capture --scene`` sessions with a face sticker: frames with
  and without the sticker in view, and the share whose face the detector does not find.

The gallery shows, per session, the saved PNGs and a photographed crop of each (one capture kept)
with the truth faces (yellow) and the target's boxes (green) drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from analysis.content import ReportContent
from analysis.faces import (
    FaceSession,
    cell,
    fmt,
    groups,
    limited,
    paired_hiding,
    read_face_session,
    recall,
    source_hiding,
    source_recall,
    truth_boxes,
)
from analysis.faces_sweep import face_sweep_notes, face_sweep_tables, load_face_sweeps
from analysis.gallery import GalleryEntry, Shot
from analysis.methods import Section
from analysis.report_files import file_names, render
from analysis.scene import scene_report_table
from analysis.tables import Table, plain_table, write_table
from contracts.batchdir import capture_dbs, crop_rel
from contracts.detection import Detections
from contracts.errors import UserError
from contracts.facesticker import StickerPlace, sticker_of
from contracts.facetruth import SOURCE as LABELS
from contracts.facetruth import describe as describe_truth
from contracts.images import read_item_image
from contracts.manifest import Batch, Item, load_batch
from contracts.paths import atomic_write_json, resolve_inside
from contracts.verdict import RULE

THUMB_PX = 160
CHANNEL_NOTE = (
    "The classifier's rule, read for faces: a clean tile is 'right' when every truth face on it is found at IoU 0.5 "
    "(top-1 below means that), and B is the share of clean PNGs (x mild transforms) whose every truth face is still "
    "found (empty for a session captured before detectors recorded it). " + RULE
)
PER_SESSION = 4
TRUTH_RGB, FOUND_RGB, STICKER_RGB = (255, 210, 0), (0, 200, 0), (230, 0, 230)


def _sticker(it: Item) -> StickerPlace | None:
    try:
        return sticker_of(it)
    except ValueError as e:
        raise UserError(f"batch.json: {e}; re-craft the sticker") from None


def sticker_notes(batch: Batch) -> list[str]:
    """How the sticker items' stickers were placed (by the face's landmarks or box), from ``params.patch``."""
    places: dict[str, int] = {}
    for it in batch.items:
        where = _sticker(it)
        if where is not None:
            places[where.place] = places.get(where.place, 0) + 1
    return [f"face sticker placed by the face's {p} on {n} item(s)" for p, n in sorted(places.items())]


def load_face_sessions(batch_dir: Path, batch: Batch, wanted: list[str] | None) -> tuple[list[FaceSession], list[str]]:
    """Every face session of the batch (``wanted``: only these ids or file stems) and notes on skipped files."""
    sizes: dict[str, tuple[int, int]] = {}
    for it in batch.items:
        if it.truth is not None:
            h, w = read_item_image(batch_dir, it, "clean").shape[:2]
            sizes[it.id] = (w, h)
    out, notes = [], []
    for f in capture_dbs(batch_dir):
        if wanted and f.stem not in wanted:
            continue
        try:
            s = read_face_session(f, batch, sizes)
        except ValueError as e:
            raise UserError(f"{f}: {e}; remove it or re-capture") from None
        if s is None:
            notes.append(
                f"{f.name}: no face-detector tile observations (a scene session: see the scene table; a classifier "
                "session or an older database: skipped)"
            )
            continue
        if wanted and s.id not in wanted and f.stem not in wanted:
            continue
        out.append(s)
    missing = set(wanted or []) - {s.id for s in out} - {s.path.stem for s in out}
    if missing:
        raise UserError(f"--session {sorted(missing)[0]}: no such face session in {batch_dir / 'captures'}")
    return out, notes


def tables(batch: Batch, sessions: list[FaceSession], source: str) -> list[Table]:
    """The four tables of the module docstring."""
    g = groups(batch)
    transfer, rec, hide, chan = [], [], [], []
    for (attack, eps), items in g.items():
        key: dict[str, Any] = {"attack": attack, "eps": eps}
        transfer.append(key | {"detector": f"{source} (source, white-box)", "session": "", "seen": "digital",
                               "hiding": fmt(source_hiding(batch, items, source))})  # fmt: skip
        for s in sessions:
            for photo in (False, True):
                h = fmt(paired_hiding(s, items, photo))
                if photo and limited(s) and s.verdict is not None:
                    h = f"{s.verdict.verdict}: {h} is not hiding"
                seen = "photographed" if photo else "digital"
                transfer.append(key | {"detector": s.model, "session": s.id, "seen": seen, "hiding": h})
        for s in sessions:
            base: dict[str, Any] = {"session": s.id, "target": s.model, "attack": attack, "eps": eps}
            for role in ("clean", "adv"):
                for photo in (False, True):
                    where = {"image": role, "seen": "photographed" if photo else "digital"}
                    rec.append(base | where | cell(recall(s, items, role, photo), "recall"))
            for photo in (False, True):
                shown = "hiding" if not photo or not limited(s) or s.verdict is None else s.verdict.verdict
                how = {"seen": "photographed" if photo else "digital"}
                hide.append(base | how | cell(paired_hiding(s, items, photo), "hiding") | {"figure_is": shown})
    for s in sessions:
        v = s.verdict
        if v is None:
            continue
        p = v.photo
        chan.append(
            {
                "session": s.id,
                "target": s.model,
                "source": s.source,
                "verdict": v.verdict,
                "clean_tiles_all_found_photo": None if p.value is None else round(p.value, 3),
                "lo": None if p.lo is None else round(p.lo, 3),
                "hi": None if p.hi is None else round(p.hi, 3),
                "digital": None if v.digital is None else round(v.digital, 3),
                "baseline": None if v.baseline is None else round(v.baseline, 3),
                "observations": s.n_obs,
                "why": v.why,
            }
        )
    note = (
        "rate [95% interval] (faces hidden / faces found clean, photos); intervals Wilson on the effective n, "
        "clustered by photo"
    )
    return [
        plain_table(
            "faces_transfer", f"Hiding: transfer from {source} to each target (paired, IoU 0.5)", transfer, note
        ),
        plain_table("faces_recall", "Face recall at IoU 0.5: clean and adversarial, digital and photographed", rec),
        plain_table("faces_hiding", "Paired hiding: found on the clean image, not on the adversarial one", hide),
        plain_table("faces_channel", "Channel check: clean tiles whose every truth face is found", chan, CHANNEL_NOTE),
    ]


def notes(batch: Batch, sessions: list[FaceSession], source: str) -> list[str]:
    """One line per session and attack: what transfers, digitally and photographed, or why it is not said."""
    out = [f"truth faces: {describe_truth(batch.config, source)}; recall and hiding are counted against them"]
    labelled = isinstance(batch.config.get("truth"), dict) and batch.config["truth"].get("source") == LABELS
    for (attack, eps), items in groups(batch).items():
        if labelled:
            out.append(f"{source} finds {fmt(source_recall(batch, items, source))} of the labelled faces on the clean "
                       f"PNGs ({attack} ε={eps:g} items)")  # fmt: skip
        out.append(
            f"{source} (white-box) {attack} ε={eps:g}: hides {fmt(source_hiding(batch, items, source))} digitally"
        )
        for s in sessions:
            d, p = paired_hiding(s, items, False), paired_hiding(s, items, True)
            if limited(s) and s.verdict is not None:
                ph = f"photographed: {s.verdict.verdict} ({s.verdict.why}), so its {fmt(p)} is not hiding"
            else:
                ph = f"photographed {fmt(p)}"
            out.append(f"transfer to {s.model} [{s.id}] {attack} ε={eps:g}: digital {fmt(d)}; {ph}")
    if not sessions:
        out.append("no face capture session found: run 'photoproof capture BATCH --model centerface' (or yunet)")
    return out


def _draw(img: np.ndarray, truth: np.ndarray, dets: Detections, sticker: StickerPlace | None = None) -> bytes:
    """``img`` at THUMB_PX with the truth faces (yellow), the detections (green) and, on a sticker item's digital
    adversarial PNG, where the sticker was placed and the landmarks that placed it (magenta); PNG bytes."""
    h, w = img.shape[:2]
    f = THUMB_PX / max(h, w)
    out = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    for boxes, rgb, t in ((truth, TRUTH_RGB, 1), (dets.boxes, FOUND_RGB, 2)):
        for b in np.asarray(boxes).reshape(-1, 4) * f:
            cv2.rectangle(out, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), rgb, t)
    if sticker is not None:
        quad = np.round(np.array(sticker.corners()) * f).astype(np.int32)
        cv2.polylines(out, [quad.reshape(-1, 1, 2)], True, STICKER_RGB, 1)
        for x, y in sticker.landmarks:
            cv2.circle(out, (round(x * f), round(y * f)), 2, STICKER_RGB, -1)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    return buf.tobytes() if ok else b""


def _crop_shot(batch_dir: Path, s: FaceSession, item: str, role: str, truth: np.ndarray) -> Shot | None:
    """A crop capture kept of the tile (a good one first), with that frame's boxes drawn."""
    for o in sorted(s.obs.get((item, role), []), key=lambda o: -int(o.good)):
        try:
            p = resolve_inside(batch_dir, crop_rel(s.path.stem, f"{item}-{role}-{o.frame}.png"))
        except UserError:
            continue
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            n = int(o.found.sum())
            cap = f"photographed {role}, frame {o.frame}: {n}/{len(o.found)} found"
            return Shot(cap, _draw(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), truth, o.boxes))
    return None


def gallery(batch_dir: Path, batch: Batch, sessions: list[FaceSession]) -> list[GalleryEntry]:
    """Per session, a few items: digital clean and adversarial, and their photographed crops, with boxes."""
    out = []
    for s in sessions:
        items = [it for its in groups(batch).values() for it in its][:PER_SESSION]
        for it in items:
            shots = []
            for role in ("clean", "adv"):
                t = truth_boxes(it)
                img = read_item_image(batch_dir, it, role)
                d = s.digital_boxes.get((it.id, role), Detections.empty())
                where = _sticker(it) if role == "adv" else None
                placed = f", sticker by its {where.place}" if where is not None else ""
                shots.append(Shot(f"digital {role}: {len(d)} box(es){placed}", _draw(img, t, d, where)))
                h, w = img.shape[:2]
                crop = _crop_shot(batch_dir, s, it.id, role, t * np.array([s.crop_px / w, s.crop_px / h] * 2))
                shots += [crop] if crop is not None else []
            v = s.verdict.verdict if s.verdict else "n/a"
            out.append(GalleryEntry(it.id, it.attack, it.eps, "face", s.id, s.model, v, shots))
    return out


def methods(source: str, truth: str = "") -> list[Section]:
    """The report's methods section for a face batch (``truth``: which truth faces, :func:`describe_truth`)."""
    from analysis import faces

    truth = truth or f"{source}'s boxes on each clean PNG"
    return [
        Section(
            "Face detectors: what is measured",
            text=[" ".join(p.split()) for p in (faces.__doc__ or "").split("\n\n")[1:] if p.strip()],
        ),
        Section("Channel check", text=[RULE]),
        Section(
            "Source",
            text=[f"Truth faces are {truth}, recorded in batch.json by craft; the source is {source}."],
        ),
    ]


def face_report_json(batch: Batch, sessions: list[FaceSession], shown: list[Table], note: list[str]) -> dict[str, Any]:
    """``report.json`` of a face batch."""
    return {
        "schema": "photoproof.report",
        "task": "faces",
        "batch_id": batch.batch_id,
        "sessions": [{"id": s.id, "model": s.model, "source": s.source, "crop_px": s.crop_px} for s in sessions],
        "notes": note,
        "tables": [t.name for t in shown],
        "channel_rule": RULE,
        "iou": 0.5,
        "truth": batch.config.get("truth")
        or {"source": next((m.name for m in batch.models if m.role == "source"), "")},
    }


@dataclass
class FaceReport:
    """What :func:`build_face_report` wrote: the index, the files, the notes and warnings, the headline table."""

    index: Path | None
    files: list[Path]
    notes: list[str]
    warnings: list[str]
    headline: Table
    sessions: list[str]


def build_face_report(batch_dir: Path, wanted: list[str] | None, fmts: tuple[str, ...], out_dir: Path) -> FaceReport:
    """Write a face batch's report into ``out_dir`` (the caller swaps it in for ``report/``)."""
    batch = load_batch(batch_dir)
    source = next((m.name for m in batch.models if m.role == "source"), "mtcnn")
    sessions, skipped = load_face_sessions(batch_dir, batch, wanted)
    shown = tables(batch, sessions, source)
    scene = scene_report_table(list(capture_dbs(batch_dir)))  # capture --scene with a face sticker
    shown += [scene] if scene is not None else []
    sweeps, skipped_sweeps = load_face_sweeps(batch_dir, batch)  # photoproof sweep BATCH --model TARGET
    shown += face_sweep_tables(batch, sweeps)
    lines = notes(batch, sessions, source) + sticker_notes(batch) + face_sweep_notes(batch, sweeps) + skipped_sweeps
    warnings = [
        f"session {s.id} ({s.model}): channel check {s.verdict.verdict}: {s.verdict.why}; its photographed hiding "
        "is not reported as hiding"
        for s in sessions
        if limited(s) and s.verdict is not None
    ]
    files: list[Path] = []
    for t in shown:
        files += write_table(out_dir, t, "csv" in fmts)
    visual = "html" in fmts or "pdf" in fmts
    content = ReportContent(
        title=f"Photoproof face report: {batch.batch_id}",
        batch_id=batch.batch_id,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=lines + skipped,
        tables=shown,
        plots=[],
        gallery=gallery(batch_dir, batch, sessions) if visual else [],
        methods=methods(source, describe_truth(batch.config, source)),
        files=file_names([str(p.relative_to(out_dir)) for p in files], fmts),
        digital_only=not sessions,
        warnings=warnings,
    )
    index, rendered = render(out_dir, content, fmts)
    files += rendered
    atomic_write_json(out_dir / "report.json", face_report_json(batch, sessions, shown, lines + skipped))
    files.append(out_dir / "report.json")
    return FaceReport(index, files, lines + skipped, warnings, shown[0], [s.id for s in sessions])
