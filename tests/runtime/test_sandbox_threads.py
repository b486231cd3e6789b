"""One Sandbox serves several executor threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from plasm.runtime.sandbox import CancelToken, CompiledModule, Sandbox

Example = Callable[[str], bytes]


@pytest.mark.timeout(60)
def test_four_threads_running_jobs_all_get_their_own_output(
    sandbox: Sandbox, example: Example
) -> None:
    wasm = example("hello")

    def job(i: int) -> tuple[int, Outcome]:
        text = f"job number {i}".encode()
        return i, sandbox.run(wasm, JobInput(stdin=text), Limits())

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(job, range(200)))
    for i, outcome in results:
        assert outcome.kind is OutcomeKind.OK
        assert outcome.stdout == f"job number {i}".encode()[::-1] + b"\n"


@pytest.mark.timeout(60)
def test_concurrent_compiles_of_one_module_give_one_compiled_module(example: Example) -> None:
    wasm = example("env_args")
    barrier = threading.Barrier(4)

    def compile_once(_: int) -> CompiledModule:
        barrier.wait()
        return box.compile(wasm)

    with Sandbox() as box, ThreadPoolExecutor(4) as pool:
        modules = list(pool.map(compile_once, range(4)))
    assert all(module is modules[0] for module in modules)


@pytest.mark.timeout(30)
def test_cancelling_one_job_leaves_the_others_running(sandbox: Sandbox, example: Example) -> None:
    loop = sandbox.compile(example("loop"))
    hello = sandbox.compile(example("hello"))
    token = CancelToken()
    endless = Limits(fuel=2**62, timeout_ms=60_000)
    with ThreadPoolExecutor(2) as pool:
        spinning = pool.submit(sandbox.run, loop, JobInput(), endless, token)
        others = [sandbox.run(hello, JobInput(stdin=b"ok"), Limits()) for _ in range(20)]
        token.cancel()
        cancelled = spinning.result()
    assert cancelled.kind is OutcomeKind.CANCELLED
    assert all(outcome.stdout == b"ko\n" for outcome in others)
