"""Jobs through the Python client against a real `plasmd run`: submit, wait, poll, cancel."""

from __future__ import annotations

import base64
import hashlib

import pytest
from daemon_checks import (
    SPIN_LIMITS,
    checked_result,
    example_bytes,
    start_spinning_job,
    wait_for_status,
)

from plasm.client import ApiRequestError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_submit_with_wait_returns_a_result_whose_receipt_signs_the_output(daemon) -> None:
    with daemon.client() as client:
        result = client.submit(module=example_bytes("hello"), stdin=b"Hello, World", wait=30)
    receipt = checked_result(result)
    assert base64.b64decode(result["stdout"]) == b"dlroW ,olleH\n"
    assert result["status"] == "done"
    assert receipt.outcome == "ok"


def test_submit_without_wait_is_accepted_then_polled_to_done(daemon) -> None:
    with daemon.client() as client:
        accepted = client.submit(module=example_bytes("exit3"))
        assert accepted["status"] == "queued"
        job = wait_for_status(client, accepted["job_id"])
    assert job["status"] == "done"
    assert job["outcome"] == "exit"
    checked_result(job["result"])
    assert job["result"]["outcome"]["exit_code"] == 3


def test_args_env_and_module_name_reach_the_guest(daemon) -> None:
    with daemon.client() as client:
        result = client.submit(module=example_bytes("env_args"), module_name="tool.wasm",
                               args=["a", "b c"], env={"K": "V"}, wait=30)
    checked_result(result)
    assert result["stdout_text"] == "tool.wasm\na\nb c\nK=V\n"


def test_job_list_shows_submitted_jobs_newest_first_and_filters_by_status(daemon) -> None:
    with daemon.client() as client:
        first = client.submit(module=example_bytes("hello"), wait=30)["job_id"]
        second = client.submit(module=example_bytes("trap"), wait=30)["job_id"]
        listed = [job["job_id"] for job in client.jobs()]
        done = [job["job_id"] for job in client.jobs(status="done")]
        cancelled = client.jobs(status="cancelled")
    assert listed[:2] == [second, first]
    assert set(done) == {first, second}
    assert cancelled == []


def test_uploaded_module_runs_when_submitted_by_its_sha256(daemon) -> None:
    wasm = example_bytes("hello")
    with daemon.client() as client:
        sha256 = client.upload_module(wasm)
        result = client.submit(module_sha256=sha256, stdin=b"abc", wait=30)
    assert sha256 == hashlib.sha256(wasm).hexdigest()
    checked_result(result)
    assert result["stdout_text"] == "cba\n"


def test_uploading_the_same_module_twice_gives_the_same_answer(daemon) -> None:
    wasm = example_bytes("exit3")
    with daemon.client() as client:
        first = client.request("POST", "/v1/modules", body=wasm, content_type="application/wasm")
        second = client.request("POST", "/v1/modules", body=wasm, content_type="application/wasm")
    assert first == second == {"sha256": hashlib.sha256(wasm).hexdigest(), "size": len(wasm)}


@pytest.mark.parametrize("wait", [None, 10])  # ?wait takes the unconfirmed submit path
def test_submitting_an_unknown_module_sha256_is_404(daemon, wait) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.submit(module_sha256="ab" * 32, wait=wait)
    assert (caught.value.status, caught.value.code) == (404, "unknown_module")


def test_cancelling_a_running_job_gives_a_receipt_that_says_cancelled(daemon) -> None:
    with daemon.client() as client:
        job_id = start_spinning_job(client)
        answer = client.cancel(job_id)
        job = wait_for_status(client, job_id)
    assert answer == {"job_id": job_id, "status": "cancelling"}
    assert job["status"] == "cancelled"
    receipt = checked_result(job["result"])
    assert receipt.outcome == "cancelled"


def test_cancelling_a_queued_job_finishes_it_cancelled_without_running(daemon_factory, tmp_path
                                                                        ) -> None:
    config = tmp_path / "one.toml"
    config.write_text("[executor]\ncount = 1\n")
    daemon = daemon_factory(None, config=config)
    with daemon.client() as client:
        # One executor takes two jobs (prefetch); the third waits in the queue.
        spinning = [client.submit(module=example_bytes("loop"), limits=SPIN_LIMITS)["job_id"]
                    for _ in range(3)]
        queued = spinning[-1]
        answer = client.cancel(queued)
        job = wait_for_status(client, queued)
        for job_id in spinning[:-1]:
            client.cancel(job_id)
            wait_for_status(client, job_id)
    assert answer == {"job_id": queued, "status": "cancelled"}
    assert job["status"] == "cancelled"
    assert job["started_at_ms"] is None
    assert "result" not in job


def test_cancelling_a_finished_job_is_409(daemon) -> None:
    with daemon.client() as client:
        job_id = client.submit(module=example_bytes("hello"), wait=30)["job_id"]
        with pytest.raises(ApiRequestError) as caught:
            client.cancel(job_id)
    assert (caught.value.status, caught.value.code) == (409, "not_cancellable")


def test_unknown_job_id_is_404(daemon) -> None:
    with daemon.client() as client:
        for call in (client.job, client.cancel):
            with pytest.raises(ApiRequestError) as caught:
                call("0" * 32)
            assert caught.value.status == 404


def test_malformed_job_id_is_404(daemon) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.job("not-a-job")
    assert caught.value.status == 404


@pytest.mark.parametrize("wait", [None, 10])
def test_limits_above_the_node_maximum_are_400_limits_exceeded(daemon, wait) -> None:
    with daemon.client() as client:
        node_max = client.node()["limits"]["max"]
        for name, allowed in node_max.items():
            with pytest.raises(ApiRequestError) as caught:
                client.submit(
                    module=example_bytes("hello"), limits={name: allowed + 1}, wait=wait
                )
            assert (caught.value.status, caught.value.code) == (400, "limits_exceeded")
            assert name in caught.value.message


def test_a_job_at_the_node_maximum_is_accepted(daemon) -> None:
    with daemon.client() as client:
        node_max = client.node()["limits"]["max"]
        result = client.submit(module=example_bytes("hello"),
                               limits={"fuel": node_max["fuel"]}, wait=30)
    assert checked_result(result).limits.fuel == node_max["fuel"]


def test_wait_that_expires_answers_202_and_the_job_keeps_running(daemon) -> None:
    with daemon.client() as client:
        accepted = client.submit(module=example_bytes("loop"), limits=SPIN_LIMITS, wait=0.2)
        assert accepted["status"] == "queued"
        job = wait_for_status(client, accepted["job_id"], frozenset({"running"}))
        client.cancel(job["job_id"])
        assert wait_for_status(client, job["job_id"])["status"] == "cancelled"
