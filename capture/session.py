"""One capture session: frames in, ``BATCH/captures/<session>.sqlite`` out.

``run_capture`` loads the batch, the layout and the model, records the model's
top-5 on every saved PNG (the ``digital`` table), then runs the camera loop:
detect sheets, cut tiles, hand them to the classifier thread, record frames and
observations, draw the live view. It stops after ``frames`` frames, ``duration``
seconds, when every tile has ``per_tile`` good observations, when the source
ends, on q/Esc in the window, or on SIGINT/SIGTERM, and always closes the
database cleanly (``sessions.stopped`` set).
"""

from __future__ import annotations

import logging
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from capture.cameraloop import CameraLoop, Progress
from capture.classify import OnnxClassifier
from capture.digital import Top5Row, digital_top5
from capture.facetarget import FaceTarget, check_pairing, is_detector_file
from capture.overlay import Window, window_wanted
from capture.pipeline import ClassifierWorker, LatestSlot, TileKey
from capture.record import Recorder
from capture.sessionrow import SessionStart
from capture.sheets.detect import SheetDetector
from capture.sheets.quality import QualityGates
from capture.stability import stability_top5
from capture.stoprule import StopRule
from contracts import signals
from contracts.batchdir import capture_db, check_session_name, crops_dir
from contracts.errors import UserError
from contracts.frames import FrameSource
from contracts.labels import target_map
from contracts.layout import Layout, check_sheets_pdf, load_layout, load_layouts
from contracts.manifest import Batch, load_batch
from contracts.paths import atomic_write_bytes
from contracts.verdict import Tally

log = logging.getLogger(__name__)


def default_session_id(source: FrameSource) -> str:
    """``<date>-<time>-<source kind>-<6 random hex digits>``: two stations started in the same second never collide."""
    kind = re.sub(r"[^A-Za-z0-9]+", "", source.description.split(":", 1)[0]) or "session"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(3)}"


def check_layout(batch: Batch, layout: Layout, where: str = "layout.json") -> None:
    """``layout.json`` (or a kept layout, ``where``) belongs to ``batch.json`` and lays out only its items (a one-line
    error otherwise)."""
    if layout.batch_id != batch.batch_id:
        raise UserError(
            f"{where} is for batch {layout.batch_id}, batch.json for {batch.batch_id}; re-run 'photoproof print'"
        )
    known = {it.id for it in batch.items}
    for s in layout.sheets:
        for t in s.tiles:
            if t.item not in known:
                raise UserError(
                    f"{where}: sheet {s.sheet_id} has a tile of item {t.item!r}, which batch.json lacks; re-run "
                    "'photoproof print'"
                )


def _usable(batch: Batch, layout: Layout, lid: str) -> bool:
    """Whether a kept layout fits this batch (else its sheets are refused, with a warning)."""
    try:
        check_layout(batch, layout, where=f"layouts/{lid}.json")
    except UserError as e:
        log.warning("%s; photos of its sheets are ignored", e)
        return False
    return True


def session_tally(batch: Batch, lmap: dict[int, int] | None, digital: list[Top5Row], stable: list[Top5Row]) -> Tally:
    """The live channel check's evidence (:class:`contracts.verdict.Tally`), from the session's digital records."""
    truth = {it.id: (lmap or {}).get(it.label.index, it.label.index) for it in batch.items}
    right = {item: int(ids[0]) == truth[item] for item, role, ids, _ in digital if role == "clean" and item in truth}
    per: dict[str, list[bool]] = {}
    for item, _, ids, _ in stable:
        if item in truth:
            per.setdefault(item, []).append(int(ids[0]) == truth[item])
    stability = {k: sum(v) / len(v) for k, v in per.items()}
    cluster = {it.id: it.photo for it in batch.items}
    return Tally(cluster, truth, right, stability, len(set(cluster.values())))


def save_gallery(crops_dir: Path, worker: ClassifierWorker) -> list[str]:
    """Write each tile's sharpest and blurriest crop as ``<item>-<role>-<frame>.png``; return the names."""
    names: list[str] = []
    for key, best in worker.best.items():
        _, item, role = key
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item)
        for old in crops_dir.glob(f"{safe}-{role}-*.png") if crops_dir.is_dir() else []:
            old.unlink(missing_ok=True)
        for entry in {best.frame_idx: best, worker.worst[key].frame_idx: worker.worst[key]}.values():
            ok, buf = cv2.imencode(".png", cv2.cvtColor(entry.crop, cv2.COLOR_RGB2BGR))
            if ok:
                name = f"{safe}-{role}-{entry.frame_idx}.png"
                atomic_write_bytes(crops_dir / name, buf.tobytes())
                names.append(name)
    return sorted(names)


