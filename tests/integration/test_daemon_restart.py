"""The journal across restarts: a clean stop, and SIGKILL in the middle of a job."""

from __future__ import annotations

import signal

import pytest
from daemon_checks import checked_result, example_bytes, start_spinning_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_finished_jobs_and_receipts_survive_a_restart_byte_for_byte(daemon_factory) -> None:
    first = daemon_factory()
    with first.client() as client:
        results = [client.submit(module=example_bytes(name), stdin=b"keep", wait=30)
                   for name in ("hello", "exit3", "trap")]
        peer_id = client.node()["peer_id"]
        module_sha256 = client.upload_module(example_bytes("env_args"))
    assert first.stop() == 0

    second = daemon_factory(first.state_dir)
    with second.client() as client:
        for result in results:
            job = client.job(result["job_id"])
            assert job["status"] == "done"
            # The same result; its log proof is against the latest signed head (size 3),
            # the answer's against the head of its own commit: both name its leaf.
            kept, answered = dict(job["result"]), dict(result)
            assert kept.pop("log")["index"] == answered.pop("log")["index"]
            assert job["result"]["log"]["size"] == 3
            assert kept == answered
            assert job["result"]["receipt"]["cose"] == result["receipt"]["cose"]
            checked_result(job["result"])
        assert client.node()["peer_id"] == peer_id
        # Uploaded modules are in the journal too.
        rerun = client.submit(module_sha256=module_sha256, args=["x"], wait=30)
    checked_result(rerun)
    assert rerun["stdout_text"] == "module.wasm\nx\n"


def test_sigkill_mid_job_marks_it_interrupted_and_keeps_the_rest(daemon_factory) -> None:
    first = daemon_factory()
    with first.client() as client:
        finished = client.submit(module=example_bytes("hello"), wait=30)
        spinning = start_spinning_job(client)
    first.kill()
    assert first.proc is not None and first.proc.returncode == -signal.SIGKILL

    second = daemon_factory(first.state_dir)
    with second.client() as client:
        killed = client.job(spinning)
        kept = client.job(finished["job_id"])
        fresh = client.submit(module=example_bytes("hello"), stdin=b"again", wait=30)
        interrupted = [job["job_id"] for job in client.jobs(status="interrupted")]
    assert killed["status"] == "interrupted"
    assert killed["error"]["code"] == "interrupted"
    assert "submit it again" in killed["error"]["message"]
    assert "result" not in killed
    assert interrupted == [spinning]
    assert kept["result"] == finished
    checked_result(kept["result"])
    checked_result(fresh)
    assert fresh["stdout_text"] == "niaga\n"
    assert "interrupted" in second.log()


def test_a_socket_file_left_by_a_killed_daemon_does_not_block_the_next_start(daemon_factory
                                                                              ) -> None:
    first = daemon_factory()
    first.kill()
    assert first.socket.is_socket()  # SIGKILL gives no chance to remove it
    second = daemon_factory(first.state_dir, start=False)
    second.socket = first.socket
    second.start()
    with second.client() as client:
        assert client.health() == {"status": "ok"}
