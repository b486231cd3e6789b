"""CpuPlan (runtime/cpus.py): pinning a node's threads, and long guest runs spreading out."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from plasm.runtime import cpus
from plasm.runtime.cpus import CpuPlan
from plasm.runtime.job import JobInput, Limits, OutcomeKind
from plasm.runtime.sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "wasm-examples"
ALLOWED = frozenset(os.sched_getaffinity(0))
multi_cpu = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs a process allowed two CPUs")


def test_off_pins_nothing() -> None:
    plan = CpuPlan.choose("off")
    assert plan.home is None and plan.spread_cpus is None
    before = os.sched_getscheduler(0)
    with plan.pinned():
        assert os.sched_getaffinity(0) == ALLOWED
        assert os.sched_getscheduler(0) == before


@pytest.mark.parametrize("bad", ["on", "", "1", -1, 100_000])
def test_a_bad_setting_is_refused_with_the_allowed_cpus(bad: str | int) -> None:
    with pytest.raises(ValueError, match="cpu_affinity"):
        CpuPlan.choose(bad)


@multi_cpu
def test_auto_pins_threads_started_inside_and_restores_the_caller() -> None:
    plan = CpuPlan.choose("auto")
    assert plan.home in ALLOWED and plan.spread_cpus == ALLOWED
    seen: list[tuple[set[int], int]] = []
    before = os.sched_getscheduler(0)
    with plan.pinned():
        assert os.sched_getaffinity(0) == {plan.home}
        thread = threading.Thread(
            target=lambda: seen.append((os.sched_getaffinity(0), os.sched_getscheduler(0)))
        )
        thread.start()
        thread.join(timeout=10)
    assert seen == [({plan.home}, os.SCHED_BATCH)]
    assert os.sched_getaffinity(0) == ALLOWED
    assert os.sched_getscheduler(0) == before


@multi_cpu
def test_threads_pinned_alone_are_counted_per_cpu() -> None:
    cpu = min(ALLOWED)
    before = cpus._threads_pinned_alone().get(cpu, 0)
    pinned, release = threading.Event(), threading.Event()

    def hold() -> None:
        os.sched_setaffinity(0, {cpu})
        pinned.set()
        release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert pinned.wait(10)
        assert cpus._threads_pinned_alone().get(cpu, 0) == before + 1
    finally:
        release.set()
        thread.join(timeout=10)


@multi_cpu
def test_auto_takes_the_cpu_fewest_threads_are_pinned_to(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = min(ALLOWED)
    monkeypatch.setattr(cpus, "_threads_pinned_alone", lambda: {busy: 12})
    monkeypatch.setattr(cpus, "_current_cpu", lambda: busy)
    assert CpuPlan.choose("auto").home != busy  # even though we run on it
    monkeypatch.setattr(cpus, "_threads_pinned_alone", dict)
    assert CpuPlan.choose("auto").home == busy  # a tie: the CPU we are on


@multi_cpu
def test_a_long_guest_run_spreads_its_thread_and_gets_it_back() -> None:
    home = min(ALLOWED)
    plan = CpuPlan.choose(home)
    observed: list[set[int]] = []
    after: list[set[int]] = []
    started = threading.Event()
    with Sandbox(epoch_tick_ms=2, spread_cpus=plan.spread_cpus) as sandbox:
        module = sandbox.compile((EXAMPLES / "loop.wasm").read_bytes())

        def job() -> None:
            plan.pin_here()
            started.set()
            outcome = sandbox.run(
                module, JobInput(module_name="loop.wasm"), Limits(fuel=2**62, timeout_ms=1_000)
            )
            assert outcome.kind is OutcomeKind.TIMEOUT
            after.append(os.sched_getaffinity(0))

        thread = threading.Thread(target=job)
        thread.start()
        assert started.wait(10)
        deadline = time.monotonic() + 0.9
        while time.monotonic() < deadline and thread.native_id is not None:
            observed.append(os.sched_getaffinity(thread.native_id))
            if observed[-1] == ALLOWED:
                break
            time.sleep(0.005)
        thread.join(timeout=10)
    assert observed[-1] == ALLOWED  # the guest ran on every CPU
    assert after == [{home}]  # and the executor's thread is pinned again


@multi_cpu
def test_a_short_job_leaves_the_thread_pinned() -> None:
    plan = CpuPlan.choose(min(ALLOWED))
    with Sandbox(spread_cpus=plan.spread_cpus) as sandbox, plan.pinned():
        outcome = sandbox.run(
            (EXAMPLES / "hello.wasm").read_bytes(), JobInput(stdin=b"hi"), Limits()
        )
        assert outcome.stdout == b"ih\n"
        assert os.sched_getaffinity(0) == {plan.home}


@multi_cpu
def test_a_refused_pin_warns_and_leaves_threads_unpinned(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(pid: int, mask: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    plan = CpuPlan.choose(min(ALLOWED))
    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    assert plan.pin_here() is False
    assert "cannot pin" in caplog.text
    with plan.pinned():  # no raise, nothing changed
        assert os.sched_getaffinity(0) == ALLOWED


@multi_cpu
def test_a_refused_spread_lets_the_job_run_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, mask: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    real = os.sched_setaffinity
    real(0, {min(ALLOWED)})  # a pinned executor thread, which the job would widen
    try:
        monkeypatch.setattr(os, "sched_setaffinity", refuse)
        with Sandbox(epoch_tick_ms=2, spread_cpus=ALLOWED) as sandbox:
            outcome = sandbox.run(
                (EXAMPLES / "loop.wasm").read_bytes(),
                JobInput(module_name="loop.wasm"),
                Limits(fuel=2**62, timeout_ms=50),
            )
        assert outcome.kind is OutcomeKind.TIMEOUT
        assert os.sched_getaffinity(0) == {min(ALLOWED)}
    finally:
        real(0, ALLOWED)
