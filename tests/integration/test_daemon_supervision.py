"""Against a real plasmd: an actor that fails mid-job ends that job, and the daemon serves on.

Faults are injected with PLASM_FAULTS (actors/_faults.py), which the daemon reads at start:
the named actor's handler raises (or hangs) on the named message, as a bug would.
"""

from __future__ import annotations

import signal
import time

import pytest
from daemon_checks import example_bytes, wait_for_status, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.mark.parametrize(
    "point",
    [
        "ExecutorActor.ExecuteJob",
        "SignerActor.SignReceipt",
        "IngressActor.JobCompleted",
        "JournalActor.FinishJob",
    ],
)
def test_a_failing_actor_fails_the_job_it_held_and_the_daemon_keeps_serving(
    daemon_factory, point: str
) -> None:
    daemon = daemon_factory(env={"PLASM_FAULTS": f"{point}=1"})
    actor = point.partition(".")[0]
    with daemon.client() as client:
        failed = client.submit(module=example_bytes("hello"), stdin=b"abc", wait=20)
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "internal_error"
        assert actor in failed["error"]["message"]
        # journalled final, as the client was told
        assert client.job(failed["job_id"])["status"] == "failed"
        after = client.submit(module=example_bytes("hello"), stdin=b"abc", wait=20)
        assert after["status"] == "done"
        assert after["stdout_text"] == "cba\n"
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=30) == 0
    assert time.monotonic() - started < 10 + 5  # default grace 10 s, nothing running


def test_sigterm_with_a_job_stuck_in_an_actor_exits_within_the_grace_and_journals_it(
    daemon_factory, tmp_path
) -> None:
    config = write_config(tmp_path, '[shutdown]\ngrace_ms = "1s"\n')
    daemon = daemon_factory(config=config, env={"PLASM_FAULTS": "SignerActor.SignReceipt=hang"})
    with daemon.client() as client:
        accepted = client.submit(module=example_bytes("hello"))
        wait_for_status(client, accepted["job_id"], frozenset({"running"}))
        time.sleep(0.2)  # the executor is done with it; the signer holds it
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=30) == 0
    assert time.monotonic() - started < 1 + 5
    assert "actor_stuck" in daemon.log()

    again = daemon_factory(daemon.state_dir)
    with again.client() as client:
        job = client.job(accepted["job_id"])
    assert job["status"] == "interrupted"
