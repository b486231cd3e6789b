"""The executor's side: which offers it accepts, and which job requests they cover."""

from __future__ import annotations

import dataclasses

import pytest

from plasm.protocol.messages import JobOffer, JobRequest
from plasm.protocol.negotiation import (
    ExecutorPolicy,
    ExecutorState,
    OfferMismatchError,
    evaluate_offer,
    job_input_size,
)
from plasm.runtime.job import Limits
from tests.negotiation.peers import MODULE, MODULE_SHA256, T0, key_of, make_job, peer_id_of

ALICE = peer_id_of(key_of("alice"))
BOB = peer_id_of(key_of("bob"))
OPEN = ExecutorPolicy(max_limits=Limits(), slots=4, max_jobs_per_peer=4)


def offer_and_request(limits: Limits | None = None) -> tuple[JobOffer, JobRequest]:
    job = make_job(ALICE, limits=limits)
    offer = JobOffer(
        job_id=job.job_id,
        module_sha256=MODULE_SHA256,
        module_size=len(MODULE),
        limits=job.limits,
        input_size=job_input_size(job.job_input),
        deadline_ms=T0 + 60_000,
        nonce=job.nonce,
    )
    request = JobRequest(
        job_id=job.job_id,
        module=MODULE,
        module_sha256=MODULE_SHA256,
        job_input=job.job_input,
        limits=job.limits,
        nonce=job.nonce,
    )
    return offer, request


def reason(
    policy: ExecutorPolicy, state: ExecutorState | None = None, **offer_changes: object
) -> str | None:
    offer, _ = offer_and_request()
    offer = dataclasses.replace(offer, **offer_changes)
    return evaluate_offer(offer, ALICE, T0, policy, state or ExecutorState()).reason


def test_an_offer_within_every_limit_is_accepted_and_asks_for_a_missing_module() -> None:
    offer, _ = offer_and_request()
    response = evaluate_offer(offer, ALICE, T0, OPEN, ExecutorState())
    assert response.accepted and response.need_module


def test_an_offer_for_a_module_the_node_holds_does_not_ask_for_it() -> None:
    offer, _ = offer_and_request()
    response = evaluate_offer(offer, ALICE, T0, OPEN, ExecutorState(), have_module=True)
    assert response.accepted and not response.need_module


def test_a_node_with_no_free_slot_rejects_as_busy() -> None:
    state = ExecutorState()
    policy = dataclasses.replace(OPEN, slots=1)
    first, _ = offer_and_request()
    assert evaluate_offer(first, BOB, T0, policy, state).accepted
    assert reason(policy, state) == "busy"


def test_limits_above_the_node_maximum_are_rejected() -> None:
    assert reason(OPEN, limits=Limits(fuel=Limits().fuel + 1)) == "limits_exceeded"


def test_a_node_without_the_runtime_rejects_as_unsupported_runtime() -> None:
    assert reason(dataclasses.replace(OPEN, runtimes=())) == "unsupported_runtime"


def test_a_denied_peer_is_not_allowed() -> None:
    assert reason(dataclasses.replace(OPEN, deny=frozenset({ALICE}))) == "not_allowed"


def test_with_an_allow_list_other_peers_are_not_allowed() -> None:
    assert reason(dataclasses.replace(OPEN, allow=frozenset({BOB}))) == "not_allowed"
    assert reason(dataclasses.replace(OPEN, allow=frozenset({ALICE}))) is None


def test_offers_beyond_the_per_minute_rate_are_rate_limited_until_tokens_refill() -> None:
    policy = dataclasses.replace(OPEN, rate_limit_per_minute=2, slots=100, max_jobs_per_peer=100)
    state = ExecutorState()
    answers = [evaluate_offer(offer_and_request()[0], ALICE, T0, policy, state) for _ in range(3)]
    assert [a.reason for a in answers] == [None, None, "rate_limited"]
    later = evaluate_offer(offer_and_request()[0], ALICE, T0 + 30_000, policy, state)
    assert later.accepted  # one token back after half a minute at 2 per minute


def test_the_rate_limit_is_per_peer() -> None:
    policy = dataclasses.replace(OPEN, rate_limit_per_minute=1)
    state = ExecutorState()
    assert evaluate_offer(offer_and_request()[0], ALICE, T0, policy, state).accepted
    assert evaluate_offer(offer_and_request()[0], BOB, T0, policy, state).accepted


def test_more_concurrent_jobs_than_allowed_per_peer_are_rate_limited() -> None:
    policy = dataclasses.replace(OPEN, max_jobs_per_peer=1)
    state = ExecutorState()
    assert evaluate_offer(offer_and_request()[0], ALICE, T0, policy, state).accepted
    assert reason(policy, state) == "rate_limited"


def test_a_module_above_the_size_cap_is_rejected() -> None:
    policy = dataclasses.replace(OPEN, max_module_bytes=4)
    assert reason(policy) == "module_too_large"


def test_a_job_request_without_an_accepted_offer_is_refused() -> None:
    _, request = offer_and_request()
    with pytest.raises(OfferMismatchError) as caught:
        ExecutorState().take(ALICE, request, T0)
    assert caught.value.code == "no_offer"


def test_a_job_request_from_another_peer_than_the_offer_is_refused() -> None:
    state = ExecutorState()
    offer, request = offer_and_request()
    evaluate_offer(offer, ALICE, T0, OPEN, state)
    with pytest.raises(OfferMismatchError) as caught:
        state.take(BOB, request, T0)
    assert caught.value.code == "no_offer"


def test_an_accepted_offer_expires() -> None:
    state = ExecutorState()
    offer, request = offer_and_request()
    evaluate_offer(offer, ALICE, T0, OPEN, state)
    with pytest.raises(OfferMismatchError):
        state.take(ALICE, request, T0 + OPEN.offer_hold_ms)
    assert state.reserved() == 0  # the slot came back


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": bytes(16)},
        {"limits": Limits(fuel=7)},
        {"module_sha256": "0" * 64, "module": None},
    ],
    ids=["nonce", "limits", "module_hash"],
)
def test_a_job_request_that_differs_from_its_offer_is_refused(change: dict[str, object]) -> None:
    state = ExecutorState()
    offer, request = offer_and_request()
    evaluate_offer(offer, ALICE, T0, OPEN, state)
    with pytest.raises(OfferMismatchError) as caught:
        state.take(ALICE, dataclasses.replace(request, **change), T0)
    assert caught.value.code == "offer_mismatch"


def test_module_bytes_that_do_not_hash_to_the_offer_are_refused() -> None:
    state = ExecutorState()
    offer, request = offer_and_request()
    evaluate_offer(offer, ALICE, T0, OPEN, state)
    forged = MODULE[:-1] + b"\x01"
    with pytest.raises(OfferMismatchError) as caught:
        state.take(ALICE, dataclasses.replace(request, module=forged), T0)
    assert caught.value.code == "module_mismatch"


def test_a_matching_request_runs_and_its_slot_frees_when_it_settles() -> None:
    state = ExecutorState()
    policy = dataclasses.replace(OPEN, slots=1)
    offer, request = offer_and_request()
    evaluate_offer(offer, ALICE, T0, policy, state)
    state.take(ALICE, request, T0)
    assert reason(policy, state) == "busy"
    assert state.settle(ALICE, request.job_id)
    assert reason(policy, state) is None


def test_an_offer_is_used_once() -> None:
    state = ExecutorState()
    offer, request = offer_and_request()
    evaluate_offer(offer, ALICE, T0, OPEN, state)
    state.take(ALICE, request, T0)
    with pytest.raises(OfferMismatchError):
        state.take(ALICE, request, T0)
