"""The phone page's HTTPS and WebSocket server (aiohttp), run in a background thread.

Routes (every one requires the run's token as ``?t=TOKEN``, compared in constant time):

- ``GET /``: the page, one HTML file held in memory (nothing else is served, from disk or elsewhere);
- ``GET /ws?p=PHONE``: the WebSocket a page streams JPEG frames on (binary messages) and
  receives one report per frame on (JSON);
- ``POST /photo?p=PHONE``: one full-resolution still (photo mode), or one streamed frame from a page
  whose browser refused the WebSocket; answers with its report.

``PHONE`` is a random id the page makes once per browser tab, so that a page that
reconnects (a Wi-Fi hiccup, a reload) continues its own session; every new id is a
new phone, and each phone records its own session, up to ``max_phones``.
Frames are bounded in bytes, in pixels and in rate; a frame sent while the
previous one is still waiting is refused. A refused frame gets a reason and
leaves the session as it was.

Before a client shows the token it may hold little (:mod:`capture.sources.phone.gate`:
connection caps, a deadline for a request with the token, one log line per refused
client). A photo's body is refused before it is read when its declared size is too
large, its phone is busy or ``MAX_UPLOADS`` others are being read and decoded (so the
memory of concurrent uploads is bounded), and its read must finish in ``BODY_TIMEOUT_S``;
the JPEG header's dimensions are checked before the pixels are decoded.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from capture.jpegquality import quality_from_bytes
from capture.sources.phone.gate import ConnectionGate
from capture.sources.phone.source import MAX_FRAME_BYTES, MAX_PHOTO_BYTES, FrameRefused, PhoneSource, decode_jpeg
from capture.sources.phone.tls import Certificate
from contracts.errors import UserError

log = logging.getLogger(__name__)

_PHONE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
BODY_TIMEOUT_S = 30.0  # a 32 MB photo over a slow Wi-Fi link; a body that trickles longer is dropped
MAX_UPLOADS = 2  # photo bodies and frames read or decoded at once (each up to 32 MB, 64 MP decoded)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; "
        "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # the URL holds the token
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(self)",
}


def page_html() -> bytes:
    """The page, shipped as package data."""
    return importlib.resources.files("capture.sources.phone").joinpath("page.html").read_bytes()


@dataclass
class RateLimit:
    """A token bucket: ``rate`` frames per second on average, bursts of ``burst``."""

    rate: float
    burst: float
    _level: float = field(default=-1.0)
    _t: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self._level = self.burst if self._level < 0 else min(self.burst, self._level + (now - self._t) * self.rate)
        self._t = now
        if self._level >= 1.0:
            self._level -= 1.0
            return True
        return False


@dataclass
class Phone:
    number: int
    source: PhoneSource
    limit: RateLimit
    ws: web.WebSocketResponse | None = None
    waiters: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    refused: int = 0
    receiving: bool = False  # a frame of this phone is being read or decoded
    final: dict[str, Any] | None = (
        None  # the session's last report ("done" and why), repeated to a phone that sends more
    )
    told: bool = False  # the final report reached the phone (an answer to a photo, or its WebSocket)


class PhoneServer:
    """Serve the page and take frames; ``on_phone(source)`` starts a session for each new phone.

    Args:
        token: the run's secret (in the page's URL).
        cert: the TLS certificate (``None``: plain HTTP, for tests of the routes only).
        on_phone: called (on the server's thread) with each new phone's source; must not block.
        bind, port: where to listen (port 0: any free port; see ``port`` after ``start``).
        max_phones: phones (sessions) per run.
        max_fps: frames per second a phone may send.
        hello: extra fields for the page's greeting (e.g. ``per_tile``).
    """

    def __init__(
        self,
        token: str,
        cert: Certificate | None,
        on_phone: Callable[[PhoneSource], None],
        *,
        bind: str = "0.0.0.0",
        port: int = 8443,
        max_phones: int = 8,
        max_fps: float = 30.0,
        hello: dict[str, Any] | None = None,
    ) -> None:
        self.token, self.cert, self.on_phone = token.encode(), cert, on_phone
        self.bind, self.port, self.max_phones, self.max_fps = bind, port, max_phones, max_fps
        self.hello = dict(hello or {})
        self.phones: dict[str, Phone] = {}
        self.refused_requests = 0
        self.gate = ConnectionGate()
        self.body_timeout_s = BODY_TIMEOUT_S
        self.max_uploads = MAX_UPLOADS
        self.max_uploads_seen = 0  # the most bodies read or decoded at once (for tests and logs)
        self._uploads = 0  # bodies being read or decoded (at most MAX_UPLOADS)
        self._server: asyncio.base_events.Server | None = None
        self._page = page_html()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> PhoneServer:
        """Listen; return once the socket is bound (``UserError`` when it cannot be)."""
        self._thread = threading.Thread(target=self._run, name="phone-server", daemon=True)
        self._thread.start()
        self._ready.wait(30.0)
        if self._error is not None:
            raise UserError(
                f"--bind {self.bind} --port {self.port}: cannot listen ({self._error}); check the address, or choose "
                "another --port"
            ) from None
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._loop_error)
        try:
            loop.run_until_complete(self._start())
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_PHOTO_BYTES)
        app.router.add_get("/", self._page_handler)
        app.router.add_get("/ws", self._ws_handler)
        app.router.add_post("/photo", self._photo_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)  # no access log: URLs hold the token
        await self._runner.setup()
        assert self._runner.server is not None
        # aiohttp's TCPSite, with the gate between the listening socket and aiohttp's protocol
        self._server = await asyncio.get_running_loop().create_server(
            self.gate.factory(self._runner.server, self.cert.ssl_context() if self.cert else None),
            self.bind,
            self.port,
            backlog=128,
        )
        if self._server.sockets:
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for p in list(self.phones.values()):
            if p.ws is not None and not p.ws.closed:
                await p.ws.close(code=1001, message=b"capture stopped")
        if self._runner is not None:
            await self._runner.cleanup()

    def _loop_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A client's failed TLS handshake or dropped socket: one line per kind of error, not a traceback per client."""
        exc = context.get("exception")
        kind = f"{context.get('message', 'error')}: {type(exc).__name__ if exc else ''}"
        self.gate.refuse("a client", kind)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def untold(self) -> bool:
        """Whether a phone's session has ended and the phone has not yet been told so (it learns it from its next
        photo's answer or its WebSocket)."""
        return any(p.source.finished.is_set() and not p.told for p in list(self.phones.values()))

    def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10.0)

    # -- requests -------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        given = request.query.get("t", "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token):
            self.refused_requests += 1
            self.gate.refuse(str(request.remote), "a request without the right token")
            resp403 = web.Response(
                status=403,
                text="403: this link has the wrong token; scan the QR code the laptop shows",
                headers=SECURITY_HEADERS,
            )
            resp403.force_close()  # its body is never read; the connection ends with the answer
            return resp403
        self.gate.trust(request.protocol)
        resp = await handler(request)
        if not isinstance(resp, web.WebSocketResponse):
            resp.headers.update(SECURITY_HEADERS)
        return resp

    async def _page_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8")

    def _phone(self, request: web.Request) -> Phone:
        pid = request.query.get("p", "")
        if not _PHONE_RE.match(pid):
            raise web.HTTPBadRequest(text="p: expected the page's phone id")
        with self._lock:
            phone = self.phones.get(pid)
            if phone is None:
                if len(self.phones) >= self.max_phones:
                    raise web.HTTPServiceUnavailable(text=f"already {self.max_phones} phones in this run")
                number = len(self.phones) + 1
                loop = asyncio.get_running_loop()

                def send(d: dict[str, Any], pid: str = pid) -> None:  # from the session's thread
                    loop.call_soon_threadsafe(self._deliver, pid, d)

                phone = Phone(number, PhoneSource(number, send), RateLimit(self.max_fps, self.max_fps))
                self.phones[pid] = phone
                log.info("phone %d connected from %s", number, request.remote)
                self.on_phone(phone.source)
        return phone

    def _deliver(self, pid: str, d: dict[str, Any]) -> None:
        """On the server's loop: hand a report to a waiting photo request and to the phone's WebSocket."""
        phone = self.phones.get(pid)
        if phone is None:
            return
        fut = phone.waiters.pop(int(d.get("frame_index", -1)), None)
        answered = False
        if fut is not None and not fut.done():
            fut.set_result(d)
            answered = True
        if d.get("done"):
            phone.final = d
            for f in phone.waiters.values():
                if not f.done():
                    f.set_result(d)
                    answered = True
            phone.waiters.clear()
        if phone.ws is not None and not phone.ws.closed:
            asyncio.ensure_future(phone.ws.send_json(d))
            answered = True
        if d.get("done") and answered:
            phone.told = True

    def _admit(self, phone: Phone, size: int | None, max_bytes: int) -> None:
        """Everything checked before a frame's bytes are read or decoded (``FrameRefused`` with the reason)."""
        if phone.source.finished.is_set():
            raise FrameRefused("this session has ended")
        if not phone.limit.take():
            raise FrameRefused(f"too fast: at most {self.max_fps:g} frames per second")
        if size is not None and size > max_bytes:
            raise FrameRefused(f"frame too large ({size} bytes, at most {max_bytes})")
        if phone.source.busy or phone.receiving:  # checked again by offer(); here it saves reading and decoding
            raise FrameRefused("busy: wait for the report of the previous frame")
        if self._uploads >= self.max_uploads:
            raise FrameRefused("busy: the laptop is reading other photos; send again in a moment")

    async def _take(self, phone: Phone, data: bytes | web.Request, max_bytes: int) -> int:
        """Check, read (a request's body), decode and queue one frame; return its index (``FrameRefused``)."""
        self._admit(phone, len(data) if isinstance(data, bytes) else data.content_length, max_bytes)
        self._uploads += 1
        self.max_uploads_seen = max(self.max_uploads_seen, self._uploads)
        phone.receiving = True
        try:
            if isinstance(data, web.Request):
                try:
                    data = await asyncio.wait_for(data.read(), self.body_timeout_s)
                except TimeoutError:
                    raise FrameRefused(f"the photo took over {self.body_timeout_s:g} s to arrive") from None
            loop = asyncio.get_running_loop()
            image = await loop.run_in_executor(None, decode_jpeg, data, max_bytes)
            found = await loop.run_in_executor(None, quality_from_bytes, data)  # its tables: for calibrate
        finally:
            self._uploads -= 1
            phone.receiving = False
        return phone.source.offer(image, found[0] if found else None)

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=2 * MAX_FRAME_BYTES, heartbeat=30.0)
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="expected a WebSocket")
        phone = self._phone(request)  # only a real WebSocket makes a phone
        await ws.prepare(request)
        old, phone.ws = phone.ws, ws
        if old is not None and not old.closed:
            await old.close(code=1000, message=b"replaced by a newer connection")
        await ws.send_json(
            {
                "type": "hello",
                "phone": phone.number,
                "done": phone.source.finished.is_set(),
                "max_side": 1920,
                "max_frame_bytes": MAX_FRAME_BYTES,
                **self.hello,
            }
        )
        if phone.final is not None:
            await ws.send_json(phone.final)
            phone.told = True
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                try:
                    idx = await self._take(phone, msg.data, MAX_FRAME_BYTES)
                    await ws.send_json({"type": "accepted", "frame_index": idx})
                except FrameRefused as e:
                    phone.refused += 1
                    await ws.send_json(
                        phone.final or {"type": "refused", "why": str(e), "done": phone.source.finished.is_set()}
                    )
            elif msg.type == WSMsgType.TEXT:
                if len(msg.data) > 1024:
                    await ws.send_json({"type": "refused", "why": "message too long"})
            else:
                break
        if phone.ws is ws:
            phone.ws = None
        return ws

    async def _photo_handler(self, request: web.Request) -> web.Response:
        phone = self._phone(request)
        if request.content_length is not None and request.content_length > MAX_PHOTO_BYTES:
            return web.json_response(
                {"type": "refused", "why": f"photo too large (at most {MAX_PHOTO_BYTES} bytes)"}, status=413
            )
        try:
            idx = await self._take(phone, request, MAX_PHOTO_BYTES)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                {"type": "refused", "why": f"photo too large (at most {MAX_PHOTO_BYTES} bytes)"}, status=413
            )
        except FrameRefused as e:
            phone.refused += 1
            if phone.final is not None:
                phone.told = True
                return web.json_response({**phone.final, "phone": phone.number})
            return web.json_response(
                {"type": "refused", "why": str(e), "done": phone.source.finished.is_set()}, status=409
            )
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        phone.waiters[idx] = fut
        try:
            return web.json_response({**await asyncio.wait_for(fut, 120.0), "phone": phone.number})
        except TimeoutError:
            phone.waiters.pop(idx, None)
            return web.json_response({"type": "refused", "why": "the laptop did not answer in time"}, status=504)
