"""One request/response exchange between two network actors, and how it fails."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pykka
import pytest

from plasm.actors._mailbox import PlasmActor, ask, tell
from plasm.actors.messages import PeerFailure, PeerRequest, PeerResponse, Ping, Pong
from plasm.protocol.p2p_messages import PROTOCOL_CAPS, PROTOCOL_JOB
from tests.network.conftest import (
    LOOPBACK_QUIC,
    Collector,
    Later,
    Node,
    collected,
    node_peer_id,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


def request(node: Node, peer: Node | str, payload: bytes, timeout_ms: int = 5000, **kw: Any) -> Any:
    peer_id = peer if isinstance(peer, str) else peer.peer_id
    message = PeerRequest(peer_id, kw.pop("protocol", PROTOCOL_CAPS), payload, timeout_ms, **kw)
    return ask(node.ref, message, timeout=timeout_ms / 1000 + 10)


def dialed(a: Node, b: Node) -> None:
    """Let `a` know `b`'s address (what bootstrap or discovery would do)."""
    from plasm.actors.messages import Dial

    ask(a.ref, Dial(b.address), timeout=15)


def test_peer_id_is_the_node_key_peer_id(network: Callable[..., Node]) -> None:
    seed = os.urandom(32)
    node = network(seed=seed)
    assert node.peer_id == node_peer_id(seed)
    assert node.address.endswith(f"/p2p/{node_peer_id(seed)}")


def test_request_round_trips_through_the_handler_actor(network: Callable[..., Node]) -> None:
    a, b = network(), network()
    dialed(b, a)
    answer = request(b, a, b"hello", tag="t1")
    assert answer == PeerResponse(a.peer_id, f"{b.peer_id}|hello".encode(), tag="t1")


def test_handler_sees_the_noise_authenticated_requester(network: Callable[..., Node]) -> None:
    a, b = network(), network()
    dialed(b, a)
    payload = request(b, a, b"who").payload
    assert payload.split(b"|")[0].decode() == node_peer_id(b.seed)


def test_request_over_quic_round_trips(network: Callable[..., Node]) -> None:
    a = network(listen=(LOOPBACK_QUIC,))
    b = network(listen=(LOOPBACK_QUIC,))
    assert "/quic-v1/" in a.address
    dialed(b, a)
    assert request(b, a, b"over quic").payload == f"{b.peer_id}|over quic".encode()


def test_request_with_reply_to_answers_by_tell(
    network: Callable[..., Node], actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]]
) -> None:
    a, b = network(), network()
    dialed(b, a)
    inbox = actors(Collector)
    tell(b.ref, PeerRequest(a.peer_id, PROTOCOL_CAPS, b"async", 5000, "tag-7"), reply_to=inbox)
    wait_for(lambda: any(isinstance(m, PeerResponse) for m in collected(inbox)), what="answer")
    (answer,) = [m for m in collected(inbox) if isinstance(m, PeerResponse)]
    assert answer.tag == "tag-7"
    assert answer.payload == f"{b.peer_id}|async".encode()


def test_handler_answering_a_future_is_waited_for(
    network: Callable[..., Node], actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]]
) -> None:
    later = actors(Later)
    a = network(handlers={PROTOCOL_JOB: later})
    b = network()
    dialed(b, a)
    assert request(b, a, b"job", protocol=PROTOCOL_JOB).payload == b"later|job"


def test_unknown_peer_is_unreachable(network: Callable[..., Node]) -> None:
    a = network()
    stranger = node_peer_id(os.urandom(32))
    answer = request(a, stranger, b"anyone?", timeout_ms=3000)
    assert isinstance(answer, PeerFailure)
    assert answer.reason == "unreachable"


def test_protocol_without_handler_is_unreachable(
    network: Callable[..., Node], actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]]
) -> None:
    from tests.network.conftest import Echo

    a = network(handlers={PROTOCOL_CAPS: actors(Echo)})
    b = network()
    dialed(b, a)
    answer = request(b, a, b"job?", protocol=PROTOCOL_JOB)
    assert isinstance(answer, PeerFailure)
    assert answer.reason == "unreachable"


def test_slow_answer_is_a_timeout(network: Callable[..., Node]) -> None:
    a, b = network(), network()
    dialed(b, a)
    answer = request(b, a, b"sleep:1.5", timeout_ms=300)
    assert isinstance(answer, PeerFailure)
    assert answer.reason == "timeout"


def test_handler_that_raises_gives_an_error_and_the_host_keeps_serving(
    network: Callable[..., Node],
) -> None:
    from plasm.protocol.messages import Error, decode_message

    a, b = network(), network()
    dialed(b, a)
    answer = request(b, a, b"raise")
    assert isinstance(answer, PeerResponse)
    error = decode_message(answer.payload, max_size=2**16)
    assert isinstance(error, Error)
    assert error.code == "internal"
    assert request(b, a, b"next").payload == f"{b.peer_id}|next".encode()


def test_ping_measures_a_round_trip(network: Callable[..., Node]) -> None:
    a, b = network(), network()
    dialed(b, a)
    pong = ask(b.ref, Ping(a.peer_id), timeout=15)
    assert isinstance(pong, Pong)
    assert pong.peer_id == a.peer_id
    assert pong.rtt_us > 0
