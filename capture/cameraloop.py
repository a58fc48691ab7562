"""The camera loop of a capture session: detect sheets, cut tiles, classify, record, draw, report progress.

:func:`capture.session.run_capture` sets up the batch, the model and the database, then runs one
:class:`CameraLoop` over the frame source; the loop reports a :class:`Progress` about twice a second,
with the coverage (what to show next) and the channel check's live verdict (:mod:`contracts.verdict`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from capture.classify import OnnxClassifier
from capture.coverage import Coverage, CoverageTracker
from capture.facetarget import FaceTarget
from capture.feedback import build_report, gate_hint, reject_reason
from capture.overlay import Outline, Window, draw_overlay
from capture.pipeline import ClassifierWorker, Job, LatestSlot, TileKey, TileResult
from capture.record import Recorder
from capture.sheets.detect import SheetDetector, SheetHit, TileCrop
from capture.sheets.strip import StripMeter
from capture.stoprule import SOURCE_ENDED, STOP_REQUESTED, WINDOW_CLOSED, StopRule
from contracts import signals
from contracts.frames import FrameSource
from contracts.framing import FRAME_FILL, PLATEAU_TILE_FRACTION, framed_mm, tile_px_at_fill
from contracts.layout import Layout
from contracts.manifest import Batch
from contracts.verdict import live_line

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
    px = tile_px_at_fill((w, h), framed_mm(layout), layout.tile_mm)  # a dense sheet: one pair fills the frame
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
        f"a {w}x{h} camera gives the layout's {layout.tile_mm:g} mm tiles about {px:.0f} px even with "
        f"{'one pair and its markers' if layout.dense else 'the sheet'} filling {100 * FRAME_FILL:.0f} % of the "
        f"frame, {what}; use a camera with more pixels (12 MP stills: "
        "--photos), "
        f"or re-print for this one: photoproof print BATCH --frame-size {w}x{h} --model {model}"
    )


class CameraLoop:
    """The main-thread loop: grab, detect, crop, hand over, record the frame, draw."""

    def __init__(
        self,
        detector: SheetDetector,
        clf: OnnxClassifier | FaceTarget,
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
                hits, crops, cut = self._step(frame.image, frame.index, idx, t_offset + now, stop, frame.jpeg_quality)
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
        self, image: np.ndarray, index: int, idx: int, t: float, stop: threading.Event, jpeg_quality: int | None = None
    ) -> tuple[list[SheetHit], list[TileCrop], bool]:
        """Detect, record the frame, cut its tiles and hand them over; return the hits, the crops and whether cut."""
        self._warn_resolution(image.shape)
        hits = self.detector.detect(image)
        self.coverage.saw(h.sheet.sheet_id for h in hits)
        self._note_unresolved()
        self.recorder.add_frame(idx, t, [h.sheet.sheet_id for h in hits])
        self.strip.offer(self.recorder, idx, image, hits, jpeg_quality)  # calibration strip, for 'photoproof calibrate'
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
