"""One daemon per state dir: a second `plasmd run` is refused, a killed one leaves no lock."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_checks import example

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def second_run(state_dir: Path, socket: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plasm.cli", "run", "--state-dir", str(state_dir),
         "--socket", str(socket), "--no-network", "--log-format", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_a_second_daemon_on_the_same_state_dir_exits_2_naming_the_first(daemon_factory
                                                                         ) -> None:
    first = daemon_factory()
    assert first.proc is not None
    refused = second_run(first.state_dir, first.state_dir.parent / "second.sock")
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"state dir {first.state_dir} is in use by plasmd pid {first.proc.pid}" in lines[0]
    assert "--state-dir" in lines[0]
    with first.client() as client:  # the first one is untouched
        assert client.health() == {"status": "ok"}


def test_a_sigkilled_daemon_leaves_no_lock_behind(daemon_factory) -> None:
    first = daemon_factory()
    first.kill()
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL
    assert (first.state_dir / "plasmd.lock").exists()  # the file stays; the lock does not
    second = daemon_factory(first.state_dir)
    with second.client() as client:
        assert client.health() == {"status": "ok"}


def test_execute_job_runs_beside_a_daemon_on_the_same_state_dir(daemon_factory) -> None:
    first = daemon_factory()
    with first.client() as client:
        peer_id = client.node()["peer_id"]
    run = subprocess.run(
        [sys.executable, "-m", "plasm.cli", "execute-job", str(example("hello")),
         "--state-dir", str(first.state_dir), "--json"],
        capture_output=True, timeout=60, check=False,
    )
    assert run.returncode == 0, run.stderr
    import orjson

    assert orjson.loads(run.stdout)["executor"] == peer_id  # same key, read only
    with first.client() as client:
        assert client.health() == {"status": "ok"}
        assert client.submit(module=example("hello").read_bytes(), wait=30)["status"] == "done"
