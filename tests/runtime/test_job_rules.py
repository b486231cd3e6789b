"""The job layer's one home for limit rules, the outcome of a job never run, and the LRU."""

from __future__ import annotations

import dataclasses

import pytest

from plasm.runtime.job import DEFAULT_MAX_LIMITS, LIMIT_FIELDS, Limits, Outcome, OutcomeKind
from plasm.runtime.lru import BoundedLRU


def test_exceeds_names_the_first_field_above_the_other() -> None:
    asked = Limits(memory_bytes=2 * DEFAULT_MAX_LIMITS.memory_bytes, timeout_ms=10**9)
    assert asked.exceeds(DEFAULT_MAX_LIMITS) == (
        f"limits.memory_bytes = {2 * 2**30} is above this node's maximum {2**30}"
    )
    assert Limits().exceeds(DEFAULT_MAX_LIMITS) is None
    assert DEFAULT_MAX_LIMITS.exceeds(DEFAULT_MAX_LIMITS) is None


def test_json_form_round_trips_and_fills_from_defaults() -> None:
    limits = Limits(fuel=7, memory_bytes=8, timeout_ms=9, max_output_bytes=10,
                    max_output_files_bytes=11, max_output_file_bytes=12, max_output_files=13,
                    max_input_files_bytes=14)
    assert limits.to_json() == {
        "fuel": 7,
        "memory_bytes": 8,
        "timeout_ms": 9,
        "max_output_bytes": 10,
        "max_output_files_bytes": 11,
        "max_output_file_bytes": 12,
        "max_output_files": 13,
        "max_input_files_bytes": 14,
    }
    assert Limits.from_json(limits.to_json()) == limits
    assert Limits.from_json({"fuel": 5}, limits) == dataclasses.replace(limits, fuel=5)
    assert Limits.from_json({}) == Limits()
    assert tuple(limits.to_json()) == LIMIT_FIELDS


def test_from_json_refuses_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown limit 'cpus'"):
        Limits.from_json({"cpus": 2})
    with pytest.raises(ValueError, match=r"limits\.fuel must be an integer"):
        Limits.from_json({"fuel": 0})


def test_not_run_outcome_ran_nothing_at_one_instant() -> None:
    outcome = Outcome.not_run(OutcomeKind.INVALID_MODULE, "module bytes do not match", 1234)
    assert (outcome.kind, outcome.message, outcome.exit_code) == (
        OutcomeKind.INVALID_MODULE,
        "module bytes do not match",
        None,
    )
    assert (outcome.stdout, outcome.stderr, outcome.fuel_consumed, outcome.wall_time_us) == (
        b"",
        b"",
        0,
        0,
    )
    assert not outcome.stdout_truncated and not outcome.stderr_truncated
    assert outcome.started_at_ms == outcome.finished_at_ms == 1234


def test_lru_drops_the_least_recently_used_entry() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "b" is now the oldest
    lru.put("c", 3)
    assert list(lru) == ["a", "c"] and "b" not in lru and len(lru) == 2


def test_lru_peek_does_not_refresh_and_touch_does() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.peek("a") == 1
    lru.put("c", 3)
    assert "a" not in lru
    assert lru.touch("b") and not lru.touch("a")
    lru.put("d", 4)
    assert list(lru) == ["b", "d"]


def test_lru_setdefault_stores_once() -> None:
    lru: BoundedLRU[str, set[str]] = BoundedLRU(4)
    lru.setdefault("m", set).add("p1")
    lru.setdefault("m", set).add("p2")
    assert lru.peek("m") == {"p1", "p2"}
    with pytest.raises(ValueError):
        BoundedLRU(0)


def test_lru_with_a_weight_keeps_the_total_within_capacity_and_says_what_it_dropped() -> None:
    lru: BoundedLRU[str, bytes] = BoundedLRU(10, weight=len)
    assert lru.put("a", b"aaaa") == []
    lru.put("b", b"bbbb")
    assert lru.get("a") == b"aaaa"  # "b" is now the oldest
    assert lru.put("c", b"cccc") == [("b", b"bbbb")]
    assert list(lru) == ["a", "c"] and lru.total_weight == 8
    assert lru.pop("a") == b"aaaa" and lru.total_weight == 4
    assert lru.pop("a") is None


def test_lru_refuses_an_entry_heavier_than_its_capacity_and_keeps_the_rest() -> None:
    lru: BoundedLRU[str, bytes] = BoundedLRU(10, weight=len)
    lru.put("a", b"aaaa")
    assert lru.put("big", b"x" * 11) == [("big", b"x" * 11)]
    assert list(lru) == ["a"] and lru.total_weight == 4
