"""Building the py-libp2p host: identity from the node seed, Noise, Yamux, TCP and QUIC.

The libp2p identity is the node's Ed25519 key, so the peer ID that Noise authenticates is the
key that signs receipts. Only Noise is offered (py-libp2p would also offer TLS, secio and
plaintext). One connection per peer: py-libp2p waits a fixed 250 ms on every connect
otherwise. No automatic dialing of known peers. Inbound TCP sockets still in their
handshake are bounded per source address and in total (``_pending``), and the handshake
must finish within ``HANDSHAKE_TIMEOUT_S``; QUIC handshakes hold no swarm slot (the QUIC
listener hands the swarm only finished connections), so they need no such bound. Listening
never raises in py-libp2p (a port in use is only logged), so ``check_listening`` compares
what listens with what was asked for.
"""

from __future__ import annotations

import socket
from typing import Any

import multiaddr
from libp2p import new_host
from libp2p.abc import IHost, ITransport
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.network.config import ConnectionConfig
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.transport.quic.transport import QUICTransport
from libp2p.transport.tcp.tcp import TCP, TCPListener

from plasm.actors.network import _libp2p_private
from plasm.actors.network._errors import NetworkStartError
from plasm.actors.network._pending import PendingConnections
from plasm.protocol.identity import peer_id_from_public_key

SEED_SIZE = 32
HANDSHAKE_TIMEOUT_S = 3.0  # accept to Noise + Yamux done (py-libp2p's default: 10 s)
PENDING_PER_IP = 8  # sockets from one address in their handshake at once
PENDING_TOTAL = 64  # ... from all addresses
EVICT_AFTER_S = 1.0  # a pending socket this old may be pushed out by a newcomer


class GuardedTCP(TCP):
    """py-libp2p's TCP transport, with every accepted socket passed through ``pending``."""

    def __init__(self, pending: PendingConnections) -> None:
        super().__init__()
        self.pending = pending

    def create_listener(self, handler_function: Any) -> TCPListener:
        return TCPListener(self.pending.guard(handler_function))


def key_pair_from_seed(seed: bytes) -> KeyPair:
    """The libp2p key pair of the node key whose 32-byte Ed25519 seed is ``seed``."""
    if len(seed) != SEED_SIZE:
        raise ValueError(f"the node key seed must be {SEED_SIZE} bytes, got {len(seed)}")
    return create_new_key_pair(seed)


def parse_multiaddrs(
    addresses: tuple[str, ...] | list[str], what: str
) -> list[multiaddr.Multiaddr]:
    parsed = []
    for address in addresses:
        try:
            parsed.append(multiaddr.Multiaddr(address))
        except Exception as exc:  # multiaddr raises several unrelated types
            raise NetworkStartError(f"bad {what} address {address!r}: {exc}") from exc
    return parsed


def _transports(
    key_pair: KeyPair, listen: list[multiaddr.Multiaddr], pending: PendingConnections
) -> list[ITransport]:
    """TCP (guarded) and, if a listen address asks for it, QUIC: what py-libp2p would pick
    from the listen addresses, with our TCP in place of its own."""
    transports: list[ITransport] = [GuardedTCP(pending)]
    if any(_transport_of(a)[1] == "quic" for a in listen):
        transports.append(QUICTransport(key_pair.private_key))
    return transports


def build_host(
    seed: bytes,
    listen: list[multiaddr.Multiaddr],
    pending: PendingConnections | None = None,
    max_connections: int = 64,
) -> IHost:
    """A host with the node identity, Noise only, Yamux, one connection per peer, at most
    ``max_connections`` connections, and inbound handshakes bounded in time and number
    (by ``pending``, else the defaults)."""
    _libp2p_private.require()
    key_pair = key_pair_from_seed(seed)
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    if pending is None:
        pending = PendingConnections(PENDING_PER_IP, PENDING_TOTAL, EVICT_AFTER_S)
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_preference="YAMUX",
        listen_addrs=listen,
        transports=_transports(key_pair, listen, pending),
        connection_config=connection_config(max_connections),
    )
    host.get_network().register_notifee(pending.notifee())
    expected = peer_id_from_public_key(key_pair.public_key.to_bytes())
    if str(host.get_id()) != expected:  # a py-libp2p change would break receipt binding
        raise NetworkStartError(f"libp2p derived peer id {host.get_id()}, expected {expected}")
    return host


def connection_config(max_connections: int) -> ConnectionConfig:
    """py-libp2p's connection manager, bounded by ``max_connections``.

    Above the high watermark (3/4 of the cap) it closes the least useful connections
    older than the grace period (20 s) down towards the low watermark (1/2); below the
    low watermark it dials peers it knows of (DHT, identify) up towards the middle. The
    cap itself refuses connections past it, inbound included, so a full node (the
    bootstrap node of a big network, say) sheds older peers to take new ones, which have
    found others through its DHT by the time they are shed. min_connections stays 0: all
    of the cap may be inbound.
    """
    return ConnectionConfig(
        max_connections=max_connections,
        max_connections_per_peer=1,
        min_connections=0,
        low_watermark=max_connections // 2,
        high_watermark=max_connections * 3 // 4,
        inbound_upgrade_timeout=HANDSHAKE_TIMEOUT_S,
    )


def _transport_of(address: multiaddr.Multiaddr) -> tuple[str, str]:
    names = [p.name for p in address.protocols()]
    ip = next((address.value_for_protocol(n) for n in ("ip4", "ip6") if n in names), "")
    return (str(ip), "quic" if "quic-v1" in names or "quic" in names else names[-1])


def check_ports_free(requested: list[multiaddr.Multiaddr]) -> None:
    """Raise ``NetworkStartError`` if a fixed TCP port we are asked for is taken.

    py-libp2p binds its TCP listeners with SO_REUSEPORT (for hole punching), so a second
    daemon on the same port would *share* it, and the kernel would hand each incoming
    connection to either node at random. A plain bind (no SO_REUSEPORT) fails while any
    other socket holds the port, which tells us before the host starts.
    """
    for address in requested:
        protocols = {p.name for p in address.protocols()}
        if "tcp" not in protocols or "quic-v1" in protocols:
            continue
        port = int(address.value_for_protocol("tcp"))
        if port == 0:
            continue
        family, host = (
            (socket.AF_INET6, address.value_for_protocol("ip6"))
            if "ip6" in protocols
            else (socket.AF_INET, address.value_for_protocol("ip4"))
        )
        probe = socket.socket(family, socket.SOCK_STREAM)
        # SO_REUSEADDR (not REUSEPORT): connections of our own last run lingering in
        # TIME_WAIT do not count, a socket listening there now does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NetworkStartError(
                f"cannot listen on {address}: {exc.strerror} (is another plasmd running "
                "there?); change network.listen or free the port"
            ) from exc
        finally:
            probe.close()


def check_listening(host: IHost, requested: list[multiaddr.Multiaddr]) -> None:
    """Raise ``NetworkStartError`` unless every requested address has a listener."""
    listening = {_transport_of(a) for a in host.get_transport_addrs()}
    missing = [str(a) for a in requested if _transport_of(a) not in listening]
    if missing:
        raise NetworkStartError(
            f"could not listen on {', '.join(missing)} (port in use or address not local?); "
            "change the listen addresses or free the port"
        )
