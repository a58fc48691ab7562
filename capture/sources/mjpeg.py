"""Motion JPEG over HTTP, as phone IP-camera apps (e.g. "IP Webcam" on Android) serve it.

The stream is one HTTP response of type ``multipart/x-mixed-replace``: parts
separated by a boundary line, each a JPEG with its own small header (usually
with ``Content-Length``). Reading it with urllib rather than FFmpeg gives clear
errors, HTTP basic auth from ``user:password@`` in the URL, and a read timeout
that turns a stalled phone into a dropped stream.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.parse
import urllib.request

import cv2
import numpy as np

log = logging.getLogger(__name__)


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
        try:
            data = self._read_part() if self.is_mjpeg else self._read_snapshot()
        except (OSError, ValueError, urllib.error.URLError) as e:
            log.debug("%s: read failed: %s", redact(self.url), e)
            return None
        if not data:
            return None
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return img if img is not None else None

    def _read_snapshot(self) -> bytes:
        if self._resp is None:
            self._resp = urllib.request.urlopen(self._request, timeout=self.timeout)
        try:
            return self._resp.read()
        finally:
            self._resp.close()
            self._resp = None

    def _read_part(self) -> bytes:
        """One part of the multipart stream: skip to the headers, then read Content-Length bytes or up to the next boundary."""
        f = self._resp
        headers: dict[str, str] = {}
        line = f.readline()
        while line and (not line.strip() or (self.boundary and line.strip().startswith(self.boundary))):
            line = f.readline()
        while line and line.strip():
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
            line = f.readline()
        if not line:
            return b""
        n = headers.get("content-length")
        if n and n.isdigit():
            data = f.read(int(n))
            return data if len(data) == int(n) else b""
        chunks = []
        while True:
            line = f.readline()
            if not line:
                return b""
            if self.boundary and line.startswith(self.boundary):
                break
            chunks.append(line)
        return b"".join(chunks).rstrip(b"\r\n")

    def close(self) -> None:
        if self._resp is not None:
            try:
                self._resp.close()
            except OSError:
                pass
            self._resp = None


def request_for(url: str) -> urllib.request.Request:
    """A request with HTTP basic auth taken from ``user:password@`` in the URL."""
    p = urllib.parse.urlsplit(url)
    if p.username is None:
        return urllib.request.Request(url, headers={"User-Agent": "photoproof"})
    netloc = p.hostname or ""
    if p.port:
        netloc += f":{p.port}"
    bare = urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
    token = base64.b64encode(f"{urllib.parse.unquote(p.username)}:{urllib.parse.unquote(p.password or '')}".encode()).decode()
    return urllib.request.Request(bare, headers={"User-Agent": "photoproof", "Authorization": f"Basic {token}"})


def redact(url: str) -> str:
    """The URL without its password, for logs and the session record."""
    p = urllib.parse.urlsplit(url)
    if p.password is None:
        return url
    netloc = f"{p.username}:***@{p.hostname}" + (f":{p.port}" if p.port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))
