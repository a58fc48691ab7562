"""``--phone``: one phone's frames as a :class:`FrameSource`, and the checks every frame passes first.

The server (:mod:`capture.sources.phone.server`) hands each phone's JPEG frames to
its :class:`PhoneSource`; the session yields them like any other source's and
answers each with a :class:`FrameReport` (``feedback``), which the server sends
back to the phone. The phone sends its next frame only after that answer, so the
frame rate is the rate the laptop keeps up with, and nothing queues.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from contracts.frames import Frame, FrameReport, FrameSource
from contracts.imageio import open_header

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 8 << 20  # one streamed frame (a 4K JPEG is 1-3 MB)
MAX_PHOTO_BYTES = 32 << 20  # one still from photo mode
MAX_PIXELS = 64_000_000  # a 48 MP still fits; a decompression bomb does not


class FrameRefused(ValueError):
    """A frame that is not accepted; the message says why (sent back to the phone)."""


def decode_jpeg(data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> np.ndarray:
    """The BGR image of one JPEG, upright per its EXIF orientation; :class:`FrameRefused` for anything else.

    The size and the format are checked before decoding, and the header's pixel
    count before the pixels are decoded.
    """
    if len(data) > max_bytes:
        raise FrameRefused(f"frame too large ({len(data)} bytes, at most {max_bytes})")
    if not data.startswith(b"\xff\xd8\xff"):
        raise FrameRefused("not a JPEG")
    try:
        with open_header(data) as im:
            if im.format != "JPEG":
                raise FrameRefused("not a JPEG")
            w, h = im.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise FrameRefused("not a readable JPEG") from None
    if w * h > MAX_PIXELS or min(w, h) < 16:
        raise FrameRefused(f"{w}x{h} pixels is out of bounds (16 px to {MAX_PIXELS // 1_000_000} MP)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise FrameRefused("not a readable JPEG")
    return img


def report_json(report: FrameReport) -> dict[str, object]:
    """The report as the page reads it."""
    return {"type": "report", **asdict(report)}


class PhoneSource(FrameSource):
    """The frames of one phone (one browser tab), for one capture session.

    Args:
        phone: the phone's number in this run (1, 2, ...), used in the description.
        send: called with each report as a JSON-ready dict (from the session's thread).
    """

    live = False  # the phone waits for each frame's report: nothing goes stale, nothing is dropped
    wants_feedback = True

    def __init__(self, phone: int, send: Callable[[dict[str, object]], None]) -> None:
        self.description = f"phone:{phone}"
        self.phone = phone
        self._send = send
        self._cond = threading.Condition()
        self._pending: Frame | None = None
        self._next = 0
        self._t0 = time.monotonic()
        self._closed = False
        self.finished = threading.Event()
        self.last: tuple[np.ndarray, FrameReport] | None = (
            None  # the newest frame and its report, for the laptop's window
        )
        self._current: np.ndarray | None = None
        self.accepted = 0

    def open(self) -> None:
        self._interrupted = False
        self._t0 = time.monotonic()

    @property
    def busy(self) -> bool:
        """A frame is waiting for the session (a new one would be refused)."""
        return self._pending is not None

    def offer(self, image: np.ndarray, jpeg_quality: int | None = None) -> int:
        """Queue one frame (and the quality of its JPEG, when read) for the session; return its index.

        :class:`FrameRefused` while one is still waiting."""
        with self._cond:
            if self._closed or self.finished.is_set():
                raise FrameRefused("this session has ended")
            if self._pending is not None:
                raise FrameRefused("busy: wait for the report of the previous frame")
            idx = self._next
            self._next += 1
            self._pending = Frame(index=idx, t=time.monotonic() - self._t0, image=image, jpeg_quality=jpeg_quality)
            self.accepted += 1
            self._cond.notify_all()
            return idx

    def frames(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._pending is None and not self._closed and not self.interrupted:
                    self._cond.wait(0.2)
                if self._closed or self.interrupted:
                    return
                frame, self._pending = self._pending, None
            if frame is None:
                continue
            self._current = frame.image
            yield frame

    def feedback(self, report: FrameReport) -> None:
        if report.done:
            self.finished.set()
        elif self._current is not None:
            self.last = (self._current, report)
        try:
            self._send(report_json(report))
        except Exception:  # a phone that went away must not stop the session
            log.debug("could not send a report to %s", self.description, exc_info=True)

    def tell_done(self, why: str) -> None:
        """Tell the phone its session has ended (when the session could not say so itself)."""
        self.finished.set()
        try:
            self._send({"type": "report", "frame_index": -1, "done": True, "stopped_by": why, "tiles": []})
        except Exception:
            log.debug("could not tell %s it is done", self.description, exc_info=True)

    def interrupt(self) -> None:
        self._interrupted = True
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
