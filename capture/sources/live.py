"""Live frame sources: ``--camera N`` and ``--url URL`` (MJPEG over HTTP, RTSP, ...).

A background thread reads the device and keeps only the newest frame, so a
consumer that falls behind gets fresh frames instead of a growing backlog (the
idea of imutils' ``WebcamVideoStream``, with a lock, a context manager, a clean
release and monotonic timestamps). When a stream drops, the thread reconnects
with exponential backoff and the consumer simply waits for the next frame
(:mod:`capture.sources.grabber`).
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from capture.sources.grabber import Backoff, LatestFrameGrabber, OpenCVReader, Reader
from capture.sources.mjpeg import STREAM_ERRORS, MjpegReader, redact
from contracts.errors import UserError
from contracts.frames import Frame, FrameSource

log = logging.getLogger(__name__)

URL_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "udp", "tcp", "srt")


# -- live sources ------------------------------------------------------------------


class LiveSource(FrameSource):
    """Base of camera and URL sources: open once (with a bounded retry), then grab in a thread."""

    live = True
    #: Keep trying when the device does not open at all (streams: yes; local cameras: no).
    retry_unopened = True

    def __init__(self, open_timeout: float = 10.0, backoff: Backoff | None = None) -> None:
        self.open_timeout = open_timeout
        self.backoff = backoff or Backoff()
        self._grabber: LatestFrameGrabber | None = None
        self._interrupted = False
        self._reconnects = 0

    def connect(self) -> Reader | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _first_connect(self) -> tuple[Reader | None, str]:
        deadline = time.monotonic() + self.open_timeout
        backoff, last = Backoff(initial=0.1, maximum=2.0), "no answer"
        while True:
            try:
                reader = self.connect()
                if reader is None and not self.retry_unopened:
                    return None, "the device did not open"
                if reader is not None:
                    first = reader.read()
                    if first is not None:
                        return _Prepend(reader, first), ""
                    reader.close()
                    last = "connected but no frame came"
            except STREAM_ERRORS as e:
                last = str(getattr(e, "reason", e))
            if time.monotonic() + 0.1 > deadline or self.interrupted:
                return None, last
            time.sleep(min(backoff.delay(), max(0.0, deadline - time.monotonic())))

    def open(self) -> None:
        self._interrupted = False
        reader, why = self._first_connect()
        if reader is None:
            raise UserError(self.open_error(why))
        self._grabber = LatestFrameGrabber(self.connect, self.description, self.backoff).start(reader)

    def open_error(self, why: str) -> str:  # pragma: no cover - overridden
        return f"{self.description}: cannot open ({why})"

    def frames(self) -> Iterator[Frame]:
        g = self._grabber
        if g is None:
            raise RuntimeError(f"{type(self).__name__}.frames() before open()")
        seq = 0
        while not self.interrupted:
            got = g.wait_newer(seq, timeout=0.2)
            if got is None:
                continue
            seq, t, img = got
            yield Frame(index=seq - 1, t=t, image=img)

    def close(self) -> None:
        if self._grabber is not None:
            self._grabber.stop()
            self._reconnects += self._grabber.reconnects
            self._grabber = None

    @property
    def reconnects(self) -> int:
        """How often the stream dropped and came back (kept after ``close``)."""
        return self._reconnects + (self._grabber.reconnects if self._grabber else 0)


class _Prepend:
    """A reader that first returns a frame already read (the one that proved the connection)."""

    def __init__(self, reader: Reader, first: np.ndarray) -> None:
        self.reader = reader
        self.first: np.ndarray | None = first

    def read(self) -> np.ndarray | None:
        if self.first is not None:
            img, self.first = self.first, None
            return img
        return self.reader.read()

    def close(self) -> None:
        self.reader.close()


PROBE_INDICES = 10  # camera indices that an unopened --camera tries, to name those that do open


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log (``[ WARN:0] ... can't open camera by index``) for the block."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def cameras_that_open(n: int = PROBE_INDICES) -> list[int]:
    """The camera indices below ``n`` that OpenCV opens now (each released at once), without OpenCV's log."""
    found = []
    with quiet_opencv():
        for i in range(n):
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found.append(i)
            cap.release()
    return found


