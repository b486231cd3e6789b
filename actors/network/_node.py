"""The trio side of the network actor: one libp2p host and what runs around it.

Theory of operation: ``P2PNode.run`` (a task in the network thread's nursery) builds the
host, registers the wrapped inbound handlers, listens, checks that every listen address
took, starts the DHT service and mDNS, reports ``started`` and then keeps background
jobs going: one per bootstrap peer that dials it whenever it is not connected (backing
off from 1 s to ``refresh_interval`` while it fails, one warning per ``refresh_interval``),
and, every ``refresh_interval``, putting connected peers into the DHT routing table and
refreshing it. py-libp2p's connection manager keeps the connections within
``max_connections`` (``_host.connection_config``).
Every public coroutine is one operation the actor asks for; each returns a catalogue
message and never raises for a peer's failure (outbound exchanges answer ``PeerFailure``).
Connection changes reach ``emit`` as ``PeerEvent``s through the swarm's notifee API.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import multiaddr
import pykka
import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.kad_dht.kad_dht import KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service

from plasm.actors.blob_grants import BlobGrants
from plasm.actors.messages import (
    BlobFetched,
    BlobFetchFailed,
    ConnectedPeer,
    Dialed,
    NetworkInfo,
    PeerEvent,
    PeerFailure,
    PeerResponse,
    Pong,
    ProviderInfo,
    Providers,
    Record,
)
from plasm.actors.network import _dht as dht_ops
from plasm.actors.network._blobs import BlobFetcher, BlobServer
from plasm.actors.network._errors import DialError, NetworkStartError
from plasm.actors.network._host import (
    build_host,
    check_listening,
    check_ports_free,
    parse_multiaddrs,
)
from plasm.actors.network._inbound import InboundServer
from plasm.actors.network._mdns import LocalMdns
from plasm.actors.network._streams import ExchangeFailed, exchange, frame_cap, reset_quietly
from plasm.protocol.blob_transfer import PROTOCOL_BLOB
from plasm.protocol.messages import BlobRef

log = logging.getLogger(__name__)

PING_SIZE = 32
BOOTSTRAP_RETRY_S = 1.0  # the first retry of a bootstrap peer that did not answer
BOOTSTRAP_CHECK_S = 2.0  # how often a node looks whether it still needs its bootstrap peers


@dataclass(frozen=True, slots=True)
class P2PNodeSettings:
    seed: bytes
    listen: tuple[str, ...]
    bootstrap: tuple[str, ...]
    mdns: bool
    max_connections: int
    handlers: dict[str, pykka.ActorRef[Any]]
    frame_caps: dict[str, int]
    max_streams_per_peer: int
    read_deadline: float
    answer_deadline: float
    worker_threads: int
    dial_timeout: float
    refresh_interval: float
    blob_grants: BlobGrants | None = None


class _ConnectionEvents(INotifee):
    def __init__(self, node: P2PNode) -> None:
        self._node = node

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._node.connection_changed("connected", conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._node.connection_changed("disconnected", conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


class P2PNode:
    def __init__(self, settings: P2PNodeSettings, emit: Callable[[PeerEvent], None]) -> None:
        self._settings = settings
        self._emit = emit
        self._listen = parse_multiaddrs(settings.listen, "listen")
        self._bootstrap = [
            info_from_p2p_addr(a) for a in parse_multiaddrs(settings.bootstrap, "bootstrap")
        ]
        self._host: IHost | None = None
        self._dht: KadDHT | None = None
        self.dht_traffic = dht_ops.DhtTraffic()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._mdns: LocalMdns | None = None
        self.inbound = InboundServer(
            settings.handlers,
            settings.frame_caps,
            max_streams_per_peer=settings.max_streams_per_peer,
            read_deadline=settings.read_deadline,
            answer_deadline=settings.answer_deadline,
            worker_threads=settings.worker_threads,
            on_reject=self._rejected,
        )
        self.blob_server = BlobServer(settings.blob_grants, settings.read_deadline)
        self.blob_fetcher = BlobFetcher(settings.read_deadline)

    @property
    def host(self) -> IHost:
        assert self._host is not None, "the host is built in run()"
        return self._host

    @property
    def dht(self) -> KadDHT:
        assert self._dht is not None, "the DHT is built in run()"
        return self._dht

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        check_ports_free(self._listen)
        host = self._host = build_host(
            self._settings.seed, self._listen, max_connections=self._settings.max_connections
        )
        for protocol in self.inbound.protocols:
            host.set_stream_handler(TProtocol(protocol), self.inbound.handler_for(protocol))
        host.set_stream_handler(TProtocol(PROTOCOL_BLOB), self.blob_server.handle)
        host.get_network().register_notifee(_ConnectionEvents(self))
        self._dht = dht_ops.build_dht(host, self.dht_traffic)
        async with host.run(self._listen), background_trio_service(self._dht):
            check_listening(host, self._listen)
            self._mdns = await self._start_mdns() if self._settings.mdns else None
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._maintain)
                    log.info(
                        "network listening on %s",
                        ", ".join(self.listen_addresses()),
                        extra={"event": "network_listening"},
                    )
                    task_status.started()
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                    await self.close()

    async def close(self) -> None:
        """Leave the network: stop mDNS, close every connection. Idempotent."""
        mdns, self._mdns = self._mdns, None
        if mdns is not None:
            await trio.to_thread.run_sync(mdns.stop)
        if self._host is not None:
            await self._host.close()

    async def _start_mdns(self) -> LocalMdns:
        ip = next(
            (
                str(a.value_for_protocol("ip4"))
                for a in self._listen
                if "ip4" in [p.name for p in a.protocols()]
            ),
            None,
        )
        try:
            mdns = LocalMdns(self.host, ip, self._found_by_mdns)
            await trio.to_thread.run_sync(mdns.start)
        except OSError as exc:
            raise NetworkStartError(f"mDNS could not start on {ip}: {exc}; disable mdns") from exc
        return mdns

    async def _maintain(self) -> None:
        async with trio.open_nursery() as nursery:
            for info in self._bootstrap:
                nursery.start_soon(self._keep_bootstrap, info)
            while True:
                for peer in self.host.get_connected_peers():
                    await self._add_to_table(peer)
                with trio.move_on_after(self._settings.refresh_interval):
                    try:
                        await self.dht.refresh_routing_table()
                    except Exception as exc:  # a failed refresh is retried next round
                        log.warning("routing table refresh failed: %s", exc)
                await trio.sleep(self._settings.refresh_interval)

    async def _keep_bootstrap(self, info: PeerInfo) -> None:
        """Dial a bootstrap peer while the node needs one (``_needs_bootstrap``): at once,
        then after failures every 1, 2, 4 ... s up to ``refresh_interval`` (a full
        bootstrap node refuses for a while, a restarting one comes back); otherwise look
        again every ``BOOTSTRAP_CHECK_S``."""
        backoff = BOOTSTRAP_RETRY_S
        warned_at: float | None = None
        while True:
            if self._is_connected(info.peer_id) or not self._needs_bootstrap():
                backoff = BOOTSTRAP_RETRY_S
                # cheap to look: a node the bootstrap node pruned asks again within seconds
                await trio.sleep(min(BOOTSTRAP_CHECK_S, self._settings.refresh_interval))
                continue
            # one warning per refresh_interval, however often it is retried in between
            period = self._settings.refresh_interval
            loud = warned_at is None or time.monotonic() - warned_at >= period
            if not await self._dial_bootstrap(info, loud) and loud:
                warned_at = time.monotonic()
            if self._is_connected(info.peer_id):
                warned_at = None
                continue
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self._settings.refresh_interval)

    def _needs_bootstrap(self) -> bool:
        """A node redials its bootstrap peers only while it holds fewer connections than
        the low watermark and none to a bootstrap peer: one that found the network stops
        knocking, so the bootstrap node of a big network has room for newcomers."""
        connected = self.host.get_connected_peers()
        if any(self._is_connected(b.peer_id) for b in self._bootstrap):
            return False
        return len(connected) < max(1, self._settings.max_connections // 2)

    async def _dial_bootstrap(self, info: PeerInfo, loud: bool = True) -> bool:
        """Dial; on failure log why (at warning when ``loud``) and answer False."""
        # py-libp2p keeps a failed peer in a negative cache for about as long as a round:
        # a retry must dial again, or its warning says "recently failed" and not why
        unblock = getattr(self.host.get_network(), "unblock_peer", None)  # the Swarm's
        if unblock is not None:
            unblock(info.peer_id)
        address = ", ".join(str(a) for a in info.addrs)
        expected = str(info.peer_id)
        try:
            await self._connect(info)
        except DialError as exc:
            say = log.warning if loud else log.debug
            retry = f"retrying, at least every {self._settings.refresh_interval:g} s"
            fields: dict[str, Any] = {"peer_id": expected, "address": address}
            if exc.actual_peer is not None:
                say(
                    "bootstrap address %s answers as peer %s, not %s: fix the /p2p/ part of "
                    "network.bootstrap (or --bootstrap); %s",
                    address, exc.actual_peer, expected, retry,
                    extra={"event": "bootstrap_wrong_peer", "expected": expected,
                           "actual": exc.actual_peer, **fields},
                )
            elif exc.unreachable:
                say(
                    "bootstrap peer %s at %s is unreachable (nothing accepts connections "
                    "there); %s", expected, address, retry,
                    extra={"event": "bootstrap_unreachable", **fields},
                )
            else:
                say("bootstrap peer at %s: %s; %s", address, exc, retry,
                    extra={"event": "bootstrap_dial_failed", **fields})
            return False
        await self._add_to_table(info.peer_id)
        return True

    async def _add_to_table(self, peer: ID) -> None:
        try:
            await self.dht.add_peer(peer, skip_server_mode_check=True)
        except Exception as exc:  # the table refuses some peers; that is not an error
            log.debug("peer %s not added to the routing table: %s", peer, exc)

    # --- events -----------------------------------------------------------------------

    def connection_changed(self, kind: str, conn: INetConn) -> None:
        peer = str(conn.muxed_conn.peer_id)
        addrs = tuple(str(a) for a in _remote_addrs(conn))
        log.info("peer %s %s", peer, kind, extra={"event": f"peer_{kind}", "peer_id": peer})
        self._emit(PeerEvent(kind, peer, addrs))

    def _rejected(self, peer: str, why: str) -> None:
        log.warning(
            "rejected a stream from %s: %s",
            peer,
            why,
            extra={"event": "peer_rejected", "peer_id": peer},
        )
        self._emit(PeerEvent("rejected", peer, (), why))

    def _found_by_mdns(self, peer: str, addrs: tuple[str, ...]) -> None:
        # zeroconf's thread: hand the connect to trio, tell discovery directly
        self._emit(PeerEvent("found", peer, addrs, "mdns"))
        if self._token is not None and self._nursery is not None:
            full = [multiaddr.Multiaddr(a) for a in addrs]
            info = PeerInfo(ID.from_base58(peer), full)
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._nursery.start_soon, self._dial_found, info)

    async def _dial_found(self, info: PeerInfo) -> None:
        try:
            await self._connect(info)
        except DialError as exc:
            log.info("%s", exc, extra={"event": "dial_failed", "peer_id": str(info.peer_id)})

    # --- operations -------------------------------------------------------------------

    async def request(self, peer_id: str, protocol: str, payload: bytes, timeout_ms: int) -> Any:
        """One exchange; a ``PeerResponse`` or a ``PeerFailure`` (never raises for the peer)."""
        try:
            with trio.fail_after(max(timeout_ms, 1) / 1000):
                peer = _parse_peer_id(peer_id)
                await self._ensure_addresses(peer)
                cap = frame_cap(protocol, self._settings.frame_caps)
                answer = await exchange(self.host, peer, protocol, payload, cap)
        except ExchangeFailed as exc:
            if exc.reason == "unreachable":
                log.info("%s", exc.message, extra={"event": "dial_failed", "peer_id": peer_id})
            return PeerFailure(peer_id, exc.reason, exc.message)
        except DialError as exc:
            log.info("%s", exc, extra={"event": "dial_failed", "peer_id": peer_id})
            return PeerFailure(peer_id, "unreachable", str(exc))
        except trio.TooSlowError:
            return PeerFailure(peer_id, "timeout", f"no answer from {peer_id} in {timeout_ms} ms")
        return PeerResponse(peer_id, answer)

    async def fetch_blob(
        self, peer_id: str, blob: BlobRef, timeout_ms: int
    ) -> BlobFetched | BlobFetchFailed:
        """Blob ``blob`` from ``peer_id``, checked (never raises for the peer)."""
        timeout_s = max(timeout_ms, 1) / 1000
        try:
            peer = _parse_peer_id(peer_id)
            with trio.fail_after(timeout_s):
                await self._ensure_addresses(peer)
        except DialError as exc:
            return BlobFetchFailed(peer_id, blob.sha256, "unreachable", str(exc))
        except trio.TooSlowError:
            return BlobFetchFailed(peer_id, blob.sha256, "timeout", f"no address for {peer_id}")
        return await self.blob_fetcher.fetch(self.host, peer_id, peer, blob, timeout_s)

    async def _ensure_addresses(self, peer: ID) -> None:
        if self._is_connected(peer) or _known_addrs(self.host, peer):
            return
        if peer == self.host.get_id():
            raise DialError("a node cannot open a stream to itself")
        try:
            found = await self.dht.find_peer(peer)
        except Exception as exc:  # a DHT lookup that fails means: not found
            raise DialError(
                f"no address known for {peer} and the DHT lookup failed: {exc}"
            ) from exc
        if found is None or not found.addrs:
            raise DialError(f"no address known for {peer}, and the DHT does not know it")
        self.host.get_peerstore().add_addrs(peer, found.addrs, 600)

    async def _connect(self, info: PeerInfo) -> None:
        try:
            with trio.fail_after(self._settings.dial_timeout):
                await self.host.connect(info)
        except trio.TooSlowError as exc:
            raise DialError(f"dialing {info.peer_id} timed out") from exc
        except Exception as exc:  # py-libp2p raises many unrelated error types on dial
            actual = _answered_as(exc)
            if actual is not None:
                raise DialError(
                    f"dialing {info.peer_id} failed: the address answers as peer {actual}",
                    actual_peer=actual,
                ) from exc
            if _refused(exc):
                raise DialError(
                    f"dialing {info.peer_id} failed: nothing accepts connections at "
                    f"{', '.join(str(a) for a in info.addrs)}",
                    unreachable=True,
                ) from exc
            raise DialError(f"dialing {info.peer_id} failed: {exc}") from exc

    async def dial(self, address: str) -> Dialed:
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception as exc:  # bad multiaddr or no /p2p/ part
            raise DialError(
                f"{address!r} is not a multiaddr ending in /p2p/<peer id>: {exc}"
            ) from exc
        try:
            await self._connect(info)
        except DialError as exc:
            log.info("%s", exc, extra={"event": "dial_failed", "peer_id": str(info.peer_id)})
            raise
        await self._add_to_table(info.peer_id)
        return Dialed(str(info.peer_id))

    async def ping(self, peer_id: str, timeout: float) -> Pong:
        peer = _parse_peer_id(peer_id)
        try:
            with trio.fail_after(timeout):
                await self._ensure_addresses(peer)
                stream = await self.host.new_stream(peer, [PING_PROTOCOL])
                try:
                    probe = secrets.token_bytes(PING_SIZE)
                    started = time.perf_counter_ns()
                    await stream.write(probe)
                    echoed = b""
                    while len(echoed) < PING_SIZE:
                        chunk = await stream.read(PING_SIZE - len(echoed))
                        if not chunk:
                            raise DialError(f"{peer_id} closed the ping stream")
                        echoed += chunk
                    rtt_us = (time.perf_counter_ns() - started) // 1000
                finally:
                    await reset_quietly(stream)
        except trio.TooSlowError as exc:
            raise DialError(f"no ping answer from {peer_id} within {timeout:g} s") from exc
        except DialError:
            raise
        except Exception as exc:
            raise DialError(f"ping to {peer_id} failed: {exc}") from exc
        if echoed != probe:
            raise DialError(f"{peer_id} answered the ping with other bytes")
        return Pong(peer_id, rtt_us)

    async def provide(self, key: str) -> None:
        await dht_ops.provide(self.dht, key)

    async def find_providers(self, key: str, limit: int, timeout_ms: int) -> Providers:
        found: tuple[ProviderInfo, ...] = ()
        with trio.move_on_after(max(timeout_ms, 1) / 1000):
            found = await dht_ops.find_providers(self.dht, key, limit)
        own = str(self.host.get_id())
        for provider in found:
            if provider.peer_id != own:
                self._emit(PeerEvent("found", provider.peer_id, provider.addresses, "dht"))
        return Providers(key, found)

    async def put_record(self, key: str, value: bytes) -> None:
        await dht_ops.put_record(self.dht, key, value)

    async def get_record(self, key: str, timeout_ms: int) -> Record:
        value: bytes | None = None
        with trio.move_on_after(max(timeout_ms, 1) / 1000):
            value = await dht_ops.get_record(self.dht, key)
        return Record(key, value)

    async def network_info(self) -> NetworkInfo:
        host = self.host
        listen = self.listen_addresses()
        observed = tuple(str(a) for a in host.get_addrs() if str(a) not in listen)
        connected = tuple(
            ConnectedPeer(str(peer), tuple(str(a) for a in _known_addrs(host, peer)))
            for peer in host.get_connected_peers()
        )
        return NetworkInfo(
            str(host.get_id()),
            listen,
            observed,
            reachability(listen, observed),
            connected,
            dht_requests_served=self.dht_traffic.requests_served,
        )

    def listen_addresses(self) -> tuple[str, ...]:
        suffix = f"/p2p/{self.host.get_id()}"
        return tuple(str(a) + suffix for a in self.host.get_transport_addrs())

    def _is_connected(self, peer: ID) -> bool:
        return bool(self.host.get_network().connections.get(peer))


def reachability(listen: tuple[str, ...], observed: tuple[str, ...]) -> str:
    """``public`` if any address of ours is globally routable, ``private`` if all are
    private/loopback, ``unknown`` if we have none or only unspecified (0.0.0.0) ones.

    Derived from our listen addresses and the addresses peers observed (identify);
    py-libp2p's AutoNAT is not used.
    """
    kinds = set()
    for address in (*observed, *listen):
        parts = address.split("/")
        if len(parts) < 3 or parts[1] not in ("ip4", "ip6"):
            continue
        ip = ipaddress.ip_address(parts[2])
        kinds.add("unspecified" if ip.is_unspecified else "public" if ip.is_global else "private")
    if "public" in kinds:
        return "public"
    if kinds == {"private"}:
        return "private"
    return "unknown"


def _parse_peer_id(peer_id: str) -> ID:
    try:
        return ID.from_base58(peer_id)
    except Exception as exc:  # base58 and multihash errors
        raise DialError(f"{peer_id!r} is not a peer id") from exc


def _known_addrs(host: IHost, peer: ID) -> list[multiaddr.Multiaddr]:
    try:
        return list(host.get_peerstore().addrs(peer))
    except Exception:  # the peerstore raises for a peer it never heard of
        return []


_ANSWERED_AS = re.compile(r"remote_peer_id_from_pubkey=(\w+)|expected \w+, got (\w+)")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the errors a MultiError holds."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        for group in ("errors", "exceptions"):  # libp2p's MultiError, an ExceptionGroup
            todo += [e for e in getattr(current, group, ()) if isinstance(e, BaseException)]


def _answered_as(exc: BaseException) -> str | None:
    """The peer ID a Noise handshake found in place of the one dialed, if that failed it."""
    for cause in _causes(exc):
        match = _ANSWERED_AS.search(str(cause))
        if match:
            return match.group(1) or match.group(2)
    return None


_UNREACHABLE = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})


def _refused(exc: BaseException) -> bool:
    """Nothing accepted the TCP connection (refused, no route), as opposed to a peer that
    accepted and then closed it (one at its max_connections does that)."""
    return any(
        isinstance(cause, OSError) and cause.errno in _UNREACHABLE for cause in _causes(exc)
    )


def _remote_addrs(conn: INetConn) -> list[multiaddr.Multiaddr]:
    try:
        return list(conn.get_transport_addresses())
    except Exception:  # not every connection type knows its remote address
        return []
