"""Jobs per second through the journal: add_job + mark_running + finish_job (with receipt).

Run: .venv/bin/python -m bench journal [--jobs N]

Prints figures for synchronous=normal and synchronous=full, and their ratio, measured in one
run on a temporary file in the system temp dir (so on the same disk). No assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from plasm.actors.journal_store import JournalStore

MANIFEST = b'{"module_sha256":"' + b"ab" * 32 + b'","args":["hello"],"stdin":"aGVsbG8="}'
RESULT = b'{"job_id":"x","status":"done","stdout":"SGVsbG8sIFdvcmxkIQo="}' + b" " * 800
ENVELOPE = os.urandom(420)  # about the size of a real receipt envelope


def jobs_per_second(path: Path, synchronous: str, jobs: int) -> float:
    with JournalStore(path, synchronous=synchronous) as store:
        start = time.perf_counter()
        for n in range(jobs):
            job_id = f"{n:032x}"
            store.add_job(job_id, MANIFEST, "ab" * 32, created_at_ms=n)
            store.mark_running(job_id, started_at_ms=n)
            store.finish_job(
                job_id,
                "done",
                finished_at_ms=n,
                outcome="ok",
                result=RESULT,
                envelope=ENVELOPE,
                error=None,
            )
        elapsed = time.perf_counter() - start
    return jobs / elapsed


def module_puts_per_second(path: Path, count: int) -> float:
    modules = [os.urandom(16 * 1024) for _ in range(count)]
    with JournalStore(path) as store:
        start = time.perf_counter()
        for data in modules:
            store.put_module(hashlib.sha256(data).hexdigest(), data)
        elapsed = time.perf_counter() - start
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        normal = jobs_per_second(Path(tmp) / "normal.sqlite3", "normal", args.jobs)
        full = jobs_per_second(Path(tmp) / "full.sqlite3", "full", max(args.jobs // 5, 100))
        puts = module_puts_per_second(Path(tmp) / "modules.sqlite3", 500)
        print(f"journal synchronous=normal: {normal:10,.0f} jobs/s (3 transactions per job)")
        print(f"journal synchronous=full:   {full:10,.0f} jobs/s")
        print(f"normal / full ratio:        {normal / full:10.1f}x")
        print(f"put_module (16 KiB, new):   {puts:10,.0f} modules/s")


if __name__ == "__main__":
    main()