class CameraSource(LiveSource):
    """``--camera N``: a local webcam through OpenCV at the requested size and rate.

    Args:
        index: the camera index (0: usually the built-in webcam).
        width, height, fps: requested capture format (the camera may pick the nearest it has).
    """

    def __init__(
        self,
        index: int,
        width: int | None = 1920,
        height: int | None = 1080,
        fps: float | None = 30.0,
        open_timeout: float = 5.0,
    ) -> None:
        super().__init__(open_timeout)
        if index < 0:
            raise UserError(f"--camera {index}: the index must be 0 or more")
        self.index, self.width, self.height, self.fps = index, width, height, fps
        self.description = f"camera:{index}"
        self.retry_unopened = False

    def connect(self) -> Reader | None:
        with quiet_opencv():
            cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            return None
        cap.set(
            cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG")
        )  # USB webcams give 720p and 1080p at 30 fps only as MJPEG
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        w, h, f = (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            cap.get(cv2.CAP_PROP_FPS),
        )
        if self.width and self.height and (w, h) != (self.width, self.height):
            log.warning(
                "camera %d gives %dx%d, not the requested %dx%d: lay the sheets out for the mode it gives "
                "(photoproof print BATCH --frame-size %dx%d --model MODEL)",
                self.index,
                w,
                h,
                self.width,
                self.height,
                w,
                h,
            )
        log.info("camera %d: %dx%d at %.0f fps (%s)", self.index, w, h, f or 0, cap.getBackendName())
        return OpenCVReader(cap)

    def open_error(self, why: str) -> str:
        others = [i for i in cameras_that_open() if i != self.index]
        if others:
            where = f"cameras that open here: {', '.join(map(str, others))}; try --camera {others[0]}"
        else:
            tried = f"indices 0 to {PROBE_INDICES - 1} tried"
            where = f"no camera opens here ({tried}); use --url, --video, --photos or --phone"
        return f"--camera {self.index}: no camera at that index ({why}); {where}"


class UrlSource(LiveSource):
    """``--url URL``: an IP camera or phone app (MJPEG over HTTP) or an RTSP/RTMP stream.

    ``http(s)://`` URLs that serve ``multipart/x-mixed-replace`` or ``image/jpeg``
    are read directly; anything else (RTSP, HLS, MP4 over HTTP) goes through
    OpenCV's FFmpeg backend.

    Args:
        url: the stream address; ``user:password@`` in it becomes HTTP basic auth.
        open_timeout: how long to keep trying before giving up at start.
        read_timeout: how long a read may stall before the stream counts as dropped.
        backoff: delays between reconnection attempts after a drop.
    """

    def __init__(
        self, url: str, open_timeout: float = 10.0, read_timeout: float = 5.0, backoff: Backoff | None = None
    ) -> None:
        super().__init__(open_timeout, backoff)
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in URL_SCHEMES:
            raise UserError(
                f"--url {url}: expected an http://, https:// or rtsp:// address (e.g. http://PHONE:8080/video)"
            )
        self.url, self.scheme, self.read_timeout = url, scheme, read_timeout
        self.description = f"url:{redact(url)}"
        self._ffmpeg = scheme not in ("http", "https")

    def connect(self) -> Reader | None:
        if not self._ffmpeg:
            r = MjpegReader(self.url, self.read_timeout)
            if r.is_mjpeg or r.is_jpeg:
                return r
            log.info(
                "%s serves %s, not MJPEG; reading it through FFmpeg",
                redact(self.url),
                r.content_type or "no content type",
            )
            r.close()
            self._ffmpeg = True
        ms = int(1000 * self.read_timeout)
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        cap = cv2.VideoCapture(
            self.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        )
        if not cap.isOpened():
            cap.release()
            return None
        return OpenCVReader(cap)

    def open_error(self, why: str) -> str:
        return (
            f"--url {redact(self.url)}: no video after trying for {self.open_timeout:.0f} s ({why}). "
            "Check the address, that the camera app is streaming, and that this computer and the phone share a network"
        )
