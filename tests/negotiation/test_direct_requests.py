"""Direct job requests: a peer that holds the module gets the JobRequest without an offer."""

from __future__ import annotations

import dataclasses

import pytest

from plasm.protocol.messages import Error, JobOffer, JobRequest, Message
from plasm.protocol.negotiation import (
    ExecutorPolicy,
    ExecutorState,
    OfferMismatchError,
    RemoteJob,
    SendJob,
    SendOffer,
    Succeed,
    admit_direct,
    evaluate_offer,
    job_input_size,
)
from plasm.protocol.p2p_messages import PROTOCOL_JOB, PROTOCOL_NEGOTIATE, Placement
from plasm.runtime.job import Limits
from tests.negotiation.conftest import MakeNode
from tests.negotiation.peers import (
    MODULE,
    T0,
    ExecutorEndpoint,
    drive,
    key_of,
    make_job,
    peer_id_of,
    signed_result,
)
from tests.negotiation.test_remote_jobs import run_remote

REQUESTER = peer_id_of(key_of("requester"))
DEADLINE = T0 + 60_000
OPEN = ExecutorPolicy(max_limits=Limits(), slots=4, max_jobs_per_peer=4)


@dataclasses.dataclass
class DirectEndpoint(ExecutorEndpoint):
    """An executor that also admits job requests without an offer, as the negotiator does.

    `trusts`: it took an offer of this module from the requester before.
    """

    trusts: bool = True

    def answer(self, requester: str, message: Message, now_ms: int) -> Message:
        if isinstance(message, JobRequest) and message.module is None:
            try:
                self.state.take(requester, message, now_ms)
            except OfferMismatchError:
                if not self.has_module:
                    return Error(code="no_offer", message="offer it first")
                self.requests.append(message)
                if self.trusts:
                    self.state.remember(requester, message.module_sha256)
                refused = admit_direct(
                    message, requester, len(MODULE), now_ms, self.policy, self.state
                )
                if refused is not None:
                    return Error(code=refused, message="refused")
                self.state.settle(requester, message.job_id)
                return signed_result(message, requester, self.key)
            self.state.settle(requester, message.job_id)
            self.requests.append(message)
            return signed_result(message, requester, self.key)
        return super().answer(requester, message, now_ms)


def warm_machine(*peers: ExecutorEndpoint) -> RemoteJob:
    job = make_job(REQUESTER)
    return RemoteJob(job, DEADLINE, warm=frozenset(p.peer_id for p in peers))


def direct_request() -> JobRequest:
    job = make_job(REQUESTER)
    return JobRequest(job.job_id, None, job.module_sha256, job.job_input, job.limits, job.nonce)


def known_state() -> ExecutorState:
    """An executor that took an offer of the module from REQUESTER before."""
    state = ExecutorState()
    state.remember(REQUESTER, direct_request().module_sha256)
    return state


# --- requester --------------------------------------------------------------------------


def test_a_warm_peer_is_sent_the_job_without_an_offer() -> None:
    peer = DirectEndpoint("warm", has_module=True)
    decision = drive(warm_machine(peer), [peer])
    assert isinstance(decision.final, Succeed)
    assert decision.final.executor == peer.peer_id
    assert [type(s) for s in decision.sent] == [SendJob]
    assert isinstance(decision.sent[0], SendJob) and decision.sent[0].request.module is None


def test_a_warm_peer_that_wants_an_offer_is_offered_the_job_next() -> None:
    peer = DirectEndpoint("forgot", has_module=False)
    decision = drive(warm_machine(peer), [peer])
    assert isinstance(decision.final, Succeed)
    assert [type(s) for s in decision.sent] == [SendJob, SendOffer, SendJob]
    assert {s.peer_id for s in decision.sent} == {peer.peer_id}
    last = decision.sent[-1]
    assert isinstance(last, SendJob) and last.request.module == MODULE
    assert [a.result for a in decision.final.attempts] == ["ran"]


def test_a_warm_peer_that_refuses_as_busy_falls_through_to_the_next_peer() -> None:
    busy = DirectEndpoint(
        "busy", has_module=True, policy=ExecutorPolicy(max_limits=Limits(), slots=0)
    )
    other = ExecutorEndpoint("other")
    decision = drive(warm_machine(busy), [busy, other])
    assert isinstance(decision.final, Succeed)
    assert decision.final.executor == other.peer_id
    assert [a.result for a in decision.final.attempts] == ["busy", "ran"]