def _target(
    batch_dir: Path,
    batch: Batch,
    given: OnnxClassifier | FaceTarget | None,
    model_path: Path,
    label_map: dict[str, str] | None,
) -> tuple[OnnxClassifier | FaceTarget, dict[int, int] | None]:
    """The session's target (a classifier, or a face detector for a face batch) and its label map."""
    clf = given
    if clf is None:
        clf = FaceTarget(model_path) if is_detector_file(model_path) else OnnxClassifier(model_path)
    check_pairing(batch, batch_dir, isinstance(clf, FaceTarget), f"--model {clf.path}")
    if isinstance(clf, FaceTarget):
        clf.bind(batch_dir, batch)
        return clf, None
    used = {it.label.index for it in batch.items} | {it.target for it in batch.items if it.target is not None}
    return clf, target_map(batch.class_names(), clf.class_names, used, label_map, where=f"--model {clf.path}")


def _digital(
    batch_dir: Path, batch: Batch, clf: OnnxClassifier | FaceTarget, recorder: Recorder
) -> tuple[list[Top5Row], list[Top5Row]]:
    """Record the target on the saved PNGs and its stability baseline; return what the tally counts.

    A face detector records its boxes on each PNG, and its baseline on the items with truth faces (an item without
    one counts nothing in the channel check).
    """
    if isinstance(clf, FaceTarget):
        rows, boxes = clf.digital(batch_dir, batch)
        digital = [(i, r, np.array(ids), np.array(ps)) for i, r, ids, ps in rows]
        recorder.write_digital(digital, boxes)
        faces = {it.id for it in batch.items if it.truth is not None and it.truth.boxes}
        stable = [(i, t, np.array(ids), np.array(ps)) for i, t, ids, ps in clf.stability(batch_dir, batch)]
        recorder.write_stability(stable)
        return [r for r in digital if r[0] in faces], stable
    digital = digital_top5(batch_dir, batch, clf)
    recorder.write_digital(digital)
    stable = stability_top5(batch_dir, batch, clf)
    recorder.write_stability(stable)
    return digital, stable


