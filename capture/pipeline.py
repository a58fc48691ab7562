"""The classification side of the capture pipeline.

The camera loop (grab, detect, crop, display) runs at camera rate in the main
thread and hands each frame's crops to :class:`ClassifierWorker` through a
one-slot mailbox (:class:`LatestSlot`). For a live source the loop cuts tiles
only when the mailbox is empty, and a newer job replaces one not yet taken, so
the classifier always works on the newest crops and no queue grows; for files
the loop waits, so no frame is skipped. All tiles of a frame go to onnxruntime
in one batch, and each observation row names the frame its crop came from.

Cores: onnxruntime on the CPU gets all cores but one; while the classifier
thread runs, OpenCV's own thread pool (used by the camera loop's detection,
warps and drawing) is held to the cores onnxruntime leaves free, so that the
loop's parallel OpenCV calls do not take a core from the classifier.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from capture.classify import CPU, OnnxClassifier
from capture.facetarget import FaceTarget
from capture.record import Observation, Recorder
from capture.sheets.detect import TileCrop
from contracts.errors import UserError
from contracts.verdict import Tally, Verdict, judge

log = logging.getLogger(__name__)

TileKey = tuple[str, str, str]  # sheet_id, item_id, role


def tile_key(c: TileCrop) -> TileKey:
    return (c.sheet_id, c.tile.item, c.tile.role)


@dataclass
class Job:
    """The crops of one frame, waiting for the classifier."""

    frame_idx: int
    crops: list[TileCrop]


class LatestSlot:
    """A mailbox of one job. ``put(block=False)`` replaces a waiting job (it is dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._job: Job | None = None
        self._closed = False
        self.dropped = 0

    def put(self, job: Job, block: bool, stop: threading.Event | None = None) -> None:
        with self._cond:
            if block:
                while self._job is not None and not self._closed and not (stop is not None and stop.is_set()):
                    self._cond.wait(0.1)
            elif self._job is not None:
                self.dropped += 1
            self._job = job
            self._cond.notify_all()

    def take(self, timeout: float = 0.1) -> Job | None:
        with self._cond:
            if self._job is None and not self._closed:
                self._cond.wait(timeout)
            job, self._job = self._job, None
            self._cond.notify_all()
            return job

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def empty(self) -> bool:
        with self._cond:
            return self._job is None


@dataclass
class TileResult:
    """The latest classification of one tile, for the live overlay."""

    top1: int
    prob: float
    frame_idx: int
    good: bool


@dataclass
class GalleryEntry:
    sharpness: float
    frame_idx: int
    crop: np.ndarray


@dataclass
class WorkerStats:
    tiles: int = 0  # observations recorded
    good: int = 0
    nonfinite: int = 0  # crops whose model output was NaN or infinite: not recorded, counted here
    batches: int = 0
    busy_s: float = 0.0
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def tiles_per_s(self) -> float:
        """Tiles classified per second over the last few seconds."""
        now = time.monotonic()
        pts = [(t, n) for t, n in self.recent if now - t < 3.0]
        if len(pts) < 2:
            return 0.0
        span = now - pts[0][0]
        return sum(n for _, n in pts[1:]) / span if span > 0 else 0.0


def loop_threads(classifier: OnnxClassifier | FaceTarget, cores: int | None = None) -> int | None:
    """OpenCV threads for the camera loop while ``classifier`` runs: the cores onnxruntime leaves free, at least one.

    ``None`` when the classifier runs on a GPU (then the CPU is the loop's).
    """
    if classifier.provider != CPU:
        return None
    return max(1, (cores or os.cpu_count() or 1) - classifier.threads)


class ClassifierWorker(threading.Thread):
    """Classify the newest crops in a thread; record observations; track the per-tile counts.

    Args:
        classifier: the ONNX model: a classifier, or a face detector (:class:`capture.facetarget.FaceTarget`,
            whose rows also record the boxes it found on each crop).
        recorder: where observations go.
        slot: the mailbox the camera loop fills.
        all_tiles: every tile of the layout (for ``--per-tile``).
        per_tile: stop once every tile has this many good observations (``None``: never).
        keep_crops: keep the sharpest and the blurriest crop of each tile for the gallery.
        good_counts: counts carried over from an earlier run of the session.
        tally: the session's clean evidence for the channel check (:class:`contracts.verdict.Tally`), fed
            with every recorded observation; read with :meth:`verdict`.
    """

    def __init__(
        self,
        classifier: OnnxClassifier | FaceTarget,
        recorder: Recorder,
        slot: LatestSlot,
        all_tiles: list[TileKey],
        *,
        per_tile: int | None = None,
        keep_crops: bool = True,
        good_counts: dict[TileKey, int] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        tally: Tally | None = None,
    ) -> None:
        super().__init__(name="capture-classify", daemon=True)
        self.tally = tally
        self.classifier, self.recorder, self.slot = classifier, recorder, slot
        self.per_tile, self.keep_crops = per_tile, keep_crops
        self.good_counts: dict[TileKey, int] = {k: 0 for k in all_tiles}
        for k, n in (good_counts or {}).items():
            if k in self.good_counts:
                self.good_counts[k] = n
        self.results: dict[TileKey, TileResult] = {}
        self.best: dict[TileKey, GalleryEntry] = {}
        self.worst: dict[TileKey, GalleryEntry] = {}
        self.stats = WorkerStats()
        self.all_done = threading.Event()
        self.error: BaseException | None = None
        self.busy_since: float | None = None  # monotonic start of the job in hand
        self.mean_job_s = 0.0  # running mean of the time a job takes
        self._on_error = on_error
        self._lock = threading.Lock()
        self._check_done()

    def run(self) -> None:
        previous = cv2.getNumThreads()
        threads = loop_threads(self.classifier)
        if threads is not None:
            cv2.setNumThreads(threads)  # process-wide: the camera loop's OpenCV calls keep off onnxruntime's cores
        try:
            while True:
                job = self.slot.take(0.1)
                if job is None:
                    if self.slot.closed:
                        return
                    continue
                self.process(job)
        except BaseException as e:  # reported to the camera loop, which stops the session
            if isinstance(
                e, UserError
            ):  # e.g. the recorder's write failed (a full disk): a one-line error, said where it arose
                log.debug("classifier thread stopped: %s", e)
            else:
                log.exception("classifier thread failed")
            self.error = e
            if self._on_error:
                self._on_error(e)
        finally:
            if threads is not None:
                cv2.setNumThreads(previous)

    def process(self, job: Job) -> None:
        """Classify one frame's crops in one batch and record them."""
        if not job.crops:
            return
        t0 = time.perf_counter()
        self.busy_since = time.monotonic()
        boxes: list[str] | list[None] = [None] * len(job.crops)
        try:
            if isinstance(self.classifier, FaceTarget):
                ids, probs, boxes = self.classifier.detect_tiles(job.crops)
            else:
                ids, probs = self.classifier.classify(np.stack([c.crop_rgb for c in job.crops]))
        finally:
            took = time.perf_counter() - t0
            self.mean_job_s = took if self.mean_job_s == 0 else 0.8 * self.mean_job_s + 0.2 * took
            self.busy_since = None
        finite = np.isfinite(probs).all(axis=1)
        if not finite.all():
            log.warning(
                "the model gave NaN or infinite outputs for %d of %d crops of frame %d; those are not recorded",
                int((~finite).sum()),
                len(finite),
                job.frame_idx,
            )
        kept = [(c, i, p, b) for c, i, p, b, ok in zip(job.crops, ids, probs, boxes, finite, strict=True) if ok]
        obs = [
            Observation(
                frame_idx=job.frame_idx,
                sheet_id=c.sheet_id,
                item_id=c.tile.item,
                role=c.tile.role,
                quality=c.quality,
                good=c.good,
                top5_ids=[int(v) for v in i],
                top5_probs=[float(v) for v in p],
                layout_id=c.layout_id or None,
                boxes=b,
            )
            for c, i, p, b in kept
        ]
        self.recorder.add_observations(obs)  # first: only what was recorded is counted
        with self._lock:
            self.stats.nonfinite += int((~finite).sum())
            for c, i, p, _ in kept:
                key = tile_key(c)
                self.results[key] = TileResult(top1=int(i[0]), prob=float(p[0]), frame_idx=job.frame_idx, good=c.good)
                if self.tally is not None:
                    self.tally.add(c.tile.item, c.tile.role, int(i[0]), c.good)
                if c.good:
                    self.good_counts[key] = self.good_counts.get(key, 0) + 1
                    self.stats.good += 1
                if self.keep_crops:
                    self._gallery(key, c, job.frame_idx)
            self.stats.tiles += len(obs)
            self.stats.batches += 1
            self.stats.busy_s += time.perf_counter() - t0
            self.stats.recent.append((time.monotonic(), len(job.crops)))
        self._check_done()

    def _gallery(self, key: TileKey, c: TileCrop, frame_idx: int) -> None:
        b, w = self.best.get(key), self.worst.get(key)
        sharp = c.quality.sharpness
        if b is None or sharp > b.sharpness:
            self.best[key] = GalleryEntry(sharp, frame_idx, c.crop_rgb)
        if w is None or sharp < w.sharpness:
            self.worst[key] = GalleryEntry(sharp, frame_idx, c.crop_rgb)

    def _check_done(self) -> None:
        if self.per_tile is not None and self.good_counts and min(self.good_counts.values()) >= self.per_tile:
            self.all_done.set()

    def ready_within(self, seconds: float) -> bool:
        """True when the mailbox is empty and the job in hand (if any) should end within ``seconds``."""
        if not self.slot.empty():
            return False
        since = self.busy_since
        return since is None or self.mean_job_s - (time.monotonic() - since) <= seconds

    def verdict(self) -> Verdict | None:
        """The channel check's verdict on what was recorded so far (:func:`contracts.verdict.judge`)."""
        if self.tally is None:
            return None
        with self._lock:
            ev = self.tally.evidence()
        return judge(ev)

    def snapshot(self) -> tuple[dict[TileKey, TileResult], int]:
        """A copy of the latest results per tile, and the smallest good count over all tiles."""
        with self._lock:
            return dict(self.results), min(self.good_counts.values(), default=0)
