"""Discovery: verified records only, candidates filtered and ranked, own record published."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from plasm.actors._mailbox import ask, tell
from plasm.actors.discovery import PROVIDER_KEY, rank_candidates
from plasm.actors.messages import (
    Candidates,
    FindCandidates,
    InboundRequest,
    PeerEvent,
    PeerInfo,
    PeerResponse,
    Provide,
    PutRecord,
    RecordPeerOutcome,
)
from plasm.protocol.capabilities import sign_capabilities, verify_capabilities
from plasm.protocol.messages import Message, decode_message, encode_message
from plasm.protocol.p2p_messages import (
    PROTOCOL_CAPS,
    CapabilitiesRequest,
    Requirements,
    SignedCapabilities,
)
from plasm.runtime.job import Limits
from tests.negotiation.cluster import Responder, TestNode, capabilities
from tests.negotiation.conftest import WAIT_S, MakeNode, peers_of, record_of, wait_for
from tests.negotiation.peers import key_of, peer_id_of

NOW = time.time_ns() // 1_000_000
_responders: list[pykka.ActorRef[Any]] = []


@pytest.fixture(autouse=True)
def _stop_responders() -> Iterator[None]:
    yield
    while _responders:
        _responders.pop().stop()


def row(name: str, latency_us: int | None = 100, **caps: Any) -> PeerInfo:
    key = key_of(name)
    return PeerInfo(
        peer_id=peer_id_of(key),
        addresses=(),
        capabilities=capabilities(key, **caps),
        last_seen_ms=NOW,
        latency_us=latency_us,
        jobs_run=0,
        receipts_rejected=0,
        failures=0,
        connected=True,
    )


def test_candidates_are_filtered_by_runtime_limits_memory_arch_and_expiry() -> None:
    fits = row("fits")
    peers = [
        fits,
        row("no_runtime", runtimes=()),
        row("small_fuel", max_limits=Limits(fuel=10)),
        row("small_machine", memory_bytes=2**20),
        row("arm", arch="aarch64"),
        row("expired", expires_at_ms=NOW - 1),
    ]
    wanted = Requirements(min_fuel=10**6, min_memory_bytes=2**24, arch="x86_64")
    assert rank_candidates(peers, wanted, (), NOW, 8) == (fits.peer_id,)


def test_candidates_rank_trust_then_free_slots_then_latency() -> None:
    fast = row("fast", latency_us=10)
    slow = row("slow", latency_us=900)
    full = row("full", latency_us=1, free_slots=0)
    liar = dataclasses.replace(row("liar", latency_us=1), receipts_rejected=1)
    ranked = rank_candidates([liar, full, slow, fast], Requirements(), (), NOW, 8)
    assert ranked == (fast.peer_id, slow.peer_id, full.peer_id, liar.peer_id)


def test_excluded_peers_and_the_limit_are_honoured() -> None:
    a, b, c = row("a", latency_us=1), row("b", latency_us=2), row("c", latency_us=3)
    assert rank_candidates([a, b, c], Requirements(), (a.peer_id,), NOW, 1) == (b.peer_id,)


def peer_answering(node: TestNode, name: str, answer: Message) -> str:
    ref = Responder.start({PROTOCOL_CAPS: lambda _: answer})
    _responders.append(ref)
    peer_id = peer_id_of(key_of(name))
    node.board.routes[peer_id] = {PROTOCOL_CAPS: ref}
    return peer_id


@pytest.mark.timeout(60)
@pytest.mark.parametrize("forgery", ["signed_by_another", "record_of_another_peer", "expired"])
def test_a_forged_capability_record_is_refused(make_node: MakeNode, forgery: str) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    mallory = key_of("mallory")
    if forgery == "signed_by_another":
        genuine = sign_capabilities(capabilities(mallory), mallory)
        record = genuine[:-40] + bytes(40)  # the key and signature no longer match the body
    elif forgery == "record_of_another_peer":
        record = sign_capabilities(capabilities(key_of("someone")), key_of("someone"))
    else:
        record = sign_capabilities(capabilities(mallory, expires_at_ms=NOW - 1), mallory)
    mallory_id = peer_answering(alice, "mallory", SignedCapabilities(record=record))
    for peer in (mallory_id, bob.peer_id):
        tell(alice.discovery, PeerEvent(kind="connected", peer_id=peer))
    wait_for(alice, lambda p: record_of(p, bob.peer_id) is not None)
    wait_for(alice, lambda p: any(i.peer_id == mallory_id for i in p.peers))
    assert record_of(peers_of(alice), mallory_id) is None
    answer = ask(alice.discovery, FindCandidates(), timeout=WAIT_S)
    assert isinstance(answer, Candidates) and answer.peer_ids == (bob.peer_id,)


@pytest.mark.timeout(60)
def test_a_node_answers_capability_requests_with_its_signed_record_and_addresses(
    make_node: MakeNode,
) -> None:
    bob = make_node("bob")
    request = InboundRequest(
        peer_id_of(key_of("asker")), PROTOCOL_CAPS, encode_message(CapabilitiesRequest())
    )
    deadline = time.monotonic() + WAIT_S
    while True:  # signed at start, re-signed with the addresses once the network runs
        answer = ask(bob.discovery, request, timeout=WAIT_S)
        assert isinstance(answer, PeerResponse)
        signed = decode_message(answer.payload)
        if isinstance(signed, SignedCapabilities):
            caps = verify_capabilities(signed.record, now_ms=time.time_ns() // 1_000_000)
            if caps.addresses:
                break
        assert time.monotonic() < deadline, "no record with addresses"
        time.sleep(0.01)
    assert caps.peer_id == bob.peer_id
    assert caps.runtimes == ("wasi-preview1",)
    assert caps.addresses == (f"/ip4/127.0.0.1/tcp/4001/p2p/{bob.peer_id}",)


@pytest.mark.timeout(60)
def test_a_node_announces_its_runtime_and_record_in_the_dht(make_node: MakeNode) -> None:
    bob = make_node("bob")
    deadline = time.monotonic() + WAIT_S
    while len(bob.wire.announced) < 2:
        assert time.monotonic() < deadline, "nothing was announced"
        time.sleep(0.01)
    provide, put = bob.wire.announced[:2]
    assert provide == Provide(key=PROVIDER_KEY)
    assert isinstance(put, PutRecord) and put.key == f"/plasm/{bob.peer_id}"
    assert verify_capabilities(put.value).peer_id == bob.peer_id


@pytest.mark.timeout(60)
def test_when_no_known_peer_fits_the_dht_providers_are_fetched_and_ranked(
    make_node: MakeNode,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    answer = ask(alice.discovery, FindCandidates(exclude=(alice.peer_id,)), timeout=WAIT_S)
    assert isinstance(answer, Candidates) and answer.peer_ids == (bob.peer_id,)


@pytest.mark.timeout(60)
def test_outcomes_are_counted_per_peer(make_node: MakeNode) -> None:
    alice = make_node("alice")
    other = peer_id_of(key_of("other"))
    for outcome in ("ran", "ran", "receipt_rejected", "failed"):
        tell(alice.discovery, RecordPeerOutcome(other, outcome))
    peers = wait_for(alice, lambda p: any(i.failures for i in p.peers))
    (info,) = peers.peers
    assert (info.jobs_run, info.receipts_rejected, info.failures) == (2, 1, 1)


@pytest.mark.timeout(60)
def test_latency_comes_from_ping_and_disconnects_are_tracked(make_node: MakeNode) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    alice.board.latency_us[bob.peer_id] = 4321
    tell(alice.discovery, PeerEvent(kind="connected", peer_id=bob.peer_id))
    wait_for(alice, lambda p: any(i.latency_us == 4321 and i.connected for i in p.peers))
    tell(alice.discovery, PeerEvent(kind="disconnected", peer_id=bob.peer_id))
    wait_for(alice, lambda p: not p.peers[0].connected)
