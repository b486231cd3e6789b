"""The requester's state machine, driven against sans-IO executor peers (no threads)."""

from __future__ import annotations

import dataclasses

import pytest

from plasm.protocol.messages import JobRequest, JobResponse, JobResult
from plasm.protocol.negotiation import (
    TRANSITIONS,
    ExecutorPolicy,
    Fail,
    LocalProtocolError,
    RemoteJob,
    RemoteProtocolError,
    ReportPeer,
    SendJob,
    SendOffer,
    State,
    Succeed,
)
from plasm.runtime.job import Limits, OutcomeKind
from tests.negotiation.peers import (
    T0,
    ExecutorEndpoint,
    drive,
    key_of,
    make_job,
    peer_id_of,
    signed_result,
)

REQUESTER = peer_id_of(key_of("requester"))
DEADLINE = T0 + 60_000


def machine(**job_args: object) -> RemoteJob:
    return RemoteJob(make_job(REQUESTER, **job_args), DEADLINE)  # type: ignore[arg-type]


def busy_peer(name: str) -> ExecutorEndpoint:
    return ExecutorEndpoint(name, policy=ExecutorPolicy(max_limits=Limits(), slots=0))


def test_the_first_peer_that_accepts_runs_the_job() -> None:
    first, second = ExecutorEndpoint("first"), ExecutorEndpoint("second")
    decision = drive(machine(), [first, second])
    assert isinstance(decision.final, Succeed)
    assert decision.final.executor == first.peer_id
    assert second.requests == []
    assert [(a.peer_id, a.result) for a in decision.final.attempts] == [(first.peer_id, "ran")]
    assert decision.reports == [ReportPeer(first.peer_id, "ran")]


def test_the_verified_result_rebuilds_the_outcome_from_the_receipt() -> None:
    decision = drive(machine(), [ExecutorEndpoint("honest")])
    assert isinstance(decision.final, Succeed)
    outcome = decision.final.executed.outcome
    assert outcome.kind == OutcomeKind.OK
    assert outcome.stdout == b"olleh\n"
    assert outcome.fuel_consumed == 1234


def test_rejections_fall_through_to_the_next_peer_and_are_reported() -> None:
    busy = busy_peer("busy")
    small = ExecutorEndpoint("small", policy=ExecutorPolicy(max_limits=Limits(fuel=10)))
    good = ExecutorEndpoint("good")
    decision = drive(machine(), [busy, small, good])
    assert isinstance(decision.final, Succeed)
    assert decision.final.executor == good.peer_id
    assert [a.result for a in decision.final.attempts] == ["busy", "limits_exceeded", "ran"]


def test_when_every_peer_rejects_the_job_fails_with_each_reason() -> None:
    busy = busy_peer("busy")
    closed = ExecutorEndpoint(
        "closed", policy=ExecutorPolicy(max_limits=Limits(), allow=frozenset())
    )
    decision = drive(machine(), [busy, closed])
    assert isinstance(decision.final, Fail)
    assert decision.final.code == "no_executor"
    assert f"{busy.peer_id}: busy" in decision.final.message
    assert f"{closed.peer_id}: not_allowed" in decision.final.message
    assert [a.result for a in decision.final.attempts] == ["busy", "not_allowed"]


def test_no_candidates_fails_saying_no_fitting_peer_is_known() -> None:
    actions = machine().start([], T0)
    assert len(actions) == 1 and isinstance(actions[0], Fail)
    assert actions[0].code == "no_executor"
    assert "no peer that fits" in actions[0].message


def test_a_receipt_signed_by_another_key_is_rejected_and_the_next_peer_runs_the_job() -> None:
    impostor = key_of("impostor")

    def forge(request: JobRequest, honest: JobResult) -> JobResult:
        return signed_result(request, REQUESTER, impostor)

    liar, honest = ExecutorEndpoint("liar", tamper=forge), ExecutorEndpoint("honest")
    decision = drive(machine(), [liar, honest])
    assert isinstance(decision.final, Succeed)
    assert decision.final.executor == honest.peer_id
    assert decision.final.attempts[0].result == "receipt_executor_mismatch"
    assert ReportPeer(liar.peer_id, "receipt_rejected") in decision.reports


def test_altered_stdout_is_rejected_as_a_hash_mismatch() -> None:
    def alter(request: JobRequest, honest: JobResult) -> JobResult:
        return dataclasses.replace(honest, stdout=b"something else\n")

    liar, honest = ExecutorEndpoint("liar", tamper=alter), ExecutorEndpoint("honest")
    decision = drive(machine(), [liar, honest])
    assert isinstance(decision.final, Succeed)
    assert decision.final.attempts[0].result == "receipt_hash_mismatch"


def test_a_receipt_for_a_smaller_fuel_limit_is_rejected() -> None:
    def cheat(request: JobRequest, honest: JobResult) -> JobResult:
        cheaper = dataclasses.replace(request, limits=Limits(fuel=5))
        return signed_result(cheaper, REQUESTER, key_of("cheat"))

    decision = drive(machine(), [ExecutorEndpoint("cheat", tamper=cheat)])
    assert isinstance(decision.final, Fail)
    assert decision.final.attempts[0].result == "receipt_limits_mismatch"


