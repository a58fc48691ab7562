"""What a client of the phone server may hold before it has shown the run's token.

aiohttp reads request headers for as long as a client cares to send them and
accepts every connection; a client that sends headers a byte at a time on many
connections (a slow flood) would hold the server's sockets and file descriptors
until it fails with EMFILE. :class:`ConnectionGate` wraps aiohttp's protocol
factory and:

- caps open connections, in all and per client address (a new one over a cap is
  closed at once);
- closes any connection that has not sent a request with the right token within
  ``hold_s`` seconds of connecting (the server's guard calls :meth:`trust`);
- logs each refused client once, then counts (``refused``), so a flood cannot fill the log.

The server also bounds request bodies in bytes and in time (``BODY_TIMEOUT_S``)
and the uploads decoded at once (:mod:`capture.sources.phone.server`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from asyncio import sslproto
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64  # phones (a few each) and their page loads; more is a flood
MAX_PER_CLIENT = 16  # one address: a phone's WebSocket, page, photo posts and reconnects
HOLD_S = 10.0  # seconds a connection may stay open without having shown the token


class ConnectionGate:
    """Connection limits before the token (see the module docstring).

    Connections are counted from the TCP accept, before any TLS handshake, so a flood
    of connections that never finish one is capped like any other.
    """

    def __init__(
        self,
        max_connections: int = MAX_CONNECTIONS,
        max_per_client: int = MAX_PER_CLIENT,
        hold_s: float = HOLD_S,
    ) -> None:
        self.max_connections, self.max_per_client, self.hold_s = max_connections, max_per_client, hold_s
        self.open: dict[Any, tuple[str, asyncio.Transport]] = {}  # aiohttp's handler -> client address, socket
        self.per_client: Counter[str] = Counter()
        self.trusted: set[Any] = set()
        self.refused = 0
        self._logged: set[tuple[str, str]] = set()

    def refuse(self, client: str, why: str) -> None:
        """Count a refusal; log it the first time this client is refused for this reason."""
        self.refused += 1
        if (client, why) not in self._logged:
            self._logged.add((client, why))
            log.warning("phone page: refused %s: %s (further refusals of it are counted, not logged)", client, why)

    def admit(self, handler: Any, transport: asyncio.Transport) -> bool:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if len(self.open) >= self.max_connections:
            self.refuse(client, f"over {self.max_connections} open connections")
            return False
        if self.per_client[client] >= self.max_per_client:
            self.refuse(client, f"over {self.max_per_client} connections from one address")
            return False
        self.open[handler] = (client, transport)
        self.per_client[client] += 1
        return True

    def release(self, handler: Any) -> None:
        entry = self.open.pop(handler, None)
        self.trusted.discard(handler)
        if entry is not None:
            self.per_client[entry[0]] -= 1
            if self.per_client[entry[0]] <= 0:
                del self.per_client[entry[0]]

    def trust(self, handler: Any) -> None:
        """The connection (aiohttp's handler of it) sent a request with the token: it may stay open."""
        if handler in self.open:
            self.trusted.add(handler)

    def expire(self, handler: Any) -> None:
        """Close the connection unless it has shown the token by now."""
        entry = self.open.get(handler)
        if entry is not None and handler not in self.trusted and not entry[1].is_closing():
            self.refuse(entry[0], f"no request with the token within {self.hold_s:g} s")
            entry[1].abort()

    def factory(
        self, make: Callable[[], asyncio.BaseProtocol], ssl_context: ssl.SSLContext | None = None
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` (without ``ssl``): the gate, then TLS, then ``make``'s."""
        return lambda: _Gated(make(), self, ssl_context)


class _Gated(asyncio.Protocol):
    """Admits a TCP connection, then hands its bytes to TLS (when used) and aiohttp's request handler."""

    def __init__(self, inner: Any, gate: ConnectionGate, ssl_context: ssl.SSLContext | None) -> None:
        self.inner, self.gate, self.ssl_context = inner, gate, ssl_context
        self.proto: Any = None  # what receives the socket's events: TLS, or aiohttp's handler itself
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.gate.admit(self.inner, transport):
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.gate.hold_s, self.gate.expire, self.inner)
        if self.ssl_context is None:
            self.proto = self.inner
        else:
            waiter: asyncio.Future[None] = loop.create_future()
            waiter.add_done_callback(lambda f: f.cancelled() or f.exception())  # a failed handshake is not an error
            self.proto = sslproto.SSLProtocol(
                loop,
                self.inner,
                self.ssl_context,
                waiter,
                server_side=True,
                ssl_handshake_timeout=round(self.gate.hold_s) + 5,  # the gate closes it first, and counts it
            )
        self.proto.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.proto is None:
            return
        if not isinstance(self.proto, asyncio.BufferedProtocol):
            self.proto.data_received(data)
            return
        view = memoryview(data)
        while view:
            buf = memoryview(self.proto.get_buffer(len(view))).cast("B")
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            self.proto.buffer_updated(n)
            view = view[n:]

    def eof_received(self) -> bool | None:
        return self.proto.eof_received() if self.proto is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.proto is not None:
            self.gate.release(self.inner)
            self.proto.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.proto is not None:
            self.proto.pause_writing()

    def resume_writing(self) -> None:
        if self.proto is not None:
            self.proto.resume_writing()
