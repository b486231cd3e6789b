"""Memory a stranger can make the node hold: queued jobs of one big module share its bytes."""

from __future__ import annotations

import pytest
from daemon_checks import example_bytes, start_spinning_job, wait_for_status, write_config

from bench._modules import padded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MIB = 2**20


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_queued_jobs_of_one_big_module_hold_its_bytes_once_and_give_memory_back(
    daemon_factory, tmp_path
) -> None:
    config = write_config(tmp_path, "[executor]\ncount = 1\nqueue_length = 64\n")
    daemon = daemon_factory(config=config)
    assert daemon.proc is not None
    module = padded(example_bytes("hello"), 20 * MIB, random=False)
    with daemon.client(timeout=60) as client:
        spinning = start_spinning_job(client)  # the one executor is busy: the rest queue
        warm = client.submit(module=module)  # the module's first copy, kept by the node
        before = _rss_mib(daemon.proc.pid)
        queued = [client.submit(module=module)["job_id"] for _ in range(30)]
        held = _rss_mib(daemon.proc.pid) - before
        for job_id in [*queued, warm["job_id"], spinning]:
            client.request("DELETE", f"/v1/jobs/{job_id}")
        for job_id in [*queued, warm["job_id"], spinning]:
            wait_for_status(client, job_id)
        after = _rss_mib(daemon.proc.pid) - before
    # 30 queued copies of a 20 MiB module would be 600 MiB; one copy is 20.
    print(f"RSS: +{held:.0f} MiB with 30 queued, +{after:.0f} MiB after they ended")
    assert held < 120, f"30 queued jobs of one 20 MiB module grew RSS by {held:.0f} MiB"
    assert after < 60, f"RSS still {after:.0f} MiB above the start after the jobs ended"
