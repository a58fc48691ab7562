"""The newest-frame grabber behind the live sources: a background thread reads a device or stream and keeps
only the newest frame, so a consumer that falls behind gets fresh frames instead of a growing backlog (the
idea of imutils' ``WebcamVideoStream``, with a lock, a context manager, a clean release and monotonic
timestamps). When a stream drops, the thread reconnects with exponential backoff (:class:`Backoff`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from capture.sources.mjpeg import STREAM_ERRORS

log = logging.getLogger(__name__)


class Reader(Protocol):
    """One open connection to a device or stream."""

    def read(self) -> np.ndarray | None:
        """The next BGR frame, or ``None`` when the stream has ended or dropped."""

    def close(self) -> None: ...


@dataclass
class Backoff:
    """Exponential backoff: ``initial``, ``initial*factor``, ... up to ``maximum`` seconds."""

    initial: float = 0.25
    factor: float = 2.0
    maximum: float = 8.0
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.initial

    def delay(self) -> float:
        d = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return d

    def reset(self) -> None:
        self._next = self.initial


# -- readers -------------------------------------------------------------------


class OpenCVReader:
    """A ``cv2.VideoCapture`` (camera index or stream URL through FFmpeg)."""

    def __init__(self, cap: cv2.VideoCapture) -> None:
        self.cap = cap

    def read(self) -> np.ndarray | None:
        ok, img = self.cap.read()
        return img if ok and img is not None and img.size else None

    def close(self) -> None:
        self.cap.release()


# -- the newest-frame grabber ------------------------------------------------------


class LatestFrameGrabber:
    """A thread that reads frames from ``connect()`` and keeps only the newest one.

    Args:
        connect: opens a :class:`Reader`; raises ``OSError`` (or returns ``None``) when it cannot.
        name: what to call the source in log messages.
        backoff: reconnection delays after a drop.
    """

    def __init__(self, connect: Callable[[], Reader | None], name: str, backoff: Backoff | None = None) -> None:
        self._connect = connect
        self.name = name
        self.backoff = backoff or Backoff()
        self._cond = threading.Condition(threading.Lock())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: Reader | None = None
        self._latest: tuple[int, float, np.ndarray] | None = None
        self._seq = 0
        self._t0 = time.monotonic()
        self.reconnects = 0
        self.frames_read = 0

    def start(self, reader: Reader | None = None) -> LatestFrameGrabber:
        """Start the thread, optionally with an already open reader."""
        self._reader = reader
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"grab:{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        """Read until stopped. Nothing a device or a peer does ends this thread: every failure is a drop, then a
        reconnect.
        """
        dropped_at: float | None = None
        while not self._stop.is_set():
            if self._reader is None:
                try:
                    self._reader = self._connect()
                except STREAM_ERRORS as e:
                    log.debug("%s: connect failed: %s", self.name, e)
                    self._reader = None
                except Exception as e:  # a driver or peer failure we did not foresee: log it, keep trying
                    log.warning("%s: connect failed unexpectedly (%s: %s)", self.name, type(e).__name__, e)
                    self._reader = None
                if self._reader is None:
                    self._stop.wait(self.backoff.delay())
                    continue
                self.reconnects += 1
                self.backoff.reset()
                log.warning(
                    "%s: reconnected after %.1f s", self.name, time.monotonic() - (dropped_at or time.monotonic())
                )
            try:
                img = self._reader.read()
            except Exception as e:  # the thread must not die silently: an unforeseen read failure is a drop
                log.warning("%s: read failed unexpectedly (%s: %s)", self.name, type(e).__name__, e)
                img = None
            if img is None:
                if self._stop.is_set():
                    break
                dropped_at = time.monotonic()
                log.warning("%s: stream dropped; reconnecting with backoff (the recording goes on)", self.name)
                self._close_reader()
                self._stop.wait(self.backoff.delay())
                continue
            with self._cond:
                self._seq += 1
                self.frames_read += 1
                self._latest = (self._seq, time.monotonic() - self._t0, img)
                self._cond.notify_all()
        self._close_reader()

    def _close_reader(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception as e:  # a driver error while releasing must not kill the thread
                log.debug("%s: close: %s", self.name, e)
            self._reader = None

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, float, np.ndarray] | None:
        """The newest frame if it is newer than ``seq``, waiting up to ``timeout`` s; else ``None``."""
        with self._cond:
            if self._latest is None or self._latest[0] <= seq:
                self._cond.wait(timeout)
            if self._latest is not None and self._latest[0] > seq:
                return self._latest
        return None

    def stop(self) -> None:
        """Stop the thread and release the device. Safe to call twice."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.warning("%s: the reader thread did not stop within 5 s", self.name)
        self._thread = None
        self._close_reader()

    def __enter__(self) -> LatestFrameGrabber:
        return self if self._thread else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