def test_a_warm_peer_that_never_took_an_offer_from_us_is_offered_the_job_next() -> None:
    peer = DirectEndpoint("stranger", has_module=True, trusts=False)
    decision = drive(warm_machine(peer), [peer])
    assert isinstance(decision.final, Succeed)
    assert [type(s) for s in decision.sent] == [SendJob, SendOffer, SendJob]


def test_no_offer_after_an_accepted_offer_is_a_rejection_not_a_retry() -> None:
    lapsed = ExecutorPolicy(max_limits=Limits(), offer_hold_ms=0)  # offers expire at once
    expired = ExecutorEndpoint("expired", policy=lapsed)
    other = ExecutorEndpoint("other")
    decision = drive(RemoteJob(make_job(REQUESTER), DEADLINE), [expired, other])
    assert isinstance(decision.final, Succeed)
    assert [a.result for a in decision.final.attempts] == ["no_offer", "ran"]


# --- executor ---------------------------------------------------------------------------


def test_a_direct_request_is_admitted_and_holds_a_slot_until_settled() -> None:
    state, policy = known_state(), dataclasses.replace(OPEN, slots=1)
    first, second = direct_request(), direct_request()
    assert admit_direct(first, REQUESTER, len(MODULE), T0, policy, state) is None
    assert admit_direct(second, REQUESTER, len(MODULE), T0, policy, state) == "busy"
    assert state.settle(REQUESTER, first.job_id)
    assert admit_direct(second, REQUESTER, len(MODULE), T0, policy, state) is None


def test_a_direct_request_spends_a_rate_limit_token_like_an_offer() -> None:
    state, policy = known_state(), dataclasses.replace(OPEN, rate_limit_per_minute=1)
    assert admit_direct(direct_request(), REQUESTER, len(MODULE), T0, policy, state) is None
    refused = admit_direct(direct_request(), REQUESTER, len(MODULE), T0 + 1, policy, state)
    assert refused == "rate_limited"


def test_a_direct_request_repeating_a_running_job_is_refused() -> None:
    state, request = known_state(), direct_request()
    assert admit_direct(request, REQUESTER, len(MODULE), T0, OPEN, state) is None
    assert admit_direct(request, REQUESTER, len(MODULE), T0, OPEN, state) == "offer_mismatch"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (dataclasses.replace(OPEN, deny=frozenset({REQUESTER})), "not_allowed"),
        (dataclasses.replace(OPEN, max_limits=Limits(fuel=10)), "limits_exceeded"),
        (dataclasses.replace(OPEN, max_module_bytes=len(MODULE) - 1), "module_too_large"),
    ],
)
def test_a_direct_request_is_judged_as_its_offer_would_be(
    policy: ExecutorPolicy, expected: str
) -> None:
    request = direct_request()
    offer = JobOffer(
        request.job_id, request.module_sha256, len(MODULE), request.limits,
        job_input_size(request.job_input), DEADLINE, request.nonce,
    )
    assert evaluate_offer(offer, REQUESTER, T0, policy, ExecutorState()).reason == expected
    assert admit_direct(request, REQUESTER, len(MODULE), T0, policy, known_state()) == expected


def test_a_direct_request_from_a_peer_never_offered_this_module_is_no_offer() -> None:
    state = ExecutorState()
    state.remember(peer_id_of(key_of("someone else")), direct_request().module_sha256)
    assert admit_direct(direct_request(), REQUESTER, len(MODULE), T0, OPEN, state) == "no_offer"
    assert not state.running


def test_taking_an_offered_request_makes_its_peer_and_module_known() -> None:
    state, request = ExecutorState(), direct_request()
    offer = JobOffer(
        request.job_id, request.module_sha256, len(MODULE), request.limits,
        job_input_size(request.job_input), DEADLINE, request.nonce,
    )
    assert evaluate_offer(offer, REQUESTER, T0, OPEN, state).accepted
    state.take(REQUESTER, request, T0)
    assert (REQUESTER, request.module_sha256) in state.known


# --- through the actors -----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_the_next_job_of_a_module_goes_to_the_peer_that_ran_it_without_an_offer(
    make_node: MakeNode,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    on_bob = Placement(mode="peer", peer_id=bob.peer_id)
    assert run_remote(alice, on_bob).error_code is None
    second = run_remote(alice, on_bob)
    assert second.error_code is None, second.error_message
    assert second.executor == bob.peer_id
    assert len(alice.wire.requests_to(bob.peer_id, PROTOCOL_NEGOTIATE)) == 1
    requests = alice.wire.requests_to(bob.peer_id, PROTOCOL_JOB)
    assert [isinstance(r, JobRequest) and r.module is not None for r in requests] == [True, False]
