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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from capture.classify import OnnxClassifier
from capture.coverage import Coverage, CoverageTracker
from capture.digital import Top5Row, digital_top5
from capture.feedback import build_report, gate_hint, reject_reason
from capture.overlay import Outline, Window, draw_overlay, window_wanted
from capture.pipeline import ClassifierWorker, Job, LatestSlot, TileKey, TileResult
from capture.record import Recorder
from capture.sheets.detect import SheetDetector, SheetHit, TileCrop
from capture.sheets.quality import QualityGates
from capture.sheets.strip import StripMeter
from capture.stability import stability_top5
from capture.stoprule import SOURCE_ENDED, STOP_REQUESTED, WINDOW_CLOSED, StopRule
from contracts import signals
from contracts.batchdir import capture_db, check_session_name, crops_dir
from contracts.errors import UserError
from contracts.frames import FrameSource
from contracts.framing import FRAME_FILL, PLATEAU_TILE_FRACTION, tile_px_at_fill
from contracts.labels import target_map
from contracts.layout import Layout, check_sheets_pdf, load_layout, load_layouts
from contracts.manifest import Batch, load_batch, require_classifier_batch
from contracts.paths import atomic_write_bytes
from contracts.verdict import Tally, live_line

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What the live status line shows; passed to ``on_progress`` about twice a second."""

    elapsed: float
    frames: int
    fps: float
    tiles_per_s: float
    observations: int
    good: int
    dropped: int
    sheets_in_view: int
    min_good: int
    per_tile: int | None
    provider: str
    done: bool = False
    stopped_by: str = ""
    hint: str = ""  # why the tiles in view fail the gates, and what to do (empty when they pass)
    coverage: Coverage | None = None  # sheets seen, tiles with enough good observations, what to do next
    check: str = ""  # the channel check so far (contracts.verdict.live_line): whether the evidence suffices
    verdict: str = ""  # its verdict (contracts.verdict): ok, inconclusive, camera-limited, model-fragile, n/a

    def line(self) -> str:
        tile = f"  per-tile {self.min_good}/{self.per_tile}" if self.per_tile else ""
        hint = f"  | {self.hint}" if self.hint else ""
        check = f"  | {self.check}" if self.check else ""
        return (
            f"{self.elapsed:6.1f}s  {self.fps:5.1f} fps  {self.tiles_per_s:6.1f} tiles/s  sheets "
            f"{self.sheets_in_view}  obs {self.observations} (good {self.good})  dropped {self.dropped}{tile}  "
            f"[{self.provider}]{hint}{check}"
        )


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
    cluster = {it.id: f"{it.source.file}|{it.source.sha256}" for it in batch.items}
    return Tally(cluster, truth, right, stability, len(set(cluster.values())))


def resolution_warning(frame_wh: tuple[int, int], layout: Layout, input_size: int, model: str) -> str | None:
    """A warning when this camera cannot give the layout's tiles enough pixels, even with the sheet filling the frame.

    The same arithmetic as ``photoproof print --frame-size`` (:mod:`contracts.framing`): below
    ``MIN_TILE_FRACTION`` of the input size tiles fail the size gate; below
    ``PLATEAU_TILE_FRACTION`` the camera costs clean accuracy.
    """
    from capture.sheets.quality import MIN_TILE_FRACTION

    if not layout.sheets:
        return None
    w, h = frame_wh
    paper = (float(layout.sheets[0].size_mm[0]), float(layout.sheets[0].size_mm[1]))
    px = tile_px_at_fill((w, h), paper, layout.tile_mm)
    need, plateau = MIN_TILE_FRACTION * input_size, PLATEAU_TILE_FRACTION * input_size
    if px >= plateau:
        return None
    what = (
        f"below the {need:.0f} px {model}'s size gate needs: most tiles will fail it"
        if px < need
        else f"below the {plateau:.0f} px where clean accuracy holds: expect the camera to cost clean accuracy "
        "(the channel check will say how much)"
    )
    return (
        f"a {w}x{h} camera gives the layout's {layout.tile_mm:g} mm tiles about {px:.0f} px even with the sheet "
        f"filling {100 * FRAME_FILL:.0f} % of the frame, {what}; use a camera with more pixels (12 MP stills: "
        "--photos), "
        f"or re-print for this one: photoproof print BATCH --frame-size {w}x{h} --model {model}"
    )


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
    classifier: OnnxClassifier | None = None,
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
        classifier: an already built classifier (foreign models with flags, or a chosen provider).
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
    require_classifier_batch(batch, batch_dir, "capture")
    check_layout(batch, layout)
    rule = StopRule(frames, duration, per_tile)
    layouts = {lid: lay for lid, lay in load_layouts(batch_dir).items() if lid == layout.id or _usable(batch, lay, lid)}
    check_sheets_pdf(batch_dir, layout)
    if session_id is not None:
        check_session_name(session_id)
    clf = classifier or OnnxClassifier(Path(model_path))
    gates = gates or QualityGates.for_model(clf.spec.input_size, clf.name)
    used = {it.label.index for it in batch.items} | {it.target for it in batch.items if it.target is not None}
    lmap = target_map(batch.class_names(), clf.class_names, used, label_map, where=f"--model {clf.path}")
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
            config = {
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
            profile, seed = source.simulation() or (None, None)
            resume = recorder.start_session(
                source=source.description,
                model=clf.name,
                model_sha256=clf.sha256,
                provider=clf.provider,
                profile=profile,
                seed=seed,
                config=config,
                layout_id=layout.id,
            )
            digital = digital_top5(batch_dir, batch, clf)
            recorder.write_digital(digital)
            stable = stability_top5(batch_dir, batch, clf)
            recorder.write_stability(stable)
            tally = session_tally(batch, lmap, digital, stable)
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
            loop = _CameraLoop(detector, clf, recorder, slot, worker, batch, source, per_tile, lmap, seen)
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


class _CameraLoop:
    """The main-thread loop: grab, detect, crop, hand over, record the frame, draw."""

    def __init__(
        self,
        detector: SheetDetector,
        clf: OnnxClassifier,
        recorder: Recorder,
        slot: LatestSlot,
        worker: ClassifierWorker,
        batch: Batch,
        source: FrameSource,
        per_tile: int | None,
        label_map: dict[int, int] | None = None,
        seen_sheets: set[str] | None = None,
    ) -> None:
        self.detector, self.clf, self.recorder, self.slot, self.worker = detector, clf, recorder, slot, worker
        self.source, self.per_tile = source, per_tile
        self.true_class = {
            it.id: (label_map or {}).get(it.label.index, it.label.index) for it in batch.items
        }  # in the target's classes
        self.times: deque[float] = deque(maxlen=60)
        self.n = 0
        self.skipped = 0  # frames with sheets whose tiles were not cut because the classifier was busy
        self.sheets_in_view = 0
        self.hint = ""  # why the last cut tiles failed the gates (capture.feedback.gate_hint)
        self.started: float | None = None  # monotonic start of run()
        self._resolution_checked = False
        self._unresolved = 0  # detector.unresolved when last seen
        self.strip = StripMeter(detector.layout.marker_size_mm)  # calibration strip (capture.sheets.strip)
        self.coverage = CoverageTracker(detector.layout, per_tile, seen_sheets or ())

    def _outlines(self, hits: list[SheetHit], results: dict[TileKey, TileResult]) -> list[Outline]:
        """Tile outlines from the homographies alone (no cutting); ``good`` from each tile's last result."""
        out = []
        for h in hits:
            for t in h.sheet.tiles:
                quad, ahead = self.detector.tile_quad(h, t)
                r = results.get((h.sheet.sheet_id, t.item, t.role))
                if ahead:
                    out.append(Outline(h.sheet.sheet_id, t, quad, r.good if r else None))
        return out

    def _timeout(self, stop: threading.Event) -> Callable[[], None]:
        def fire() -> None:
            stop.set()
            self.source.interrupt()

        return fire

    def _note_unresolved(self) -> None:
        """Say so when a sheet of a re-printed batch waits for its QR code to tell which print it is."""
        if self.detector.unresolved != self._unresolved:
            self._unresolved = self.detector.unresolved
            self.hint = (
                "this batch was printed more than once: a sheet's tiles wait until its QR code is read "
                "(bring the camera closer to the code)"
            )

    def _warn_resolution(self, shape: tuple[int, ...]) -> None:
        """Once, at the first frame: warn when this camera cannot give the layout's tiles enough pixels."""
        if self._resolution_checked:
            return
        self._resolution_checked = True
        warn = resolution_warning((shape[1], shape[0]), self.detector.layout, self.clf.spec.input_size, self.clf.name)
        if warn:
            log.warning("%s", warn)

    def fps(self) -> float:
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(1e-9, self.times[-1] - self.times[0])

    def progress(self, elapsed: float, done: bool = False, stopped_by: str = "") -> Progress:
        _, min_good = self.worker.snapshot()
        s = self.worker.stats
        v = self.worker.verdict()
        return Progress(
            elapsed=elapsed,
            frames=self.n,
            fps=self.fps(),
            tiles_per_s=s.tiles_per_s(),
            observations=s.tiles,
            good=s.good,
            dropped=self.slot.dropped + self.skipped,
            sheets_in_view=self.sheets_in_view,
            min_good=min_good,
            per_tile=self.per_tile,
            provider=self.clf.provider.replace("ExecutionProvider", ""),
            done=done,
            stopped_by=stopped_by,
            hint=self.hint,
            coverage=self.coverage.snapshot(dict(self.worker.good_counts)),
            check=live_line(v) if v is not None else "",
            verdict=v.verdict if v is not None else "",
        )

    def run(
        self,
        stop: threading.Event,
        first_idx: int,
        t_offset: float,
        *,
        rule: StopRule,
        window: Window | None,
        render: bool,
        on_progress: Callable[[Progress], None] | None,
    ) -> str:
        """Process frames until ``rule`` (or the source, the window, ``stop``) ends the run; return why."""
        t0: float | None = None  # the clocks (--duration, the status line) start at the first frame, not at launch
        watchdog = None
        next_report, why = 0.0, SOURCE_ENDED
        try:
            for frame in self.source.frames():
                if stop.is_set():
                    why = self._stop_why()
                    break
                if t0 is None:
                    t0 = self.started = time.monotonic()
                    if rule.duration is not None:  # a live source waiting for a dropped stream must still stop on time
                        watchdog = threading.Timer(rule.duration + 0.5, self._timeout(stop))
                        watchdog.daemon = True
                        watchdog.start()
                now = time.monotonic() - t0
                idx = first_idx + self.n
                hits, crops, cut = self._step(frame.image, frame.index, idx, t_offset + now, stop)
                if render and not self._draw(frame.image, hits, crops, cut, now, window):
                    why = WINDOW_CLOSED
                    break
                if on_progress is not None and now >= next_report:
                    next_report = now + 0.5
                    on_progress(self.progress(now))
                why = "classifier failed" if self.worker.error is not None else ""
                why = why or rule.reason(idx + 1, now, tiles_done=self.worker.all_done.is_set())
                if why:
                    break
            else:
                why = SOURCE_ENDED
                if stop.is_set():
                    why = (rule.out_of_time(time.monotonic() - t0) if t0 is not None else "") or self._stop_why()
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if window is not None:
                window.close()
        if self.source.wants_feedback:
            self._feedback(-1, (0, 0), [], [], stop, stopped_by=why)
        if on_progress is not None:
            on_progress(self.progress(0.0 if t0 is None else time.monotonic() - t0, done=True, stopped_by=why))
        return why

    def _step(
        self, image: np.ndarray, index: int, idx: int, t: float, stop: threading.Event
    ) -> tuple[list[SheetHit], list[TileCrop], bool]:
        """Detect, record the frame, cut its tiles and hand them over; return the hits, the crops and whether cut."""
        self._warn_resolution(image.shape)
        hits = self.detector.detect(image)
        self.coverage.saw(h.sheet.sheet_id for h in hits)
        self._note_unresolved()
        self.recorder.add_frame(idx, t, [h.sheet.sheet_id for h in hits])
        self.strip.offer(self.recorder, idx, image, hits)  # calibration strip, for 'photoproof calibrate'
        # With a live source, cut tiles only when the classifier will want them within
        # about two frames; earlier crops would only be superseded. Outline them anyway.
        cut = bool(hits) and (not self.source.live or self.worker.ready_within(2.0 / max(self.fps(), 5.0)))
        size, crop_pct = self.clf.spec.input_size, self.clf.spec.crop_pct
        crops = [c for h in hits for c in self.detector.crop_tiles(image, h, size, crop_pct)] if cut else []
        if cut:
            self.hint = gate_hint(crops, self.detector.gates)
            for c in crops:
                reason = reject_reason(self.detector.gates, c)
                if reason:
                    self.coverage.rejected_as((c.sheet_id, c.tile.item, c.tile.role), reason)
        if crops:
            self.slot.put(Job(idx, crops), block=not self.source.live, stop=stop)
        elif hits:
            self.skipped += 1
        self.n += 1
        self.sheets_in_view = len(hits)
        self.times.append(time.monotonic())
        if self.source.wants_feedback:
            self._feedback(index, image.shape, hits, crops, stop, wait=idx)
        return hits, crops, cut

    def _draw(
        self,
        image: np.ndarray,
        hits: list[SheetHit],
        crops: list[TileCrop],
        cut: bool,
        now: float,
        window: Window | None,
    ) -> bool:
        """Draw the live view (and show it, with a window); ``False`` once the window is closed."""
        results, _ = self.worker.snapshot()
        if cut:
            gates = self.detector.gates
            outlines = [Outline(c.sheet_id, c.tile, c.quad_px, c.good, reject_reason(gates, c)) for c in crops]
        else:
            outlines = self._outlines(hits, results)
        line = self.progress(now).line()
        img = draw_overlay(image, hits, outlines, results, self.true_class, self.clf.class_names, line)
        return window is None or window.show(img)

    def _stop_why(self) -> str:
        """Why a stop was asked: a failed write (a full disk), a signal, or a stop from elsewhere."""
        if self.recorder.error is not None:
            return (
                f"the laptop could not save the capture ({self.recorder.failure[:120]}): "
                "the session stopped with what was saved; free disk space on the laptop"
            )
        return signals.received() or STOP_REQUESTED

    def _feedback(
        self,
        index: int,
        shape: tuple[int, ...],
        hits: list[SheetHit],
        crops: list[TileCrop],
        stop: threading.Event,
        wait: int | None = None,
        stopped_by: str = "",
    ) -> None:
        """Tell the source what this frame showed, once its crops are classified (``capture.feedback``)."""
        keys = {(c.sheet_id, c.tile.item, c.tile.role) for c in crops}
        deadline = time.monotonic() + 30.0
        results, min_good = self.worker.snapshot()
        while (
            wait is not None and keys and self.worker.is_alive() and not stop.is_set() and time.monotonic() < deadline
        ):
            if all(k in results and results[k].frame_idx >= wait for k in keys):
                break
            time.sleep(0.005)
            results, min_good = self.worker.snapshot()
        quads = (
            [(o.sheet_id, o.tile.item, o.tile.role, o.quad_px) for o in self._outlines(hits, results)]
            if not crops
            else []
        )
        s = self.worker.stats
        self.source.feedback(
            build_report(
                index,
                shape,
                hits,
                crops,
                quads,
                results,
                dict(self.worker.good_counts),
                self.true_class,
                self.clf.class_names,
                self.detector.gates,
                min_good=min_good,
                per_tile=self.per_tile,
                observations=s.tiles,
                good=s.good,
                done=bool(stopped_by),
                stopped_by=stopped_by,
                coverage=self.coverage.snapshot(dict(self.worker.good_counts)),
            )
        )
