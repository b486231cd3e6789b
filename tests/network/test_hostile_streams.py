"""A peer that sends garbage, an oversize length, a stalled half frame, or too many
streams gets an Error frame or a reset, and the node keeps serving the next request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka
import pytest

from plasm.actors._mailbox import PlasmActor, ask, tell
from plasm.actors.messages import Dial, PeerRequest, PeerResponse
from plasm.protocol.framing import FrameDecoder, encode_frame
from plasm.protocol.messages import Error, decode_message
from plasm.protocol.p2p_messages import PROTOCOLS
from tests.network.conftest import (
    Collector,
    Node,
    RawOutcome,
    collected,
    event_kinds,
    raw_exchange,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

READ_DEADLINE_S = 0.5


def error_code(outcome: RawOutcome) -> str | None:
    """The code of the Error frame the node answered, or None if it answered none."""
    frames = FrameDecoder(2**16).feed(outcome.received)
    if not frames:
        return None
    message = decode_message(frames[0], max_size=2**16)
    assert isinstance(message, Error)
    return message.code


def still_serves(node: Node, client: Node) -> bool:
    answer = ask(client.ref, PeerRequest(node.peer_id, PROTOCOLS[0], b"ok?", 5000), timeout=15)
    return isinstance(answer, PeerResponse) and answer.payload.endswith(b"|ok?")


@pytest.fixture
def pair(network: Callable[..., Node]) -> tuple[Node, Node]:
    node = network(read_deadline_s=READ_DEADLINE_S)
    client = network()
    ask(client.ref, Dial(node.address), timeout=15)
    return node, client


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_garbage_gets_an_error_and_the_node_keeps_serving(
    pair: tuple[Node, Node], protocol: str
) -> None:
    node, client = pair
    # a zero length prefix, then junk: not a frame at all (what is inside a well-formed
    # frame is for the handler actor to decode, not the network)
    outcome = raw_exchange(node.address, protocol, b"\x00\x00\x00\x00GET / HTTP/1.1\r\n")
    assert error_code(outcome) == "malformed"
    assert outcome.reset
    assert still_serves(node, client)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oversize_length_prefix_is_refused(pair: tuple[Node, Node], protocol: str) -> None:
    node, client = pair
    outcome = raw_exchange(node.address, protocol, (2**31).to_bytes(4, "big") + b"x" * 100)
    assert error_code(outcome) == "too_large"
    assert outcome.reset
    assert still_serves(node, client)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stalled_half_frame_times_out(pair: tuple[Node, Node], protocol: str) -> None:
    node, client = pair
    half = encode_frame(b"x" * 100, 2**16)[:50]
    outcome = raw_exchange(node.address, protocol, half, stall=READ_DEADLINE_S * 4)
    assert error_code(outcome) == "timeout"
    assert outcome.reset
    assert still_serves(node, client)


def test_two_frames_in_one_request_are_malformed(pair: tuple[Node, Node]) -> None:
    node, client = pair
    data = encode_frame(b"one", 2**16) + encode_frame(b"two", 2**16)
    outcome = raw_exchange(node.address, PROTOCOLS[0], data)
    assert error_code(outcome) == "malformed"
    assert outcome.reset
    assert still_serves(node, client)


def flood(client: Node, node: Node, inbox: pykka.ActorRef[Any], count: int) -> list[Any]:
    """`count` concurrent requests that each hold their stream ~1 s; their answers."""
    for i in range(count):
        request = PeerRequest(node.peer_id, PROTOCOLS[0], b"sleep:1.0", 10_000, str(i))
        tell(client.ref, request, reply_to=inbox)
    wait_for(lambda: len(collected(inbox)) == count, timeout=20, what="every answer")
    return collected(inbox)


def test_streams_over_the_per_peer_limit_are_refused_busy(
    network: Callable[..., Node], actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]]
) -> None:
    node = network(max_streams_per_peer=2)
    client = network()
    ask(client.ref, Dial(node.address), timeout=15)
    answers = flood(client, node, actors(Collector), 3)
    codes: list[str] = [
        str(getattr(decode_message(a.payload, max_size=2**16), "code", None))
        if not a.payload.endswith(b"sleep:1.0")
        else "served"
        for a in answers
    ]
    assert sorted(codes) == ["busy", "served", "served"]


def test_refused_stream_is_reported_as_a_rejected_peer(
    network: Callable[..., Node], actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]]
) -> None:
    events = actors(Collector)
    node = network(max_streams_per_peer=1, events=events)
    client = network()
    ask(client.ref, Dial(node.address), timeout=15)
    flood(client, node, actors(Collector), 2)
    assert "rejected" in event_kinds(collected(events), client.peer_id)
