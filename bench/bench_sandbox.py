"""Jobs per second of Sandbox.run for hello.wasm with a cached module (no assertions).

    python bench/bench_sandbox.py [--jobs N] [--threads T]

FINDINGS.md puts the floor of an in-process job at ~0.35-0.45 ms (~2,000 jobs/s) on one
thread; compare the numbers of one run, not across machines.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from plasm.runtime.job import JobInput, Limits, OutcomeKind
from plasm.runtime.sandbox import Sandbox

HELLO = Path(__file__).resolve().parent.parent / "wasm-examples" / "hello.wasm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limits = Limits()
    job_input = JobInput(stdin=b"Hello, World\n", module_name="hello.wasm")
    with Sandbox() as sandbox:
        module = sandbox.compile(HELLO.read_bytes())
        for _ in range(200):  # warm up
            sandbox.run(module, job_input, limits)

        def run_batch(count: int) -> int:
            ok = 0
            for _ in range(count):
                ok += sandbox.run(module, job_input, limits).kind == OutcomeKind.OK
            return ok

        per_thread = args.jobs // args.threads
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            ok = sum(pool.map(run_batch, [per_thread] * args.threads))
        elapsed = time.perf_counter() - started
    total = per_thread * args.threads
    print(
        f"hello.wasm, {args.threads} thread(s): {total} jobs in {elapsed:.3f} s = "
        f"{total / elapsed:,.0f} jobs/s, {elapsed / total * 1e6:.0f} us/job ({ok} ok)"
    )


if __name__ == "__main__":
    main()
