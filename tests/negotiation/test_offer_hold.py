"""An accepted offer holds its slot for `offer_hold_ms`; a peer whose offers lapse unused
is declined `rate_limited` for a while that grows with each lapse."""

from __future__ import annotations

import dataclasses
import os

from plasm.protocol.negotiation import (
    MAX_PENALTY_MS,
    STRIKE_MEMORY_MS,
    ExecutorPolicy,
    ExecutorState,
    evaluate_offer,
    hold_ms,
)
from plasm.runtime.job import Limits
from tests.negotiation.peers import T0
from tests.negotiation.test_executor_policy import ALICE, BOB, offer_and_request

HOLD = 2_000
POLICY = ExecutorPolicy(max_limits=Limits(), slots=2, max_jobs_per_peer=4, offer_hold_ms=HOLD)


def offer(peer: str, now: int, state: ExecutorState) -> str | None:
    accepted, _ = offer_and_request()
    fresh = dataclasses.replace(accepted, job_id=os.urandom(16).hex())
    response = evaluate_offer(fresh, peer, now, POLICY, state)
    return None if response.accepted else response.reason


def squat(state: ExecutorState, now: int) -> None:
    assert [offer(ALICE, now, state), offer(ALICE, now, state)] == [None, None]


def test_held_offers_count_against_the_slots_and_the_peers_cap() -> None:
    state = ExecutorState()
    squat(state, T0)
    assert offer(BOB, T0 + HOLD - 1, state) == "busy"
    assert state.reserved_by(ALICE) == 2


def test_the_slots_come_free_when_the_hold_passes() -> None:
    state = ExecutorState()
    squat(state, T0)
    assert offer(BOB, T0 + HOLD, state) is None


def test_a_peer_whose_offers_lapsed_is_rate_limited_and_others_are_not() -> None:
    state = ExecutorState()
    squat(state, T0)
    assert offer(BOB, T0 + HOLD, state) is None
    assert offer(ALICE, T0 + HOLD + 1, state) == "rate_limited"


def test_the_penalty_grows_with_every_lapsed_offer() -> None:
    state = ExecutorState()
    squat(state, T0)
    state.expire(T0 + HOLD, HOLD)
    first = state.strikes[ALICE].until_ms - (T0 + HOLD)
    later = state.strikes[ALICE].until_ms
    squat(state, later)
    state.expire(later + HOLD, HOLD)
    second = state.strikes[ALICE].until_ms - (later + HOLD)
    assert (first, second) == (2 * HOLD, 8 * HOLD)  # two strikes, then four
    assert offer(ALICE, later + HOLD + second - 1, state) == "rate_limited"
    assert offer(ALICE, later + HOLD + second, state) is None


def test_the_penalty_is_capped_and_strikes_are_forgotten() -> None:
    state = ExecutorState()
    for _ in range(20):
        now = max(T0, state.strikes[ALICE].until_ms if ALICE in state.strikes else T0)
        squat(state, now)
        state.expire(now + HOLD, HOLD)
    until = state.strikes[ALICE].until_ms
    assert until - (now + HOLD) == MAX_PENALTY_MS
    state.expire(until + STRIKE_MEMORY_MS + 1, HOLD)
    assert ALICE not in state.strikes


def test_an_offer_whose_job_came_earns_no_strike() -> None:
    state = ExecutorState()
    accepted, request = offer_and_request()
    assert evaluate_offer(accepted, ALICE, T0, POLICY, state).accepted
    state.take(ALICE, request, T0 + HOLD - 1, HOLD)
    state.expire(T0 + 10 * HOLD, HOLD)
    assert ALICE not in state.strikes


def test_a_large_upload_is_given_time_to_arrive() -> None:
    accepted, _ = offer_and_request()
    big = dataclasses.replace(accepted, module_size=8 * 2**20, input_size=2**20)
    assert hold_ms(big, POLICY, have_module=False) == HOLD + 9_000
    assert hold_ms(big, POLICY, have_module=True) == HOLD + 1_000  # only the input travels
