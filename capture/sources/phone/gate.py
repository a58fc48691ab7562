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
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64  # phones (a few each) and their page loads; more is a flood
MAX_PER_CLIENT = 16  # one address: a phone's WebSocket, page, photo posts and reconnects
HOLD_S = 10.0  # seconds a connection may stay open without having shown the token


class ConnectionGate:
    """Connection limits before the token (see the module docstring)."""

    def __init__(
        self,
        max_connections: int = MAX_CONNECTIONS,
        max_per_client: int = MAX_PER_CLIENT,
        hold_s: float = HOLD_S,
    ) -> None:
        self.max_connections, self.max_per_client, self.hold_s = max_connections, max_per_client, hold_s
        self.open: dict[Any, str] = {}  # transport -> client address
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

    def admit(self, transport: asyncio.Transport) -> bool:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if len(self.open) >= self.max_connections:
            self.refuse(client, f"over {self.max_connections} open connections")
            return False
        if self.per_client[client] >= self.max_per_client:
            self.refuse(client, f"over {self.max_per_client} connections from one address")
            return False
        self.open[transport] = client
        self.per_client[client] += 1
        return True

    def release(self, transport: asyncio.Transport | None) -> None:
        client = self.open.pop(transport, None)
        self.trusted.discard(transport)
        if client is not None:
            self.per_client[client] -= 1
            if self.per_client[client] <= 0:
                del self.per_client[client]

    def trust(self, transport: Any) -> None:
        """The connection sent a request with the token: it may stay open (WebSocket, keep-alive)."""
        if transport in self.open:
            self.trusted.add(transport)

    def expire(self, transport: asyncio.Transport) -> None:
        """Close ``transport`` unless it has shown the token by now."""
        if transport in self.open and transport not in self.trusted and not transport.is_closing():
            self.refuse(self.open[transport], f"no request with the token within {self.hold_s:g} s")
            transport.abort()

    def factory(self, make: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` that applies the gate to ``make``'s protocols."""
        return lambda: _Gated(make(), self)


class _Gated(asyncio.Protocol):
    """Forwards to aiohttp's request handler once the gate has admitted the connection."""

    def __init__(self, inner: Any, gate: ConnectionGate) -> None:
        self.inner, self.gate = inner, gate
        self.admitted = False
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.gate.admit(transport):
            transport.abort()
            return
        self.admitted, self._transport = True, transport
        self._timer = asyncio.get_running_loop().call_later(self.gate.hold_s, self.gate.expire, transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.admitted:
            self.gate.release(self._transport)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()
