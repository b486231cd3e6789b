"""A daemon as production runs it: strict message checking off (the tests turn it on).

Strict mode round-trips every actor message through CBOR; production passes the objects
as they are. This runs the same path with strict mode off, so a difference between the
two (an object that only works after a round trip, say) cannot hide.
"""

from __future__ import annotations

import pytest
from daemon_checks import checked_result, example_bytes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_jobs_run_and_fail_cleanly_with_strict_messages_off(daemon_factory) -> None:
    daemon = daemon_factory(
        env={"PLASM_STRICT_MESSAGES": "0", "PLASM_FAULTS": "ExecutorActor.ExecuteJob=1"}
    )
    with daemon.client() as client:
        failed = client.submit(module=example_bytes("hello"), wait=20)
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "internal_error"
        done = client.submit(module=example_bytes("hello"), stdin=b"prod", wait=20)
        assert done["status"] == "done"
        assert done["stdout_text"] == "dorp\n"
        assert checked_result(done).outcome == "ok"
        sha256 = client.upload_module(example_bytes("exit3"))
        by_hash = client.submit(module_sha256=sha256, wait=20)
        assert by_hash["outcome"]["exit_code"] == 3
        assert client.job(done["job_id"])["status"] == "done"
    assert daemon.stop() == 0
