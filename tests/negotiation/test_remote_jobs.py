"""Remote jobs through real negotiator and discovery actors on in-process nodes."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from plasm.actors._future import Future
from plasm.actors._mailbox import JobTicket, ask, tell
from plasm.actors.ingress import new_job_id
from plasm.actors.messages import (
    InboundRequest,
    PeerEvent,
    PeerList,
    PeerResponse,
    RemoteJobDone,
    RunRemote,
)
from plasm.protocol.capabilities import sign_capabilities
from plasm.protocol.messages import (
    Error,
    ExecuteJob,
    JobOffer,
    JobRequest,
    JobResponse,
    JobResult,
    Message,
    ModuleData,
    ModuleRequest,
    decode_message,
    encode_message,
)
from plasm.protocol.negotiation import ExecutorPolicy
from plasm.protocol.p2p_messages import (
    PROTOCOL_CAPS,
    PROTOCOL_JOB,
    PROTOCOL_MODULE,
    PROTOCOL_NEGOTIATE,
    Placement,
    SignedCapabilities,
)
from plasm.protocol.receipt import verify_envelope
from plasm.runtime.job import JobInput, Limits, OutcomeKind
from tests.conftest import example
from tests.negotiation.cluster import Responder, TestNode, capabilities
from tests.negotiation.conftest import WAIT_S, MakeNode, record_of, wait_for
from tests.negotiation.peers import key_of, peer_id_of, signed_result

HELLO = example("hello").read_bytes()
HELLO_SHA256 = hashlib.sha256(HELLO).hexdigest()
ANY = Placement(mode="any", exclude_self=True)


def hello_job(requester: TestNode, stdin: bytes = b"Hello, World") -> ExecuteJob:
    return ExecuteJob(
        job_id=new_job_id(),
        module=HELLO,
        module_sha256=HELLO_SHA256,
        job_input=JobInput(stdin=stdin, module_name="hello.wasm"),
        limits=Limits(),
        requester=requester.peer_id,
        nonce=os.urandom(16),
    )


def run_remote_future(
    requester: TestNode,
    placement: Placement,
    deadline_s: float = 20.0,
    job: ExecuteJob | None = None,
) -> pykka.Future[Any]:
    """Tell the requester's negotiator `RunRemote`; the future of the job's `done`."""
    done: pykka.Future[Any] = Future()
    deadline_ms = time.time_ns() // 1_000_000 + int(deadline_s * 1000)
    run = RunRemote(job=job or hello_job(requester), placement=placement, deadline_ms=deadline_ms)
    tell(
        requester.negotiator,
        run,
        job=JobTicket(run.job.job_id, done),
        reply_to=requester.ingress,
    )
    return done


def run_remote(
    requester: TestNode,
    placement: Placement,
    deadline_s: float = 20.0,
    job: ExecuteJob | None = None,
) -> RemoteJobDone:
    finished = run_remote_future(requester, placement, deadline_s, job).get(timeout=WAIT_S)
    assert isinstance(finished, RemoteJobDone)
    return finished


def connect(node: TestNode, *others: TestNode | str) -> PeerList:
    ids = [o if isinstance(o, str) else o.peer_id for o in others]
    for peer_id in ids:
        tell(node.discovery, PeerEvent(kind="connected", peer_id=peer_id))
    return wait_for(node, lambda peers: all(record_of(peers, p) is not None for p in ids))


def liar(board_node: TestNode, name: str, forge: str) -> str:
    """A peer with a valid record that accepts every job and answers a forged result."""
    key = key_of(name)
    record = sign_capabilities(capabilities(key), key)

    def job(request: Message) -> Message:
        assert isinstance(request, JobRequest)
        if forge == "other_key":
            return signed_result(request, board_node.peer_id, key_of("someone else"))
        honest = signed_result(request, board_node.peer_id, key)
        return dataclasses.replace(honest, stdout=b"not what ran\n")

    def accept(offer: Message) -> Message:
        assert isinstance(offer, JobOffer)
        return JobResponse(job_id=offer.job_id, accepted=True, reason=None, need_module=False)

    ref = Responder.start(
        {
            PROTOCOL_CAPS: lambda _: SignedCapabilities(record=record),
            PROTOCOL_NEGOTIATE: accept,
            PROTOCOL_JOB: job,
        }
    )
    peer_id = peer_id_of(key)
    board_node.board.routes[peer_id] = {
        PROTOCOL_CAPS: ref,
        PROTOCOL_NEGOTIATE: ref,
        PROTOCOL_JOB: ref,
    }
    board_node.board.latency_us[peer_id] = 1  # the fastest peer: tried first
    _liars.append(ref)
    return peer_id


_liars: list[pykka.ActorRef[Any]] = []


@pytest.fixture(autouse=True)
def _stop_liars() -> Iterator[None]:
    yield
    while _liars:
        _liars.pop().stop()


@pytest.mark.timeout(60)
def test_a_job_placed_on_a_peer_runs_there_and_its_receipt_names_that_peer(
    make_node: MakeNode,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    done = run_remote(alice, Placement(mode="peer", peer_id=bob.peer_id))
    assert done.error_code is None, done.error_message
    assert done.executor == bob.peer_id
    assert done.executed is not None and done.envelope is not None
    assert done.executed.outcome.kind == OutcomeKind.OK
    assert done.executed.outcome.stdout == b"dlroW ,olleH\n"
    receipt = verify_envelope(done.envelope, expected_executor=bob.peer_id)
    assert receipt.requester == alice.peer_id


@pytest.mark.timeout(60)
def test_module_bytes_are_sent_only_to_a_peer_that_lacks_them(make_node: MakeNode) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    on_bob = Placement(mode="peer", peer_id=bob.peer_id)
    assert run_remote(alice, on_bob).error_code is None
    assert run_remote(alice, on_bob).error_code is None
    requests = alice.wire.requests_to(bob.peer_id, PROTOCOL_JOB)
    assert [isinstance(r, JobRequest) and r.module is not None for r in requests] == [True, False]


@pytest.mark.timeout(60)
def test_discovery_finds_a_peer_by_capability_and_the_job_runs_there(make_node: MakeNode) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    connect(alice, bob)
    done = run_remote(alice, ANY)
    assert done.executor == bob.peer_id
    peers = wait_for(alice, lambda p: any(i.jobs_run == 1 for i in p.peers))
    assert [(p.peer_id, p.jobs_run) for p in peers.peers] == [(bob.peer_id, 1)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("forge", ["other_key", "altered_stdout"])
def test_a_forged_receipt_is_rejected_counted_and_the_job_runs_on_the_next_peer(
    make_node: MakeNode, forge: str
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    lying = liar(alice, "liar", forge)
    connect(alice, bob, lying)
    done = run_remote(alice, ANY)
    assert done.executor == bob.peer_id, done.attempts
    assert done.attempts[0].peer_id == lying
    assert done.attempts[0].result.startswith("receipt_")
    peers = wait_for(alice, lambda p: any(i.receipts_rejected for i in p.peers))
    assert {p.peer_id: p.receipts_rejected for p in peers.peers} == {bob.peer_id: 0, lying: 1}


@pytest.mark.timeout(60)
def test_a_peer_that_fails_mid_job_is_skipped_for_the_next(make_node: MakeNode) -> None:
    alice, bob, carol = make_node("alice"), make_node("bob"), make_node("carol")
    alice.board.latency_us[bob.peer_id] = 10  # bob first
    connect(alice, bob, carol)
    alice.wire.failures[(bob.peer_id, PROTOCOL_JOB)] = "reset"
    done = run_remote(alice, ANY)
    assert done.executor == carol.peer_id
    assert [(a.peer_id, a.result) for a in done.attempts] == [
        (bob.peer_id, "reset"),
        (carol.peer_id, "ran"),
    ]


@pytest.mark.timeout(60)
def test_rejection_reasons_reach_the_requester(make_node: MakeNode) -> None:
    alice = make_node("alice")
    bob = make_node("bob", ExecutorPolicy(max_limits=Limits(), slots=0))
    carol = make_node("carol", ExecutorPolicy(max_limits=Limits(), deny=frozenset({alice.peer_id})))
    connect(alice, bob, carol)
    done = run_remote(alice, ANY)
    assert done.error_code == "no_executor"
    assert sorted(a.result for a in done.attempts) == ["busy", "not_allowed"]
    assert "busy" in (done.error_message or "") and "not_allowed" in (done.error_message or "")


@pytest.mark.timeout(60)
def test_a_peer_that_never_answers_fails_the_job_at_its_deadline(make_node: MakeNode) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    alice.wire.silent.add((bob.peer_id, PROTOCOL_NEGOTIATE))
    done = run_remote(alice, Placement(mode="peer", peer_id=bob.peer_id), deadline_s=0.5)
    assert done.error_code == "deadline_exceeded"
    assert [(a.peer_id, a.result) for a in done.attempts] == [(bob.peer_id, "deadline")]


@pytest.mark.timeout(60)
def test_no_fitting_peer_fails_with_no_executor(make_node: MakeNode) -> None:
    alice = make_node("alice")
    done = run_remote(alice, ANY)
    assert done.error_code == "no_executor"
    assert done.attempts == ()


def inbound(node: TestNode, sender: str, protocol: str, message: Message) -> Message:
    answer = ask(
        node.negotiator, InboundRequest(sender, protocol, encode_message(message)), timeout=WAIT_S
    )
    if isinstance(answer, pykka.Future):
        answer = answer.get(timeout=WAIT_S)
    assert isinstance(answer, PeerResponse)
    return decode_message(answer.payload)


@pytest.mark.timeout(60)
def test_a_job_request_without_an_accepted_offer_is_refused(make_node: MakeNode) -> None:
    bob = make_node("bob")
    job = hello_job(bob)
    request = JobRequest(job.job_id, HELLO, HELLO_SHA256, job.job_input, job.limits, job.nonce)
    answer = inbound(bob, peer_id_of(key_of("stranger")), PROTOCOL_JOB, request)
    assert isinstance(answer, Error) and answer.code == "no_offer"


@pytest.mark.timeout(60)
def test_the_executor_side_runs_an_offered_job_and_answers_a_signed_result(
    make_node: MakeNode,
) -> None:
    bob = make_node("bob")
    alice_id = peer_id_of(key_of("alice"))
    job = hello_job(bob)
    deadline_ms = time.time_ns() // 1_000_000 + 20_000
    offer = JobOffer(job.job_id, HELLO_SHA256, len(HELLO), job.limits, 12, deadline_ms, job.nonce)
    response = inbound(bob, alice_id, PROTOCOL_NEGOTIATE, offer)
    assert isinstance(response, JobResponse) and response.accepted and response.need_module
    request = JobRequest(job.job_id, HELLO, HELLO_SHA256, job.job_input, job.limits, job.nonce)
    result = inbound(bob, alice_id, PROTOCOL_JOB, request)
    assert isinstance(result, JobResult)
    receipt = verify_envelope(
        result.envelope,
        expected_executor=bob.peer_id,
        expected_nonce=job.nonce,
        stdout=result.stdout,
    )
    assert receipt.requester == alice_id and receipt.job_id == job.job_id


@pytest.mark.timeout(60)
def test_module_requests_are_answered_with_stored_bytes_only(make_node: MakeNode) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    assert run_remote(alice, Placement(mode="peer", peer_id=bob.peer_id)).error_code is None
    stored = inbound(bob, alice.peer_id, PROTOCOL_MODULE, ModuleRequest(HELLO_SHA256))
    assert isinstance(stored, ModuleData) and stored.data == HELLO
    missing = inbound(bob, alice.peer_id, PROTOCOL_MODULE, ModuleRequest("0" * 64))
    assert isinstance(missing, Error) and missing.code == "module_unavailable"
