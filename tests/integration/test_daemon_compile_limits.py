"""A module that is costly to compile against a real plasmd: refused within its limit, with
the daemon's memory bounded; other jobs go on meanwhile; DELETE and SIGTERM stop it.

The module (``tests/runtime/wasm_bombs.py``) is 4 MB of a million empty functions, which took
wasmtime ~88 s and ~5.9 GiB to compile inside the daemon. Bounds here are "does not hang"
checks (several times the limit), not timings.
"""

from __future__ import annotations

import signal
import time

import pytest
from daemon_checks import checked_result, example_bytes, wait_for_status, write_config

from tests.runtime.wasm_bombs import many_functions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

GIB = 2**30
MAX_COMPILE_MS = 1000
FUNCTIONS = 1_000_000
# For the tests that stop the compile themselves: long enough that nothing else does.
PATIENT = '[executor]\nmax_compile_ms = "10min"\n[shutdown]\ngrace_ms = "300ms"\n'


def _peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _wait_until_running(client, job_id: str) -> None:
    wait_for_status(client, job_id, frozenset({"running"}), timeout=30)


def test_a_compile_bomb_ends_as_compile_limit_with_the_daemon_memory_bounded(
    daemon_factory, tmp_path
) -> None:
    config = write_config(tmp_path, f"[executor]\nmax_compile_ms = {MAX_COMPILE_MS}\n")
    daemon = daemon_factory(None, config=config)
    assert daemon.proc is not None
    bomb = many_functions(FUNCTIONS)
    with daemon.client(timeout=60) as client:
        accepted = client.submit(module=bomb)
        started = time.monotonic()
        job = wait_for_status(client, accepted["job_id"], timeout=3 * MAX_COMPILE_MS / 1000 + 10)
        took = time.monotonic() - started
        assert job["status"] == "failed"
        receipt = checked_result(job["result"])
        assert receipt.outcome == "compile_limit"
        assert "max_compile_ms" in job["result"]["outcome"]["message"]

        again = client.submit(module=bomb, wait=30)  # remembered: refused without compiling
        assert again["status"] == "failed"
        assert checked_result(again).outcome == "compile_limit"
        assert "refused" in again["outcome"]["message"]
        assert client.submit(module=example_bytes("hello"), wait=30)["status"] == "done"
        peak = _peak_rss_bytes(daemon.proc.pid)
    print(f"compile bomb ended after {took:.2f} s; daemon peak RSS {peak / 2**20:.0f} MiB")
    assert peak < GIB, f"the daemon's peak RSS was {peak / 2**20:.0f} MiB"
    cache = daemon.state_dir / "cache" / "modules"
    cached = sum(path.stat().st_size for path in cache.rglob("*.cwasm"))
    assert cached < 2**20  # hello's code only; nothing of the refused module


def test_a_small_job_completes_while_a_bomb_compiles(daemon_factory, tmp_path) -> None:
    daemon = daemon_factory(None, config=write_config(tmp_path, PATIENT))
    with daemon.client(timeout=60) as client:
        bomb = client.submit(module=many_functions(FUNCTIONS, salt=1))
        _wait_until_running(client, bomb["job_id"])
        small = client.submit(module=example_bytes("hello"), wait=30)
        assert small["status"] == "done"
        assert client.job(bomb["job_id"])["status"] == "running"
        client.cancel(bomb["job_id"])
        assert wait_for_status(client, bomb["job_id"], timeout=20)["status"] == "cancelled"


def test_delete_during_a_compile_ends_the_job_cancelled(daemon_factory, tmp_path) -> None:
    daemon = daemon_factory(None, config=write_config(tmp_path, PATIENT))
    with daemon.client(timeout=60) as client:
        bomb = client.submit(module=many_functions(FUNCTIONS, salt=2))
        _wait_until_running(client, bomb["job_id"])
        time.sleep(0.5)  # into the compile
        client.cancel(bomb["job_id"])
        job = wait_for_status(client, bomb["job_id"], timeout=20)
        assert job["status"] == "cancelled"
        assert checked_result(job["result"]).outcome == "cancelled"
        assert client.submit(module=example_bytes("hello"), wait=30)["status"] == "done"


def test_sigterm_during_a_compile_exits_well_inside_systemds_30_s(daemon_factory, tmp_path) -> None:
    daemon = daemon_factory(None, config=write_config(tmp_path, PATIENT))
    assert daemon.proc is not None
    with daemon.client(timeout=60) as client:
        bomb = client.submit(module=many_functions(FUNCTIONS, salt=3))
        _wait_until_running(client, bomb["job_id"])
        time.sleep(0.5)
    started = time.monotonic()
    code = daemon.stop(signal.SIGTERM, timeout=20)  # SIGKILL (code -9) past 20 s
    print(f"SIGTERM mid-compile: exited {code} after {time.monotonic() - started:.2f} s")
    assert code == 0

    again = daemon_factory(daemon.state_dir)
    with again.client() as client:
        job = client.job(bomb["job_id"])
    # Cancelled in the drain, not left running to be journalled "interrupted".
    assert job["status"] == "cancelled"
    assert "actor_stuck" not in daemon.log() and "stuck_threads" not in daemon.log()
