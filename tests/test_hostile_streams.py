"""A hostile MJPEG peer: absurd sizes, endless lines, broken protocol, image bombs.

A tiny raw-socket server on 127.0.0.1 (in a thread) plays one misbehaviour per
connection and then serves good frames; the real ``UrlSource`` must bound every
read, treat each misbehaviour as a dropped stream, reconnect, and go on.
"""

from __future__ import annotations

import io
import socket
import socketserver
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.sources.grabber import Backoff
from capture.sources.live import UrlSource
from capture.sources.mjpeg import MAX_PART, MjpegReader

BOUNDARY = b"--frame"
HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"


def _jpeg(level: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((24, 32, 3), level, np.uint8))
    assert ok
    return buf.tobytes()


def _part(data: bytes, length: bytes | None = None) -> bytes:
    n = b"%d" % len(data) if length is None else length
    return BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: " + n + b"\r\n\r\n" + data + b"\r\n"


def _bomb_png() -> bytes:
    import tempfile

    from testkit.capture import png_bomb

    with tempfile.TemporaryDirectory() as d:
        return png_bomb(Path(d) / "b.png", 20000, 20000).read_bytes()


# Each misbehaviour writes to the socket and returns; the server then closes the connection.
def _huge_length(w: socket.socket) -> None:
    w.sendall(HEAD + BOUNDARY + b"\r\nContent-Length: 1000000000000\r\n\r\n" + b"x" * 1000)


def _endless_header(w: socket.socket) -> None:
    w.sendall(HEAD + BOUNDARY + b"\r\nX-Junk: ")
    for _ in range(64):  # 4 MiB without a newline
        w.sendall(b"a" * 65536)


def _many_headers(w: socket.socket) -> None:
    w.sendall(HEAD + BOUNDARY + b"\r\n" + b"X-A: b\r\n" * 5000)


def _weird_length(w: socket.socket) -> None:
    w.sendall(HEAD + _part(_jpeg(10), length="²".encode()) + _part(_jpeg(10), length=b"-5"))


def _endless_part(w: socket.socket) -> None:  # no Content-Length and no boundary after it
    w.sendall(HEAD + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n\r\n")
    line = b"y" * 1000 + b"\n"
    for _ in range(MAX_PART // len(line) + 100):
        w.sendall(line)


def _bad_status(w: socket.socket) -> None:
    w.sendall(b"HTTP/1.1 abc OK\r\n\r\n")


def _garbage(w: socket.socket) -> None:
    w.sendall(HEAD + bytes(range(256)) * 40)


def _image_bomb(w: socket.socket) -> None:
    w.sendall(HEAD + _part(_bomb_png()))


def _two_good(w: socket.socket) -> None:  # the first connection proves the stream, then drops
    w.sendall(HEAD + _part(_jpeg(200)) + _part(_jpeg(200)))


HOSTILE = [
    _huge_length,
    _endless_header,
    _many_headers,
    _weird_length,
    _endless_part,
    _bad_status,
    _garbage,
    _image_bomb,
]


class HostileServer:
    """Connection ``k`` plays ``plays[k]`` (then closes); after the list, every connection streams good frames."""

    def __init__(self, plays: list) -> None:  # type: ignore[type-arg]
        self.plays, self.connections, self.good_sent = plays, 0, 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                k = outer.connections
                outer.connections += 1
                try:
                    self.request.recv(65536)  # the request
                    if k < len(outer.plays):
                        outer.plays[k](self.request)
                        return
                    self.request.sendall(HEAD)
                    for _ in range(200):
                        self.request.sendall(_part(_jpeg(200)))
                        outer.good_sent += 1
                        time.sleep(0.01)
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_every_misbehaviour_is_a_dropped_stream_that_reconnects() -> None:
    with HostileServer([_two_good, *HOSTILE]) as server:
        src = UrlSource(server.url, open_timeout=10.0, read_timeout=2.0, backoff=Backoff(initial=0.02, maximum=0.05))
        got: list[np.ndarray] = []
        watchdog = threading.Timer(
            30.0, src.interrupt
        )  # a reader thread that died would otherwise leave frames() waiting
        with src:
            watchdog.start()
            for frame in src.frames():
                got.append(frame.image)
                if len(got) >= 5:
                    break
            watchdog.cancel()
            assert src._grabber is not None and src._grabber._thread is not None and src._grabber._thread.is_alive()
    assert len(got) >= 5 and all(int(g.mean()) > 150 for g in got)  # only the good frames came through
    assert server.connections > len(HOSTILE) + 1  # every misbehaviour was dropped and reconnected after


def _reader_over(data: bytes) -> MjpegReader:
    """The real reader's parsing, fed from bytes instead of a socket."""
    r = MjpegReader.__new__(MjpegReader)
    r.url, r.timeout, r.content_type, r.boundary = "http://x/", 1.0, "multipart/x-mixed-replace", BOUNDARY
    r._resp = io.BufferedReader(io.BytesIO(data))  # type: ignore[assignment]
    return r


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(
                [
                    b"\r\n",
                    BOUNDARY + b"\r\n",
                    b"Content-Length: 99999999999\r\n",
                    b"Content-Length: 12\r\n",
                    b"Content-Length: \xc2\xb2\r\n",
                    b"\r\n\r\n",
                    _jpeg(100),
                    b"Content-Type: image/jpeg\r\n",
                ]
            ),
        ),
        max_size=12,
    )
)
def test_any_byte_stream_gives_frames_or_drops_never_an_exception(chunks: list[bytes]) -> None:
    r = _reader_over(b"".join(chunks))
    for _ in range(4):
        img = r.read()
        assert img is None or (img.ndim == 3 and img.dtype == np.uint8)


def test_a_well_formed_stream_still_reads_every_frame() -> None:
    r = _reader_over(b"".join(_part(_jpeg(v)) for v in (50, 100, 150)))
    levels = [int(r.read().mean()) for _ in range(3)]  # type: ignore[union-attr]
    assert [abs(a - b) <= 2 for a, b in zip(levels, (50, 100, 150), strict=True)] == [True] * 3