class _Signals:
    """SIGINT/SIGTERM set the stop flag (a second one raises KeyboardInterrupt); restored on exit."""

    def __init__(self, stop: threading.Event, source: FrameSource) -> None:
        self.stop, self.source = stop, source
        self.old: dict[int, Any] = {}
        self.received: str = ""

    def _handle(self, signum: int, _frame: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        signals.note(signum)  # the CLI exits 128 + signum once the session is closed
        self.received = signal.Signals(signum).name
        self.stop.set()
        self.source.interrupt()

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def run_capture(
    batch_dir: Path,
    model_path: Path,
    source: FrameSource,
    *,
    frames: int | None = None,
    duration: float | None = None,
    per_tile: int | None = None,
    headless: bool = True,
    session_id: str | None = None,
    save_crops: bool = True,
    gates: QualityGates | None = None,
    classifier: OnnxClassifier | FaceTarget | None = None,
    render: bool | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop_event: threading.Event | None = None,
    label_map: dict[str, str] | None = None,
) -> Path:
    """Record one capture session of ``batch_dir`` seen through ``source``; return the database path.

    Args:
        batch_dir: the batch (``batch.json``, ``layout.json``, ``images/``).
        model_path: the ONNX target model (ignored when ``classifier`` is given).
        source: any :class:`FrameSource`; it is opened and closed here. A simulated one
            carries its profile and seed (``source.simulation()``), which are recorded.
        frames, duration, per_tile: stop after N frames, S seconds, or K good observations of every tile.
        headless: no window (also when there is no display).
        session_id: the database's name (default: date, time, source kind and a random suffix). An existing
            session of the same model is resumed; ``frames`` and ``per_tile`` then count
            what it already holds, so a finished session is not extended.
        save_crops: keep each tile's sharpest and blurriest crop under ``captures/<session>/crops/``.
        gates: quality gates (default ``QualityGates.for_model``: from the model's input size).
        classifier: an already built classifier (foreign models with flags, or a chosen provider), or a face
            detector (:class:`capture.facetarget.FaceTarget`) for a face batch; built from ``model_path`` when absent.
        render: draw the overlay even when headless (the bench does); default: only with a window.
        on_progress: called about twice a second with a :class:`Progress`, and once at the end.
        stop_event: set it from another thread to stop the session.
        label_map: batch class name -> target class name (``--label-map``, see
            :func:`contracts.labels.read_label_map`); without it, labels map by name.
            A label that cannot be mapped is an error; the map is recorded in the
            session's config (``labels``) for the report.
    """
    batch_dir = Path(batch_dir)
    batch, layout = load_batch(batch_dir), load_layout(batch_dir)
    check_layout(batch, layout)
    rule = StopRule(frames, duration, per_tile)
    layouts = {lid: lay for lid, lay in load_layouts(batch_dir).items() if lid == layout.id or _usable(batch, lay, lid)}
    check_sheets_pdf(batch_dir, layout)
    if session_id is not None:
        check_session_name(session_id)
    clf, lmap = _target(batch_dir, batch, classifier, Path(model_path), label_map)
    gates = gates or QualityGates.for_model(clf.spec.input_size, clf.name)
    detector = SheetDetector(layout, gates, batch_dir=batch_dir, layouts=layouts)
    show = window_wanted(headless)
    stop = stop_event or threading.Event()
    with _Signals(stop, source) as sig, source:
        sid = session_id or default_session_id(source)
        db_path = capture_db(batch_dir, sid)

        def on_write_failure(_: BaseException) -> None:  # a full disk: stop now, say why at the end
            stop.set()
            source.interrupt()

        recorder = Recorder(db_path, sid, batch.batch_id, on_failure=on_write_failure)
        stopped_by, worker, loop = "error", None, None
        try:
            config: dict[str, Any] = {
                "frames": frames,
                "duration": duration,
                "per_tile": per_tile,
                "gates": gates.to_dict(),
                "preprocess": clf.spec.to_dict(),
                "model_file": str(clf.path),
                "crop_size": clf.spec.input_size,
                "live": source.live,
                "save_crops": save_crops,
            }
            if lmap is not None:  # the target answers in its own label set: the report maps truth through this
                config["labels"] = {
                    "target_classes": list(clf.class_names),
                    "map": {str(b): t for b, t in sorted(lmap.items())},
                }
            sim = source.simulation()
            profile, seed = (sim[0].name, sim[1]) if sim else (None, None)
            if sim and sim[0].calibrated_from:
                config["calibrated_from"] = list(sim[0].calibrated_from)
            resume = recorder.start_session(
                SessionStart(
                    source=source.description,
                    model=clf.name,
                    model_sha256=clf.sha256,
                    provider=clf.provider,
                    profile=profile,
                    seed=seed,
                    config=config,
                    layout_id=layout.id,
                )
            )
            tally = session_tally(batch, lmap, *_digital(batch_dir, batch, clf, recorder))
            for item, role, top1, good in recorder.outcomes() if resume.next_frame else []:
                tally.add(item, role, top1, good)  # a resumed session's verdict counts what it already holds
            slot = LatestSlot()
            all_tiles: list[TileKey] = [(s.sheet_id, t.item, t.role) for s in layout.sheets for t in s.tiles]
            worker = ClassifierWorker(
                clf,
                recorder,
                slot,
                all_tiles,
                per_tile=per_tile,
                keep_crops=save_crops,
                good_counts=resume.good_counts,
                on_error=lambda e: stop.set(),
                tally=tally,
            )
            worker.start()
            seen = {k[0] for k, n in (resume.good_counts or {}).items() if n > 0}
            loop = CameraLoop(detector, clf, recorder, slot, worker, batch, source, per_tile, lmap, seen)
            if rule.reason(resume.next_frame, 0.0, tiles_done=worker.all_done.is_set()):
                log.warning(
                    "session %s already has what was asked (%s); nothing to add",
                    sid,
                    f"{resume.next_frame} frames" if frames else f"{per_tile} per tile",
                )
                stopped_by = "already complete"
            else:
                stopped_by = loop.run(
                    stop,
                    resume.next_frame,
                    resume.t_offset,
                    rule=rule,
                    window=Window() if show else None,
                    render=show if render is None else render,
                    on_progress=on_progress,
                )
            if sig.received:
                stopped_by = sig.received
        finally:
            notes: dict[str, Any] = {"stopped_by": stopped_by}
            if worker is not None:
                worker.slot.close()
                worker.join(timeout=60.0)
                if on_progress is not None and loop is not None and loop.started is not None:
                    # the last word, once every crop is classified: the channel check on everything recorded
                    on_progress(loop.progress(time.monotonic() - loop.started, done=True, stopped_by=stopped_by))
                skipped = loop.skipped if loop is not None else 0
                notes.update(
                    observations=worker.stats.tiles,
                    good=worker.stats.good,
                    nonfinite_outputs=worker.stats.nonfinite,
                    dropped_jobs=worker.slot.dropped + skipped,
                    classifier_busy_s=round(worker.stats.busy_s, 3),
                    classifier_batches=worker.stats.batches,
                )
                if save_crops:
                    try:
                        notes["crops"] = save_gallery(crops_dir(batch_dir, sid), worker)
                    except OSError as e:
                        log.error("could not save the crop gallery: %s", e)
            notes.update(
                scale_warnings=dict(detector.scale_warnings),
                foreign_markers=sorted(detector.foreign_ids),
                foreign_qr=sorted(detector.foreign_qr),
                reconnects=int(getattr(source, "reconnects", 0)),
            )
            recorder.close(notes)
        if recorder.error is not None:  # disk full or the like: say why the session stopped
            raise recorder.error
        if worker is not None and worker.error is not None:
            raise worker.error
    log.info("session %s: %s", sid, notes)
    return db_path
