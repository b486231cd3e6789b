"""Fuel accounting is deterministic: receipts from different runs agree."""

from __future__ import annotations

from collections.abc import Callable

from plasm.runtime.job import Limits, Outcome, OutcomeKind

RunExample = Callable[..., Outcome]


def test_same_module_and_input_use_the_same_fuel(run_example: RunExample) -> None:
    first = run_example("hello", stdin=b"some input")
    second = run_example("hello", stdin=b"some input")
    assert first.fuel_consumed == second.fuel_consumed > 0


def test_longer_input_uses_more_fuel(run_example: RunExample) -> None:
    short = run_example("hello", stdin=b"ab")
    long = run_example("hello", stdin=b"ab" * 1000)
    assert long.fuel_consumed > short.fuel_consumed


def test_fuel_of_a_trapping_job_is_deterministic(run_example: RunExample) -> None:
    limits = Limits(memory_bytes=2**20)
    first = run_example("membomb", limits=limits)
    second = run_example("membomb", limits=limits)
    assert first.kind is OutcomeKind.MEMORY_LIMIT
    assert first.fuel_consumed == second.fuel_consumed > 0


def test_fuel_limit_does_not_change_fuel_used_by_a_finished_job(run_example: RunExample) -> None:
    small = run_example("hello", stdin=b"xyz", limits=Limits(fuel=10_000))
    large = run_example("hello", stdin=b"xyz", limits=Limits(fuel=10**12))
    assert small.kind is large.kind is OutcomeKind.OK
    assert small.fuel_consumed == large.fuel_consumed
