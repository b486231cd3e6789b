"""Bounding inbound TCP connections that have not finished their libp2p handshake.

Why: py-libp2p 0.8.1 gives each inbound connection a slot of one swarm-wide limiter
(``max_connections - min_connections`` of them) from accept until the connection ends, and
a connection that never sends a byte keeps its slot for the whole upgrade timeout (10 s by
default). A few hundred idle sockets from one address take every slot, and every new peer
is turned away (its dial fails with ``SwarmDialAllFailedError``).

Theory of operation: ``PendingConnections.guard`` wraps the handler the swarm gives the TCP
listener, so every accepted socket passes here before libp2p sees it. Each socket is
*pending* from accept until the swarm reports it ``connected`` (the notifee below matches
it by its remote ``(ip, port)``) or its handler ends. At most ``per_ip`` pending from one
address and ``total`` in all: a newcomer over a bound evicts the oldest pending socket of
its address (over ``total``: of the address with the most pending) if that one has waited
``evict_after`` seconds, else the newcomer is closed at once. So idle sockets cannot hold
more than a handful of slots, a peer from another address always gets in, and one from
the same address gets in by pushing out a stale idle socket. The handshake deadline
itself is libp2p's ``inbound_upgrade_timeout``, which ``build_host`` sets short.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee

log = logging.getLogger(__name__)

Address = tuple[str, int]
Handler = Callable[[Any], Awaitable[None]]
LOG_EVERY_S = 10.0


@dataclass(eq=False)
class _Pending:
    address: Address
    since: float
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class PendingConnections:
    """Inbound sockets still in their handshake, bounded per source address and in total."""

    def __init__(self, per_ip: int, total: int, evict_after: float) -> None:
        self.per_ip = per_ip
        self.total = total
        self.evict_after = evict_after
        self._pending: dict[Address, _Pending] = {}  # oldest first
        self.refused = 0  # newcomers closed at once (for logs and tests)
        self.evicted = 0
        self._quiet_until = -math.inf

    def __len__(self) -> int:
        return len(self._pending)

    def guard(self, handler: Handler) -> Handler:
        """``handler`` (the swarm's), run only for sockets admitted here."""

        async def guarded(stream: Any) -> None:
            address = _address_of(stream)
            entry = self.admit(address, trio.current_time())
            if entry is None:
                await _close(stream)
                return
            try:
                with entry.scope:
                    await handler(stream)
            finally:
                self._forget(entry)
                if entry.scope.cancelled_caught:
                    await _close(stream)

        return guarded

    def admit(self, address: Address, now: float) -> _Pending | None:
        """A new pending entry for ``address``, or None if it must be closed now."""
        ip = address[0]
        if self._count(ip) >= self.per_ip and not self._evict_oldest(ip, now):
            self._refuse(address, "per-address", now)
            return None
        if len(self._pending) >= self.total and not self._evict_oldest(self._busiest(), now):
            self._refuse(address, "total", now)
            return None
        self._pending.pop(address, None)  # a reused (ip, port): the old socket is gone
        entry = self._pending[address] = _Pending(address, now)
        return entry

    def established(self, address: Address) -> None:
        """The socket from ``address`` finished its handshake: no longer pending."""
        self._pending.pop(address, None)

    def notifee(self) -> INotifee:
        return _Established(self)

    def _forget(self, entry: _Pending) -> None:
        if self._pending.get(entry.address) is entry:
            del self._pending[entry.address]

    def _count(self, ip: str) -> int:
        return sum(1 for address in self._pending if address[0] == ip)

    def _busiest(self) -> str:
        counts: dict[str, int] = {}
        for ip, _ in self._pending:
            counts[ip] = counts.get(ip, 0) + 1
        return max(counts, key=counts.__getitem__)

    def _evict_oldest(self, ip: str, now: float) -> bool:
        oldest = next((e for a, e in self._pending.items() if a[0] == ip), None)
        if oldest is None or now - oldest.since < self.evict_after:
            return False
        del self._pending[oldest.address]
        oldest.scope.cancel()
        self.evicted += 1
        log.debug("evicted a pending connection from %s:%d", *oldest.address)
        return True

    def _refuse(self, address: Address, bound: str, now: float) -> None:
        self.refused += 1
        if now >= self._quiet_until:  # a flood logs once in a while, not per socket
            self._quiet_until = now + LOG_EVERY_S
            log.warning(
                "closing new connections over the %s bound of pending handshakes "
                "(%d closed so far; latest from %s)",
                bound,
                self.refused,
                address[0],
                extra={"event": "pending_connection_refused"},
            )


class _Established(INotifee):
    """Marks a pending socket established when the swarm reports its connection."""

    def __init__(self, pending: PendingConnections) -> None:
        self._pending = pending

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        remote = getattr(conn.muxed_conn, "get_remote_address", None)
        address = remote() if remote is not None else None
        if address is not None:
            self._pending.established((str(address[0]), int(address[1])))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


def _address_of(stream: Any) -> Address:
    try:
        host, port = stream.get_remote_address()
        return (str(host), int(port))
    except Exception:  # no address known: all such sockets share one bucket
        return ("?", id(stream))


async def _close(stream: Any) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(1.0):
        try:
            await stream.close()
        except Exception as exc:  # closing a socket the peer already dropped
            log.debug("closing a pending connection failed: %s", exc)
