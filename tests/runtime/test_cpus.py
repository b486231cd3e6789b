"""CpuPlan (runtime/cpus.py): pinning a node's threads, and long guest runs spreading out."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plasm.runtime import cpus
from plasm.runtime.cpus import CpuPlan
from plasm.runtime.job import JobInput, Limits, OutcomeKind
from plasm.runtime.sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "wasm-examples"
ALLOWED = frozenset(os.sched_getaffinity(0))
multi_cpu = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs a process allowed two CPUs")


@pytest.fixture(autouse=True)
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A claim directory of this test's own, so nodes elsewhere on the machine claim none."""
    directory = tmp_path / "cpu-claims"
    monkeypatch.setenv(cpus.CLAIM_DIR_ENV, str(directory))
    yield directory


@multi_cpu
def test_two_plans_in_one_process_claim_different_cpus(claims: Path) -> None:
    first, second = CpuPlan.choose("auto"), CpuPlan.choose("auto")
    assert first.home is not None and second.home is not None
    assert first.home != second.home
    assert {p.name for p in claims.iterdir()} >= {f"cpu{first.home}.lock", f"cpu{second.home}.lock"}


@multi_cpu
def test_when_every_cpu_is_claimed_auto_runs_unpinned_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = [CpuPlan.choose("auto") for _ in ALLOWED]
    assert {plan.home for plan in held} == ALLOWED
    with caplog.at_level(logging.WARNING, logger="plasm.runtime.cpus"):
        spare = CpuPlan.choose("auto")
    assert spare.home is None and spare.spread_cpus is None
    assert [r.getMessage() for r in caplog.records if "claimed" in r.getMessage()] != []
    assert len(caplog.records) == 1
    held[0].claim.release()  # type: ignore[union-attr]
    assert CpuPlan.choose("auto").home == held[0].home  # the released CPU is free again


@multi_cpu
def test_a_claim_is_released_when_its_process_exits(claims: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from plasm.runtime.cpus import CpuPlan; plan = CpuPlan.choose('auto');"
            "print(plan.home, flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        taken = int(holder.stdout.readline())
        mine = CpuPlan.choose("auto")
        assert mine.home is not None and mine.home != taken  # another process holds `taken`
        assert mine.claim is not None
        mine.claim.release()
        assert cpus.CpuClaim.take(claims, taken) is None
    finally:
        holder.kill()
        holder.wait(timeout=10)
    again = cpus.CpuClaim.take(claims, taken)  # the lock went with the holder's fd
    assert again is not None
    again.release()


def test_a_number_or_off_claims_nothing(claims: Path) -> None:
    assert CpuPlan.choose("off").claim is None
    assert CpuPlan.choose(min(ALLOWED)).claim is None
    assert not claims.exists()


def test_off_does_not_scan_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    def scan() -> dict[int, int]:
        raise AssertionError("choose('off') scanned /proc")

    monkeypatch.setattr(cpus, "_threads_pinned_alone", scan)
    assert CpuPlan.choose("off").home is None


def test_the_claim_dir_falls_back_to_a_per_user_temp_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(cpus.CLAIM_DIR_ENV)
    monkeypatch.setattr(cpus, "_RUN_CLAIM_DIR", tmp_path / "absent" / "plasm-cpus")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    assert cpus.claim_dir() == tmp_path / f"plasm-cpus-{os.getuid()}"


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
