"""The phone server against hostile clients: a real server on 127.0.0.1, real sockets, bounded in count and time.

A slow flood (connections that send headers a byte at a time, without the token)
must not exhaust the server: it caps connections, closes those that show no token
in time, logs each refused client once, and keeps serving the phone that has the
token. Concurrent uploads are refused before their bodies are read, and a JPEG is
refused on its header's dimensions before it is decoded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import struct
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.sources.phone.gate import ConnectionGate
from capture.sources.phone.server import PhoneServer
from capture.sources.phone.source import MAX_PIXELS, FrameRefused, PhoneSource, decode_jpeg
from capture.sources.phone.tls import Certificate, machine_certificate
from contracts.frames import FrameReport

TOKEN = "t0ken-for-tests-only-abcdef"


def _answer_frames(source: PhoneSource) -> None:
    """A stand-in session: answer every frame at once (the server is under test, not the session)."""

    def run() -> None:
        source.open()
        for f in source.frames():
            source.feedback(FrameReport(f.index, f.image.shape[1], f.image.shape[0], [], [], 0, None, 0, 0))

    threading.Thread(target=run, daemon=True).start()


@pytest.fixture
def server(tmp_path: Path) -> Any:
    return _serve(None)


@pytest.fixture(params=["http", "https"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The server in plain HTTP, and with TLS (a flood then never completes a handshake)."""
    return _serve(machine_certificate(tmp_path) if request.param == "https" else None)


def _serve(cert: Certificate | None) -> Any:
    srv = PhoneServer(TOKEN, cert, _answer_frames, bind="127.0.0.1", port=0, max_phones=32, max_fps=1000)
    srv.gate = ConnectionGate(max_connections=24, max_per_client=12, hold_s=1.0)
    srv.body_timeout_s = 1.0
    srv.start()
    _started.append(srv)
    return srv


_started: list[PhoneServer] = []


@pytest.fixture(autouse=True)
def _stop_servers() -> Any:
    yield
    while _started:
        srv = _started.pop()
        for p in srv.phones.values():
            p.source.close()
        srv.stop()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def _jpeg(w: int, h: int) -> bytes:
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (h, w, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def test_a_slow_flood_without_the_token_is_capped_timed_out_and_logged_once(
    any_server: PhoneServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = any_server
    scheme = "https" if server.cert is not None else "http"
    caplog.set_level(logging.WARNING, logger="capture.sources.phone.gate")
    fds0 = _open_fds()
    socks: list[socket.socket] = []
    t0 = time.monotonic()
    for _ in range(40):  # each sends the start of a request (or of a TLS handshake), then nothing: a slowloris
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"\x16\x03\x01" if scheme == "https" else b"GET /?t=wrong HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    time.sleep(0.3)
    open_now = len(server.gate.open)
    assert open_now <= 12, open_now  # the per-client cap held; the others were closed at once

    # meanwhile a phone with the token, from another address, is served
    async def page() -> int:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), ssl=ctx if scheme == "https" else False)
        async with aiohttp.ClientSession(connector=conn) as http:
            async with http.get(f"{scheme}://127.0.0.1:{server.port}/?t={TOKEN}") as r:
                return r.status

    assert asyncio.run(page()) == 200
    # every flooding connection is closed by the server within the deadline (hold_s = 1 s)
    closed = 0
    for s in socks:
        s.settimeout(max(0.1, t0 + 6 - time.monotonic()))
        try:
            while s.recv(4096):
                pass
            closed += 1
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except TimeoutError:
            pass
        s.close()
    assert closed == 40
    deadline = time.monotonic() + 5
    while server.gate.open and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.gate.open and not server.gate.per_client
    assert _open_fds() <= fds0 + 2  # nothing leaked
    assert server.gate.refused >= 40
    lines = [r for r in caplog.records if r.name == "capture.sources.phone.gate"]
    assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]  # one line per client and reason, not per event
    assert all(r.exc_info is None for r in lines)


def test_concurrent_uploads_are_refused_before_their_bodies_are_read(server: PhoneServer) -> None:
    big = _jpeg(2400, 1800)  # a few MB, decoded to 13 MB

    async def post(http: aiohttp.ClientSession, k: int) -> tuple[int, dict[str, Any]]:
        try:
            async with http.post(f"http://127.0.0.1:{server.port}/photo?t={TOKEN}&p=phone-{k:04d}", data=big) as r:
                return r.status, await r.json()
        except aiohttp.ClientError:  # refused before its body was read: the server answered and closed
            return 0, {}

    async def main() -> list[tuple[int, dict[str, Any]]]:
        async with aiohttp.ClientSession() as http:
            return await asyncio.gather(*(post(http, k) for k in range(10)))

    answers = asyncio.run(main())
    assert server.max_uploads_seen <= server.max_uploads == 2
    ok = [a for s, a in answers if s == 200]
    busy = [a for s, a in answers if s == 409]
    assert ok and len(ok) + len(busy) + sum(s == 0 for s, _ in answers) == 10, answers
    assert all("busy" in a["why"] for a in busy)
    assert len(ok) < 10  # they came at once: some were refused, not queued in memory


def test_a_body_that_trickles_is_dropped_after_the_timeout(server: PhoneServer) -> None:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(
        f"POST /photo?t={TOKEN}&p=slow-phone-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode()
        + b"\xff\xd8\xff"
    )
    t0 = time.monotonic()
    reply = s.recv(4096)
    s.close()
    assert b"409" in reply.split(b"\r\n")[0] and b"took over" in reply, reply
    assert time.monotonic() - t0 < 8


def _with_sof(jpeg: bytes, w: int, h: int) -> bytes:
    """The JPEG with its frame header (SOF0) claiming ``w x h`` pixels."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[: i + 5] + struct.pack(">HH", h, w) + jpeg[i + 9 :]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 65535), st.integers(1, 65535))
def test_a_jpeg_is_judged_by_its_header_before_it_is_decoded(w: int, h: int) -> None:
    data = _with_sof(_jpeg(64, 48), w, h)
    try:
        img = decode_jpeg(data, max_bytes=1 << 20)
    except FrameRefused as e:
        assert w * h > MAX_PIXELS or min(w, h) < 16 or "JPEG" in str(e)
        return
    assert 16 <= min(w, h) and w * h <= MAX_PIXELS and img.ndim == 3
