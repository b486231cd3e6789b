"""Backpressure: a full queue answers 429, and nothing already accepted is dropped."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from daemon_checks import (
    FINAL_STATUSES,
    SPIN_LIMITS,
    example_bytes,
    wait_for_status,
    write_config,
)

from plasm.client import ApiRequestError

pytestmark = pytest.mark.integration

FLOOD_SUBMISSIONS = 10_000
FLOOD_THREADS = 4
RSS_BOUND_BYTES = 500 * 2**20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.mark.timeout(90)
def test_a_full_queue_answers_429_and_keeps_every_accepted_job(daemon_factory, tmp_path
                                                               ) -> None:
    config = write_config(tmp_path, "[executor]\ncount = 1\nqueue_length = 2\n")
    daemon = daemon_factory(None, config=config)
    accepted: list[str] = []
    refusal: ApiRequestError | None = None
    with daemon.client() as client:
        for _ in range(20):
            try:
                accepted.append(client.submit(module=example_bytes("loop"),
                                              limits=SPIN_LIMITS)["job_id"])
            except ApiRequestError as exc:
                refusal = exc
                break
        assert refusal is not None, "20 spinning jobs were all accepted by a queue of 2"
        assert (refusal.status, refusal.code) == (429, "busy")
        assert "retry" in refusal.message
        # Still full: a second try is refused too, and nothing was journaled for it.
        with pytest.raises(ApiRequestError) as again:
            client.submit(module=example_bytes("hello"))
        assert again.value.status == 429
        with pytest.raises(ApiRequestError) as waiting:  # ?wait: an unconfirmed submit
            client.submit(module=example_bytes("hello"), wait=5)
        assert (waiting.value.status, waiting.value.code) == (429, "busy")
        assert len(client.jobs(limit=1000)) == len(accepted)
        for job_id in accepted:
            client.cancel(job_id)
        final = [wait_for_status(client, job_id)["status"] for job_id in accepted]
        # With room again, new jobs are served.
        assert client.submit(module=example_bytes("hello"), wait=30)["status"] == "done"
    assert len(accepted) >= 2
    assert final == ["cancelled"] * len(accepted)


@pytest.mark.timeout(150)
def test_memory_stays_bounded_when_jobs_arrive_faster_than_they_run(
    daemon_factory, tmp_path, record_property
) -> None:
    config = write_config(tmp_path, "[executor]\ncount = 1\nqueue_length = 100\n")
    daemon = daemon_factory(None, config=config)
    assert daemon.proc is not None
    # ~3 ms of guest work a job (loop.wasm until its fuel runs out): a hello.wasm job is
    # now faster than four API clients can submit, and the flood must outrun the executor.
    wasm = example_bytes("loop")
    accepted: list[str] = []
    refused: list[int] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    peak_rss = [rss_bytes(daemon.proc.pid)]

    def flood(count: int) -> None:
        with daemon.client() as client:
            for i in range(count):
                try:
                    job_id = client.submit(
                        module=wasm, stdin=b"%d" % i, limits={"fuel": 1_000_000}
                    )["job_id"]
                except ApiRequestError as exc:
                    with lock:
                        refused.append(exc.status)
                    continue
                except BaseException as exc:
                    unexpected.append(exc)
                    return
                with lock:
                    accepted.append(job_id)

    threads = [threading.Thread(target=flood, args=(FLOOD_SUBMISSIONS // FLOOD_THREADS,))
               for _ in range(FLOOD_THREADS)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak_rss.append(rss_bytes(daemon.proc.pid))
        threads[0].join(timeout=0.2)
    for thread in threads:
        thread.join()

    assert unexpected == []
    assert len(accepted) + len(refused) == FLOOD_SUBMISSIONS
    assert set(refused) <= {429}
    assert refused, "the flood never filled a queue of 100: it did not outrun one executor"
    with daemon.client() as client:
        statuses = {wait_for_status(client, job_id)["status"] for job_id in accepted}
        assert client.health() == {"status": "ok"}
    peak_rss.append(rss_bytes(daemon.proc.pid))
    for name, value in (("accepted", len(accepted)), ("refused", len(refused)),
                        ("peak_rss_mib", max(peak_rss) // 2**20)):
        record_property(name, value)
    assert statuses <= FINAL_STATUSES
    assert statuses == {"done"}
    assert max(peak_rss) < RSS_BOUND_BYTES
