"""Signals: SIGTERM stops gracefully (jobs end with a final status), SIGUSR1 dumps threads."""

from __future__ import annotations

import signal
import time

import pytest
from daemon_checks import checked_result, example_bytes, start_spinning_job, write_config

from plasm.client import ApiRequestError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_sigterm_cancels_a_job_that_outlives_the_grace_and_exits_0(daemon_factory, tmp_path
                                                                    ) -> None:
    config = write_config(tmp_path, '[shutdown]\ngrace_ms = "500ms"\n')
    daemon = daemon_factory(None, config=config)
    with daemon.client() as client:
        job_id = start_spinning_job(client)
    assert daemon.stop(signal.SIGTERM, timeout=20) == 0
    assert not daemon.socket.exists()

    again = daemon_factory(daemon.state_dir)
    with again.client() as client:
        job = client.job(job_id)
    assert job["status"] == "cancelled"
    assert checked_result(job["result"]).outcome == "cancelled"
    assert "stopped" in daemon.log()


def test_sigterm_lets_a_job_finish_within_the_grace(daemon_factory, tmp_path) -> None:
    config = write_config(tmp_path, '[shutdown]\ngrace_ms = "30s"\n')
    daemon = daemon_factory(None, config=config)
    with daemon.client() as client:
        accepted = client.submit(module=example_bytes("loop"),
                                 limits={"fuel": 10**11, "timeout_ms": 1500})
        while client.job(accepted["job_id"])["status"] != "running":
            time.sleep(0.02)
    assert daemon.stop(signal.SIGTERM, timeout=20) == 0

    again = daemon_factory(daemon.state_dir)
    with again.client() as client:
        job = client.job(accepted["job_id"])
    assert job["status"] == "done"
    assert checked_result(job["result"]).outcome == "timeout"


def test_sigint_stops_like_sigterm(daemon) -> None:
    assert daemon.stop(signal.SIGINT) == 0
    assert not daemon.socket.exists()


def test_sigusr1_logs_every_threads_traceback_and_the_daemon_keeps_serving(daemon) -> None:
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGUSR1)
    expected = ('"event":"thread_dump"', '"thread_name":"MainThread"',
                '"thread_name":"api-loop"', '"thread_name":"IngressActor')
    deadline = time.monotonic() + 10
    while not all(text in daemon.log() for text in expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = daemon.log()
    for text in expected:
        assert text in log
    with daemon.client() as client:
        assert client.submit(module=example_bytes("hello"), wait=30)["status"] == "done"


def test_sigusr1_while_a_job_runs_dumps_threads_and_sigterm_still_stops(daemon_factory, tmp_path
                                                                        ) -> None:
    config = write_config(tmp_path, '[shutdown]\ngrace_ms = "200ms"\n')
    daemon = daemon_factory(None, config=config)
    with daemon.client() as client:
        start_spinning_job(client)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "thread_dump" not in daemon.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"event":"thread_dump"' in daemon.log()
    assert daemon.stop(signal.SIGTERM, timeout=30) == 0


def test_while_stopping_an_open_connection_gets_503_for_new_jobs(daemon_factory, tmp_path
                                                                 ) -> None:
    config = write_config(tmp_path, '[shutdown]\ngrace_ms = "5s"\n')
    daemon = daemon_factory(None, config=config)
    assert daemon.proc is not None
    with daemon.client() as client:
        job_id = start_spinning_job(client)  # keeps the daemon in its grace period
        daemon.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        health = (200, b"")
        while health[0] == 200 and time.monotonic() < deadline:
            health = client.request_raw("GET", "/v1/health")
            time.sleep(0.02)
        with pytest.raises(ApiRequestError) as refused:
            client.submit(module=example_bytes("hello"))
        client.cancel(job_id)
    assert health == (503, b'{"status":"stopping"}')
    assert (refused.value.status, refused.value.code) == (503, "shutting_down")
    assert daemon.stop(signal.SIGTERM, timeout=20) == 0