def test_a_peer_that_fails_mid_job_is_counted_and_the_next_peer_runs_it() -> None:
    job = machine()
    vanishing, good = ExecutorEndpoint("vanishing"), ExecutorEndpoint("good")
    actions = job.start([vanishing.peer_id, good.peer_id], T0)
    offer = actions[0]
    assert isinstance(offer, SendOffer)
    accept = vanishing.answer(REQUESTER, offer.offer, T0)
    request = job.on_answer(offer.tag, vanishing.peer_id, accept, T0)[0]
    assert isinstance(request, SendJob)
    after = job.on_failure(request.tag, vanishing.peer_id, "reset", "stream reset", T0)
    assert after[0] == ReportPeer(vanishing.peer_id, "failed")
    assert isinstance(after[1], SendOffer) and after[1].peer_id == good.peer_id
    assert job.attempts[0].result == "reset"


def test_the_deadline_fails_the_job_with_a_clear_reason() -> None:
    job = machine()
    slow = ExecutorEndpoint("slow")
    job.start([slow.peer_id], T0)
    actions = job.on_deadline(DEADLINE)
    assert len(actions) == 1 and isinstance(actions[0], Fail)
    assert actions[0].code == "deadline_exceeded"
    assert "deadline passed" in actions[0].message
    assert [a.result for a in actions[0].attempts] == ["deadline"]
    assert job.state == State.FAILED


def test_no_offer_is_sent_once_the_deadline_has_passed() -> None:
    job = machine()
    actions = job.start([ExecutorEndpoint("late").peer_id], DEADLINE + 1)
    assert isinstance(actions[0], Fail) and actions[0].code == "deadline_exceeded"


def test_the_module_travels_only_when_the_executor_asks_for_it() -> None:
    lacking, holding = ExecutorEndpoint("lacking"), ExecutorEndpoint("holding", has_module=True)
    drive(machine(), [lacking])
    drive(machine(), [holding])
    assert lacking.requests[0].module is not None
    assert holding.requests[0].module is None


def test_offers_announce_sizes_but_carry_no_module_or_input() -> None:
    job = machine(stdin=b"12345")
    offer = job.start([ExecutorEndpoint("p").peer_id], T0)[0]
    assert isinstance(offer, SendOffer)
    assert offer.offer.module_size == len(job.module)
    assert offer.offer.input_size == 5 + 1 + 2  # stdin, args ("a"), env ("K" = "v")
    assert offer.offer.nonce == job.job.nonce


def test_an_answer_to_an_earlier_request_is_ignored() -> None:
    job = machine()
    first, second = busy_peer("first"), ExecutorEndpoint("second")
    offer = job.start([first.peer_id, second.peer_id], T0)[0]
    assert isinstance(offer, SendOffer)
    job.on_answer(offer.tag, first.peer_id, first.answer(REQUESTER, offer.offer, T0), T0)
    late = JobResponse(job_id=job.job.job_id, accepted=True, reason=None, need_module=False)
    assert job.on_answer(offer.tag, first.peer_id, late, T0) == []
    assert job.state == State.OFFERING


def test_an_answer_from_a_peer_that_was_not_asked_is_a_remote_protocol_error() -> None:
    job = machine()
    offer = job.start([ExecutorEndpoint("asked").peer_id], T0)[0]
    assert isinstance(offer, SendOffer)
    reply = JobResponse(job_id=job.job.job_id, accepted=True, reason=None, need_module=False)
    with pytest.raises(RemoteProtocolError, match="came from"):
        job.on_answer(offer.tag, ExecutorEndpoint("stranger").peer_id, reply, T0)


def test_a_result_answering_an_offer_counts_as_a_malformed_answer() -> None:
    job = machine()
    peer = ExecutorEndpoint("confused")
    offer = job.start([peer.peer_id], T0)[0]
    assert isinstance(offer, SendOffer)
    nonsense = JobResult(job_id=job.job.job_id, envelope=b"", stdout=b"", stderr=b"")
    actions = job.on_answer(offer.tag, peer.peer_id, nonsense, T0)
    assert isinstance(actions[-1], Fail)
    assert job.attempts[0].result == "malformed"


def test_an_answer_after_the_job_ended_names_the_state_and_event() -> None:
    job = machine()
    peer = ExecutorEndpoint("p")
    decision = drive(job, [peer])
    assert isinstance(decision.final, Succeed)
    last = decision.sent[-1]
    with pytest.raises(RemoteProtocolError, match=r"PeerFailed.*DONE"):
        job.on_failure(last.tag, peer.peer_id, "reset", "late", T0)


def test_a_deadline_after_the_job_ended_is_a_local_protocol_error() -> None:
    job = machine()
    drive(job, [ExecutorEndpoint("p")])
    with pytest.raises(LocalProtocolError, match=r"DeadlinePassed.*DONE"):
        job.on_deadline(DEADLINE)


def test_starting_twice_is_a_local_protocol_error() -> None:
    job = machine()
    job.start([], T0)
    with pytest.raises(LocalProtocolError, match="already started"):
        job.start([], T0)


def test_final_states_have_no_transitions() -> None:
    assert TRANSITIONS[State.DONE] == {} and TRANSITIONS[State.FAILED] == {}
