"""Compiling in worker processes: limits, remembered refusals, cancel, concurrency, close.

Every test uses a real Sandbox, its real worker processes and modules built byte by byte
(``wasm_bombs``) that take seconds and hundreds of MiB to compile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from plasm.runtime.errors import CompileCancelledError, CompileDeadlineError, CompileLimitError
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from plasm.runtime.sandbox import CancelToken, CompileSettings, Sandbox
from tests.runtime.wasm_bombs import many_functions

pytestmark = pytest.mark.timeout(120)

Example = Callable[[str], bytes]
# Takes wasmtime tens of seconds and GiBs: whatever stops it, it is not done compiling.
HUGE = 1_000_000
WAIT_S = 30.0


@pytest.fixture(scope="module")
def huge() -> bytes:
    return many_functions(HUGE)


def sandbox_with(**settings: int) -> Sandbox:
    return Sandbox(epoch_tick_ms=2, compiling=CompileSettings(**settings))


@pytest.fixture
def limited() -> Iterator[Sandbox]:
    """Compiles may take 300 ms; two workers."""
    with sandbox_with(max_compile_ms=300, workers=2) as box:
        yield box


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Background:
    """Run one job in a thread; ``outcome()`` waits for it (bounded)."""

    def __init__(self, sandbox: Sandbox, wasm: bytes, limits: Limits | None = None) -> None:
        self.cancel = CancelToken()
        self._result: list[Outcome] = []
        self._thread = threading.Thread(
            target=lambda: self._result.append(
                sandbox.run(wasm, JobInput(), limits or Limits(), self.cancel)
            ),
            daemon=True,
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def outcome(self) -> Outcome:
        self._thread.join(WAIT_S)
        assert self._result, "the job did not end"
        return self._result[0]


def test_a_module_that_compiles_too_long_ends_as_compile_limit(
    limited: Sandbox, huge: bytes
) -> None:
    outcome = limited.run(huge, JobInput(), Limits())
    assert outcome.kind is OutcomeKind.COMPILE_LIMIT
    assert outcome.message is not None and "300 ms" in outcome.message
    assert outcome.fuel_consumed == 0


def test_compile_raises_compile_limit_error(limited: Sandbox) -> None:
    with pytest.raises(CompileLimitError, match="max_compile_ms"):
        limited.compile(many_functions(HUGE, salt=1))


def test_a_module_that_needs_too_much_memory_ends_as_compile_limit() -> None:
    with sandbox_with(max_compile_ms=60_000, max_compile_memory_bytes=160 * 2**20) as box:
        outcome = box.run(many_functions(HUGE, salt=2), JobInput(), Limits())
    assert outcome.kind is OutcomeKind.COMPILE_LIMIT
    assert outcome.message is not None and "memory" in outcome.message


def test_a_refused_module_is_refused_again_without_compiling(limited: Sandbox, huge: bytes) -> None:
    first = limited.run(huge, JobInput(), Limits())
    started = limited.compiles_started
    second = limited.run(huge, JobInput(), Limits())
    assert first.kind is second.kind is OutcomeKind.COMPILE_LIMIT
    assert second.message is not None and "refused" in second.message
    assert limited.compiles_started == started


def test_the_worker_that_went_over_the_limit_is_replaced(
    limited: Sandbox, huge: bytes, example: Example
) -> None:
    wait_until(lambda: len(limited.compile_worker_pids) == 2)
    before = set(limited.compile_worker_pids)
    limited.run(huge, JobInput(), Limits())
    wait_until(lambda: len(limited.compile_worker_pids) == 2)
    assert not all(alive(pid) for pid in before)
    assert limited.run(example("hello"), JobInput(), Limits()).kind is OutcomeKind.OK


def test_cancelling_a_job_kills_its_compile(huge: bytes) -> None:
    with sandbox_with(max_compile_ms=600_000, workers=1) as box:
        job = Background(box, huge)
        wait_until(lambda: box.compiles_started == 1)
        (compiling,) = box.compile_worker_pids
        time.sleep(0.2)  # well into the compile
        job.cancel.cancel()
        assert job.outcome().kind is OutcomeKind.CANCELLED
        wait_until(lambda: not alive(compiling))


def test_compile_raises_cancelled_when_its_token_is_cancelled(huge: bytes) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with (
        sandbox_with(max_compile_ms=600_000, workers=1) as box,
        pytest.raises(CompileCancelledError),
    ):
        box.compile(huge, cancel=cancel)


def test_the_job_timeout_counts_the_compile_and_is_not_remembered(huge: bytes) -> None:
    with sandbox_with(max_compile_ms=600_000, workers=1) as box:
        outcome = box.run(huge, JobInput(), Limits(timeout_ms=300))
        assert outcome.kind is OutcomeKind.TIMEOUT
        assert outcome.message is not None and "compil" in outcome.message
        with pytest.raises(CompileDeadlineError):
            box.compile(huge, timeout_ms=200)
        assert box.compiles_started == 2  # a timeout is the job's, not the module's


def test_a_small_module_compiles_while_a_big_one_is_compiling(
    huge: bytes, example: Example
) -> None:
    with sandbox_with(max_compile_ms=600_000, workers=2) as box:
        big = Background(box, huge)
        wait_until(lambda: box.compiles_started == 1)
        small = box.run(example("hello"), JobInput(), Limits())
        assert small.kind is OutcomeKind.OK
        assert big.running
        big.cancel.cancel()
        assert big.outcome().kind is OutcomeKind.CANCELLED


def test_two_jobs_of_one_new_module_compile_it_once() -> None:
    wasm = many_functions(3_000, salt=3)
    with sandbox_with(workers=2) as box:
        jobs = [Background(box, wasm) for _ in range(2)]
        assert [job.outcome().kind for job in jobs] == [OutcomeKind.OK, OutcomeKind.OK]
        assert box.compiles_started == 1


def test_one_job_leaving_does_not_stop_the_compile_another_waits_for() -> None:
    wasm = many_functions(60_000, salt=4)  # about a second or two to compile
    with sandbox_with(max_compile_ms=600_000, workers=1) as box:
        patient = Background(box, wasm)
        wait_until(lambda: box.compiles_started == 1)
        impatient = Background(box, wasm)
        impatient.cancel.cancel()
        assert impatient.outcome().kind is OutcomeKind.CANCELLED
        assert patient.outcome().kind is OutcomeKind.OK
        assert box.compiles_started == 1


def test_close_kills_a_compile_in_progress(huge: bytes) -> None:
    box = sandbox_with(max_compile_ms=600_000, workers=1)
    job = Background(box, huge)
    wait_until(lambda: box.compiles_started == 1)
    (compiling,) = box.compile_worker_pids
    box.close()
    assert not alive(compiling)
    assert job.outcome().kind is OutcomeKind.CANCELLED


def test_close_leaves_no_worker_behind(example: Example) -> None:
    box = sandbox_with(workers=2)
    box.compile(example("hello"))
    pids = box.compile_worker_pids
    assert len(pids) == 2
    box.close()
    assert not any(alive(pid) for pid in pids)


def test_workers_run_with_their_limits(example: Example) -> None:
    import resource

    with sandbox_with(workers=1, max_compile_memory_bytes=512 * 2**20) as box:
        box.compile(example("hello"))
        (pid,) = box.compile_worker_pids
        assert resource.prlimit(pid, resource.RLIMIT_AS)[0] == 512 * 2**20
        assert resource.prlimit(pid, resource.RLIMIT_CORE)[0] == 0
        assert resource.prlimit(pid, resource.RLIMIT_CPU)[0] != resource.RLIM_INFINITY


def test_memory_cache_forgets_the_least_recent_module_past_its_byte_budget(
    example: Example,
) -> None:
    hello = example("hello")
    with sandbox_with(workers=1) as probe:
        one = probe.compile(hello).code_size
    with sandbox_with(workers=1, memory_cache_bytes=one + one // 2) as box:
        first = box.compile(hello)
        assert box.compile(hello) is first
        other = box.compile(hello + b"\x00\x02\x01x")  # a custom section: another module
        assert box.compile(hello + b"\x00\x02\x01x") is other
        assert box.compile(hello) is not first


def test_a_pool_that_is_not_warm_starts_its_worker_for_the_first_compile(
    example: Example,
) -> None:
    with Sandbox(compiling=CompileSettings(workers=1, warm=False)) as box:
        assert box.compile_worker_pids == ()
        assert box.run(example("hello"), JobInput(), Limits()).kind is OutcomeKind.OK
        assert len(box.compile_worker_pids) == 1


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="workers"):
        CompileSettings(workers=0)
    with pytest.raises(ValueError, match="max_compile_ms"):
        CompileSettings(max_compile_ms=0)
    with pytest.raises(ValueError, match="warm"):
        CompileSettings(warm=1)  # type: ignore[arg-type]
