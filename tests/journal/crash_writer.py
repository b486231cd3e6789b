"""Child process for the crash test: writes to a journal until it is SIGKILLed.

Usage: python crash_writer.py JOURNAL_PATH REPORTED_JOBS

It leaves job 1 queued and job 2 running, prints ``ready``, then adds, runs and finishes jobs
3, 4, ... without end, printing the id of each of the first REPORTED_JOBS finished jobs once
its transaction committed. The parent kills it at some point in that loop.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from plasm.actors.journal_store import JournalStore


def envelope_for(job_id: str) -> bytes:
    """The receipt envelope the writer stores for ``job_id``; the test recomputes it."""
    return b"\x00\xffenvelope:" + hashlib.sha256(job_id.encode()).digest() * 8


def job_id(n: int) -> str:
    return f"{n:032x}"


def main() -> None:
    path, reported = Path(sys.argv[1]), int(sys.argv[2])
    store = JournalStore(path)
    store.add_job(job_id(1), b"{}", "00" * 32, created_at_ms=1)
    store.add_job(job_id(2), b"{}", "00" * 32, created_at_ms=2)
    store.mark_running(job_id(2), started_at_ms=3)
    print("ready", flush=True)
    n = 3
    while True:
        jid = job_id(n)
        store.add_job(jid, b'{"args":["x"]}', "00" * 32, created_at_ms=n)
        store.mark_running(jid, started_at_ms=n)
        store.finish_job(
            jid,
            "done",
            finished_at_ms=n,
            outcome="ok",
            result=b'{"status":"done"}',
            envelope=envelope_for(jid),
            error=None,
        )
        if n - 2 <= reported:
            print(jid, flush=True)
        n += 1


if __name__ == "__main__":
    main()
