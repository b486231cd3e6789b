"""executor.cpu_affinity in a real daemon: where its threads may run (runtime/cpus.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_checks import example, example_bytes, write_config

ALLOWED = frozenset(os.sched_getaffinity(0))
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.skipif(len(ALLOWED) < 2, reason="needs a process allowed two CPUs"),
]


@pytest.fixture(autouse=True)
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CPU claim directory (runtime/cpus.py) of this test's own: daemons it starts inherit
    it, so nodes elsewhere on the machine (other test runs) hold no claim they could see."""
    directory = tmp_path / "cpu-claims"
    monkeypatch.setenv("PLASM_CPU_CLAIM_DIR", str(directory))
    return directory


def thread_cpus(pid: int) -> dict[str, frozenset[int]]:
    """Each thread's name -> the CPUs it may run on."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:  # a thread may end meanwhile (the API runs a thread per connection)
            name = (task / "comm").read_text().strip()
            threads[f"{name}/{task.name}"] = frozenset(os.sched_getaffinity(int(task.name)))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return threads


def test_auto_pins_every_thread_to_one_cpu_and_a_long_job_spreads(daemon_factory) -> None:
    daemon = daemon_factory()
    assert daemon.proc is not None
    cpus = thread_cpus(daemon.proc.pid)
    homes = set(cpus.values())
    assert len(homes) == 1, cpus  # main, API, journal, actors, epoch ticker: one CPU
    home = next(iter(homes))
    assert len(home) == 1 and home <= ALLOWED
    assert set(thread_policies(daemon.proc.pid).values()) == {os.SCHED_BATCH}

    with daemon.client() as client:
        job_id = client.submit(
            module=example_bytes("loop"), limits={"fuel": 10**11, "timeout_ms": 3000}
        )["job_id"]
        deadline = time.monotonic() + 2.5
        spread: set[str] = set()
        while not spread and time.monotonic() < deadline:
            spread = {name for name, on in thread_cpus(daemon.proc.pid).items() if on == ALLOWED}
            time.sleep(0.02)
        assert spread, "no thread widened while the guest ran"
        deadline = time.monotonic() + 20
        while client.job(job_id)["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.job(job_id)["result"]["outcome"]["kind"] == "timeout"
    assert set(thread_cpus(daemon.proc.pid).values()) == {home}


def test_two_daemons_on_one_machine_take_a_cpu_each(daemon_factory, claims: Path) -> None:
    homes = []
    for daemon in (daemon_factory(), daemon_factory()):
        assert daemon.proc is not None
        homes.append(set(thread_cpus(daemon.proc.pid).values()))
    assert all(len(home) == 1 for home in homes), homes
    assert homes[0] != homes[1]
    claimed = {f"cpu{cpu}.lock" for home in homes for cpus in home for cpu in cpus}
    assert {p.name for p in claims.iterdir()} == claimed


def test_execute_job_pins_nothing(tmp_path: Path, claims: Path) -> None:
    command = [
        sys.executable, "-m", "plasm.cli", "execute-job", str(example("loop")),
        "--state-dir", str(tmp_path / "state"), "--timeout", "3", "--fuel", str(10**11),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen: dict[str, frozenset[int]] = {}
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and proc.poll() is None:
            seen.update(thread_cpus(proc.pid))
            time.sleep(0.02)
        assert len(seen) > 3, seen  # the node ran: its actors had started
        assert set(seen.values()) == {ALLOWED}, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert not claims.exists()


def thread_policies(pid: int) -> dict[str, int]:
    policies = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            policies[task.name] = os.sched_getscheduler(int(task.name))
        except ProcessLookupError:
            continue
    return policies


def test_off_leaves_every_thread_on_every_cpu(daemon_factory, tmp_path) -> None:
    config = write_config(tmp_path, '[executor]\ncpu_affinity = "off"\n')
    daemon = daemon_factory(None, config=config)
    assert daemon.proc is not None
    assert set(thread_cpus(daemon.proc.pid).values()) == {ALLOWED}
    assert set(thread_policies(daemon.proc.pid).values()) == {os.sched_getscheduler(0)}
