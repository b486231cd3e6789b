"""Every way a job can end maps to its own OutcomeKind."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

import pytest
import wasmtime

from plasm.runtime import _deadline
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from plasm.runtime.sandbox import CancelToken, Sandbox

RunExample = Callable[..., Outcome]
ENDLESS_FUEL = 2**62


def test_hello_returns_ok_with_greeting(run_example: RunExample) -> None:
    outcome = run_example("hello")
    assert outcome.kind is OutcomeKind.OK
    assert outcome.exit_code is None
    assert outcome.message is None
    assert outcome.stdout == b"Hello, World!\n"


def test_nonzero_proc_exit_is_exit_with_its_code(run_example: RunExample) -> None:
    outcome = run_example("exit3")
    assert outcome.kind is OutcomeKind.EXIT
    assert outcome.exit_code == 3


def test_unreachable_is_trap_with_message(run_example: RunExample) -> None:
    outcome = run_example("trap")
    assert outcome.kind is OutcomeKind.TRAP
    assert outcome.message is not None
    assert "unreachable" in outcome.message


def test_endless_loop_runs_out_of_fuel(run_example: RunExample) -> None:
    outcome = run_example("loop", limits=Limits(fuel=5_000_000))
    assert outcome.kind is OutcomeKind.OUT_OF_FUEL
    assert outcome.fuel_consumed == 5_000_000


@pytest.mark.timeout(20)
def test_endless_loop_times_out(run_example: RunExample) -> None:
    outcome = run_example("loop", limits=Limits(fuel=ENDLESS_FUEL, timeout_ms=50))
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert outcome.wall_time_us >= 50_000


@pytest.mark.timeout(20)
def test_cancel_from_another_thread_stops_the_job(run_example: RunExample) -> None:
    token = CancelToken()
    started = threading.Timer(0.05, token.cancel)
    started.start()
    try:
        outcome = run_example(
            "loop", limits=Limits(fuel=ENDLESS_FUEL, timeout_ms=60_000), cancel=token
        )
    finally:
        started.cancel()
    assert outcome.kind is OutcomeKind.CANCELLED
    assert token.cancelled


def test_job_cancelled_before_it_starts_does_not_run(run_example: RunExample) -> None:
    token = CancelToken()
    token.cancel()
    outcome = run_example("hello", cancel=token)
    assert outcome.kind is OutcomeKind.CANCELLED
    assert outcome.stdout == b""


def test_initial_memory_above_limit_is_memory_limit(run_example: RunExample) -> None:
    outcome = run_example("bigmem", limits=Limits(memory_bytes=64 * 2**20))
    assert outcome.kind is OutcomeKind.MEMORY_LIMIT
    assert outcome.message is not None


def test_initial_memory_within_limit_runs(run_example: RunExample) -> None:
    outcome = run_example("bigmem", limits=Limits(memory_bytes=2**30))
    assert outcome.kind is OutcomeKind.OK


def test_refused_memory_growth_then_trap_is_memory_limit(run_example: RunExample) -> None:
    outcome = run_example("membomb", limits=Limits(memory_bytes=4 * 2**20))
    assert outcome.kind is OutcomeKind.MEMORY_LIMIT
    assert outcome.message is not None
    assert "unreachable" in outcome.message


def test_input_larger_than_memory_limit_is_memory_limit(run_example: RunExample) -> None:
    # hello.wasm grows memory for stdin and traps when growth is refused
    outcome = run_example("hello", stdin=b"x" * (3 * 2**20), limits=Limits(memory_bytes=2**21))
    assert outcome.kind is OutcomeKind.MEMORY_LIMIT


def test_garbage_bytes_are_invalid_module(sandbox: Sandbox) -> None:
    outcome = sandbox.run(b"this is not wasm", JobInput(), Limits())
    assert outcome.kind is OutcomeKind.INVALID_MODULE
    assert outcome.message is not None
    assert outcome.fuel_consumed == 0


def test_wasm_text_is_invalid_module_not_compiled(sandbox: Sandbox) -> None:
    outcome = sandbox.run(b'(module (func (export "_start")))', JobInput(), Limits())
    assert outcome.kind is OutcomeKind.INVALID_MODULE


def test_outcome_times_are_consistent(run_example: RunExample) -> None:
    outcome = run_example("hello")
    assert outcome.started_at_ms <= outcome.finished_at_ms
    assert outcome.wall_time_us > 0


SLEEP_AN_HOUR = bytes(
    wasmtime.wat2wasm(
        """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; one clock subscription at 0: tag 0 (clock), monotonic clock, timeout 3600 s
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (call $proc_exit
      (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
"""
    )
)


@pytest.mark.timeout(20)
def test_guest_cannot_sleep_on_the_host_thread(sandbox: Sandbox) -> None:
    # a host-side sleep would be out of reach of the timeout and of cancellation
    outcome = sandbox.run(SLEEP_AN_HOUR, JobInput(), Limits(timeout_ms=60_000))
    assert outcome.kind is OutcomeKind.EXIT
    assert outcome.exit_code == 58  # WASI ENOTSUP


def test_finished_jobs_leave_no_deadline_watch_behind(run_example: RunExample) -> None:
    for _ in range(50):
        run_example("hello")
    gc.collect()
    assert _deadline._WATCHES == {}
