from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from plasm.actors.journal_store import INTERRUPTED_ERROR, JournalStore

WRITER = Path(__file__).with_name("crash_writer.py")
REPORTED = 200


def envelope_for(job_id: str) -> bytes:
    # Same formula as crash_writer.envelope_for; kept separate so the test does not trust
    # the writer's code to tell it what the right bytes are.
    return b"\x00\xffenvelope:" + hashlib.sha256(job_id.encode()).digest() * 8


def kill_writer_mid_loop(journal: Path) -> list[str]:
    """Start the writer, wait for REPORTED committed jobs, SIGKILL it; return those ids."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(journal), str(REPORTED)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        committed = [proc.stdout.readline().strip() for _ in range(REPORTED)]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return committed


@pytest.mark.timeout(60)
def test_journal_recovers_after_the_writer_is_killed_mid_job(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    committed = kill_writer_mid_loop(journal)

    with JournalStore(journal) as store:
        before = store.counts_by_status()
        interrupted = store.recover(now_ms=10**13)
        after = store.counts_by_status()
        records = store.list_jobs(limit=10**9)

    # The queued and running jobs left before the loop, and any loop job caught half way.
    assert interrupted[:2] == [f"{1:032x}", f"{2:032x}"]
    assert len(interrupted) == before["queued"] + before["running"]
    assert after["queued"] == after["running"] == 0
    assert after["interrupted"] == len(interrupted)
    for record in records:
        if record.job_id in interrupted:
            assert (record.status, record.error) == ("interrupted", INTERRUPTED_ERROR)
        else:
            assert record.status == "done"
            assert record.envelope == envelope_for(record.job_id)
    by_id = {record.job_id: record for record in records}
    assert all(by_id[jid].envelope == envelope_for(jid) for jid in committed)


@pytest.mark.timeout(60)
def test_a_recovered_journal_accepts_new_jobs(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    kill_writer_mid_loop(journal)

    with JournalStore(journal) as store:
        store.recover(now_ms=10**13)
        store.add_job("f" * 32, b"{}", "00" * 32, created_at_ms=10**13)
        store.mark_running("f" * 32, started_at_ms=10**13)

        record = store.get_job("f" * 32)
    assert record is not None and record.status == "running"
