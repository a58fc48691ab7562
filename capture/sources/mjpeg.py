"""Motion JPEG over HTTP, as phone IP-camera apps (e.g. "IP Webcam" on Android) serve it.

The stream is one HTTP response of type ``multipart/x-mixed-replace``: parts
separated by a boundary line, each a JPEG with its own small header (usually
with ``Content-Length``). Reading it with urllib rather than FFmpeg gives clear
errors, HTTP basic auth from ``user:password@`` in the URL, and a read timeout
that turns a stalled phone into a dropped stream.

The peer is untrusted: every read is bounded (a header line, the number of
header lines, a part's size, a frame's pixel count), and any protocol error
counts as a dropped stream, which the grabber reconnects.
"""

from __future__ import annotations

import base64
import http.client
import logging
import urllib.error
import urllib.parse
import urllib.request

import cv2
import numpy as np

log = logging.getLogger(__name__)

MAX_LINE = 8192  # bytes in one header or boundary line
MAX_HEADERS = 64  # header lines of one part
MAX_PART = 32 << 20  # bytes of one JPEG (a 24-megapixel phone JPEG is well under 16 MiB)
MAX_PIXELS = 50_000_000  # pixels of one decoded frame (50 MP: more than any phone camera streams)

# What a hostile or broken peer can make the reads raise: all of it means "the stream dropped".
STREAM_ERRORS = (OSError, ValueError, urllib.error.URLError, http.client.HTTPException, EOFError)


class ProtocolError(ValueError):
    """The peer broke the MJPEG protocol or a bound; the stream counts as dropped."""


class MjpegReader:
    """Motion JPEG over HTTP (``multipart/x-mixed-replace``), as phone IP-camera apps serve it.

    A URL that answers a single ``image/jpeg`` (a snapshot endpoint such as
    ``/shot.jpg``) is fetched again for every frame.
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self._request = request_for(url)
        self._resp = urllib.request.urlopen(self._request, timeout=timeout)
        ctype = self._resp.headers.get("Content-Type", "")
        self.content_type = ctype.split(";")[0].strip().lower()
        self.boundary = b""
        for part in ctype.split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "boundary":
                self.boundary = v.strip().strip('"').encode()
        if self.boundary and not self.boundary.startswith(b"--"):
            self.boundary = b"--" + self.boundary

    @property
    def is_mjpeg(self) -> bool:
        return self.content_type.startswith("multipart/")

    @property
    def is_jpeg(self) -> bool:
        return self.content_type in ("image/jpeg", "image/jpg")

    def read(self) -> np.ndarray | None:
        """The next frame as BGR, or ``None`` when the stream dropped or broke the protocol (then reconnect)."""
        try:
            data = self._read_part() if self.is_mjpeg else self._read_snapshot()
        except STREAM_ERRORS as e:
            log.warning("%s: dropping the stream: %s", redact(self.url), str(e)[:200])
            return None
        if not data:
            return None
        return decode_jpeg(data, redact(self.url))

    def _read_snapshot(self) -> bytes:
        if self._resp is None:
            self._resp = urllib.request.urlopen(self._request, timeout=self.timeout)
        try:
            data = self._resp.read(MAX_PART + 1)
            if len(data) > MAX_PART:
                raise ProtocolError(f"snapshot larger than {MAX_PART} bytes")
            return data
        finally:
            self._resp.close()
            self._resp = None

    def _line(self) -> bytes:
        """One line of at most ``MAX_LINE`` bytes; a longer one is a protocol error."""
        line = self._resp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ProtocolError(f"a line longer than {MAX_LINE} bytes")
        return line

    def _read_part(self) -> bytes:
        """One part of the multipart stream: skip to the headers, then read Content-Length bytes or up to the next
        boundary.

        Every read is bounded: ``MAX_LINE`` per line, ``MAX_HEADERS`` header lines,
        ``MAX_PART`` bytes of preamble or of JPEG.
        """
        f = self._resp
        headers: dict[str, str] = {}
        skipped = 0
        line = self._line()
        while line and (not line.strip() or (self.boundary and line.strip().startswith(self.boundary))):
            skipped += len(line)
            if skipped > MAX_PART:
                raise ProtocolError("no part header within the size bound")
            line = self._line()
        while line and line.strip():
            if len(headers) >= MAX_HEADERS:
                raise ProtocolError(f"more than {MAX_HEADERS} header lines in one part")
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
            line = self._line()
        if not line:
            return b""
        n = headers.get("content-length")
        if n is not None:
            if not (n.isascii() and n.isdecimal()):
                raise ProtocolError(f"Content-Length {n[:40]!r} is not a number")
            size = int(n)
            if size > MAX_PART:
                raise ProtocolError(f"Content-Length {size} exceeds {MAX_PART} bytes")
            data = f.read(size)
            return data if len(data) == size else b""
        chunks, total = [], 0
        while True:
            line = self._line()
            if not line:
                return b""
            if self.boundary and line.startswith(self.boundary):
                break
            total += len(line)
            if total > MAX_PART:
                raise ProtocolError(f"a part without Content-Length longer than {MAX_PART} bytes")
            chunks.append(line)
        return b"".join(chunks).rstrip(b"\r\n")

    def close(self) -> None:
        if self._resp is not None:
            try:
                self._resp.close()
            except OSError:
                pass
            self._resp = None


def decode_jpeg(data: bytes, where: str) -> np.ndarray | None:
    """Decode one frame to BGR; ``None`` (and a warning) for an undecodable one or one of more than ``MAX_PIXELS``
    pixels.
    """
    from PIL import Image

    from contracts.imageio import UNREADABLE, open_header

    try:
        with open_header(data) as im:  # reads the header only
            w, h = im.size
    except Image.DecompressionBombError:
        w = h = MAX_PIXELS + 1
    except UNREADABLE:  # not an image Pillow knows: let OpenCV try, it bounds its own allocations
        w = h = 0
    if w * h > MAX_PIXELS:
        log.warning("%s: skipping a %dx%d frame (more than %d pixels)", where, w, h, MAX_PIXELS)
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return img if img is not None and img.size else None


def request_for(url: str) -> urllib.request.Request:
    """A request with HTTP basic auth taken from ``user:password@`` in the URL."""
    p = urllib.parse.urlsplit(url)
    if p.username is None:
        return urllib.request.Request(url, headers={"User-Agent": "photoproof"})
    netloc = p.hostname or ""
    if p.port:
        netloc += f":{p.port}"
    bare = urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
    token = base64.b64encode(
        f"{urllib.parse.unquote(p.username)}:{urllib.parse.unquote(p.password or '')}".encode()
    ).decode()
    return urllib.request.Request(bare, headers={"User-Agent": "photoproof", "Authorization": f"Basic {token}"})


def redact(url: str) -> str:
    """The URL without its password, for logs and the session record."""
    p = urllib.parse.urlsplit(url)
    if p.password is None:
        return url
    netloc = f"{p.username}:***@{p.hostname}" + (f":{p.port}" if p.port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
