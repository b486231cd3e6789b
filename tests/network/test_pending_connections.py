"""Inbound sockets in their handshake are bounded per address and in total; what the
bound relies on in py-libp2p is there."""

from __future__ import annotations

import os
import socket

import multiaddr
import trio

from plasm.actors.network import _libp2p_private
from plasm.actors.network._host import build_host
from plasm.actors.network._pending import PendingConnections
from tests.network.hostile_peers import time_to_connect

A, B = "192.0.2.1", "198.51.100.7"


def gate() -> PendingConnections:
    return PendingConnections(per_ip=2, total=3, evict_after=1.0)


def test_a_young_socket_over_the_per_address_bound_is_refused() -> None:
    pending = gate()
    assert pending.admit((A, 1), 0.0) and pending.admit((A, 2), 0.0)
    assert pending.admit((A, 3), 0.5) is None
    assert pending.refused == 1


def test_a_newcomer_pushes_out_the_oldest_stale_socket_of_its_address() -> None:
    pending = gate()
    oldest = pending.admit((A, 1), 0.0)
    assert oldest is not None and pending.admit((A, 2), 0.5)
    assert pending.admit((A, 3), 1.0) is not None
    assert oldest.scope.cancel_called and pending.evicted == 1
    assert len(pending) == 2


def test_another_address_gets_in_past_the_total_by_evicting_the_busiest() -> None:
    pending = gate()
    first = pending.admit((A, 1), 0.0)
    assert first is not None and pending.admit((A, 2), 0.0) and pending.admit((B, 1), 0.0)
    assert pending.admit((B, 2), 2.0) is not None
    assert first.scope.cancel_called


def test_an_established_socket_no_longer_counts() -> None:
    pending = gate()
    assert pending.admit((A, 1), 0.0) and pending.admit((A, 2), 0.0)
    pending.established((A, 1))
    assert pending.admit((A, 3), 0.1) is not None


def test_this_libp2p_has_what_the_bound_relies_on() -> None:
    assert _libp2p_private.problems() == []
    _libp2p_private.require()


def test_a_real_connection_is_pending_only_until_its_handshake_ends() -> None:
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    pending = PendingConnections(per_ip=2, total=8, evict_after=0.2)

    async def main() -> tuple[int, int, int]:
        host = build_host(os.urandom(32), listen, pending)
        async with host.run(listen):
            address = f"{host.get_transport_addrs()[0]}/p2p/{host.get_id()}"
            await time_to_connect(address, 10.0)  # connects, then closes at once
            ip, port = address.split("/")[2], int(address.split("/")[4])
            idle = [socket.create_connection((ip, port)) for _ in range(2)]
            await trio.sleep(0.3)
            held = len(pending)  # the two idle sockets, not the finished connection
            await time_to_connect(address, 10.0)  # pushes one stale idle socket out
            await trio.sleep(0.1)
            after = len(pending)
            for sock in idle:
                sock.close()
            await host.close()
        return held, after, pending.evicted

    held, after, evicted = trio.run(main)
    assert (held, evicted) == (2, 1)
    assert after == 1  # one idle socket left; the connection that got in is not pending
