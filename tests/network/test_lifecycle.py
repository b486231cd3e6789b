"""Starting, stopping, start failures, connection events and the trio-thread guard."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
import trio

from plasm.actors._mailbox import PlasmActor, ask
from plasm.actors.messages import Dial, GetNetworkInfo, PeerEvent
from plasm.actors.network import BlockingCallError, NetworkStartError, start_network
from plasm.actors.network._actor import NetworkActor
from plasm.actors.network._runner import TrioThread
from tests.network.conftest import Collector, Node, collected, event_kinds, wait_for

pytestmark = pytest.mark.timeout(60)


def network_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "plasm-network" and t.is_alive()]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_stopping_the_actor_ends_its_network_thread() -> None:
    before = len(network_threads())
    ref, _ = start_network(seed=os.urandom(32))
    assert len(network_threads()) == before + 1
    ref.stop(block=True, timeout=10)
    assert len(network_threads()) == before


def test_port_in_use_fails_the_start_clearly(busy_port: int) -> None:
    with pytest.raises(NetworkStartError, match=r"listen on .*in use"):
        start_network(seed=os.urandom(32), listen=(f"/ip4/127.0.0.1/tcp/{busy_port}",))
    assert network_threads() == []


def test_actor_that_failed_to_start_answers_with_the_start_error(busy_port: int) -> None:
    ref = NetworkActor.start(os.urandom(32), listen=(f"/ip4/127.0.0.1/tcp/{busy_port}",))
    try:
        with pytest.raises(NetworkStartError):
            ask(ref, GetNetworkInfo(), timeout=20)
    finally:
        ref.stop(block=True, timeout=10)


def test_bad_listen_address_fails_the_start() -> None:
    with pytest.raises(NetworkStartError, match="bad listen address"):
        start_network(seed=os.urandom(32), listen=("not-a-multiaddr",))


def test_connect_and_disconnect_are_told_to_events(
    network: Callable[..., Node], actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]]
) -> None:
    events = actors(Collector)
    a = network(events=events)
    b = network()
    ask(b.ref, Dial(a.address), timeout=15)
    wait_for(lambda: "connected" in event_kinds(collected(events), b.peer_id), what="connected")
    b.ref.stop(block=True, timeout=10)
    wait_for(
        lambda: "disconnected" in event_kinds(collected(events), b.peer_id), what="disconnected"
    )
    (connected,) = [
        e for e in collected(events) if isinstance(e, PeerEvent) and e.kind == "connected"
    ]
    assert connected.addresses and connected.addresses[0].startswith("/ip4/127.0.0.1/")


def test_blocking_call_from_the_trio_thread_is_refused() -> None:
    async def setup(nursery: trio.Nursery) -> None:
        pass

    runner = TrioThread("plasm-network-guard-test", setup)
    runner.start(timeout=10)
    outcome: pykka.Future[Any] = pykka.ThreadingFuture()

    async def call_back_in() -> None:
        try:
            runner.call(trio.sleep, 0)
        except BlockingCallError as exc:
            outcome.set(exc)

    try:
        runner.spawn(call_back_in)
        assert isinstance(outcome.get(timeout=10), BlockingCallError)
    finally:
        runner.stop(timeout=10)


def test_mdns_finds_a_peer_on_loopback(
    network: Callable[..., Node], actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]]
) -> None:
    events = actors(Collector)
    a = network(mdns=True, events=events)
    b = network(mdns=True)
    wait_for(
        lambda: "found" in event_kinds(collected(events), b.peer_id), timeout=20, what="mdns find"
    )
    wait_for(lambda: "connected" in event_kinds(collected(events), b.peer_id), what="connect")
    assert a.peer_id != b.peer_id
