"""hello.wasm on this machine: plain calls, the actor path, and plasmd execute-job (no assertions).

    python -m bench local [--jobs N] [--inflight K] [--rounds R] [--process-jobs P] [--json F]

floor:       one thread calls Sandbox.run, build_receipt and sign_receipt in a loop:
             the work a job needs, with no actors at all.
sequential:  Node.submit then wait, one job at a time (ingress -> executor -> signer).
pipelined:   one client keeps K jobs in flight; jobs/s is what the node sustains.
process:     `plasmd execute-job hello.wasm` as a new process, one at a time: what a shell
             script pays (interpreter start, imports, engine, key, node, one job).

Targets (issue 2): pipelined per-job time at most 1.3x the floor, and at least 1,000
jobs/s. The machine is noisy (about one effective core, +-30% drift), so the floor and the
actor path are measured in R interleaved rounds and each figure is its best round; ratios
are taken within the run. The client and the floor run on the node's home CPU, as the
daemon's API threads do (runtime/cpus.py); --cpu-affinity off measures without pinning.
Prints a table and writes every figure, with the raw latencies' percentiles, as JSON.

Measured on the 2-vCPU CI machine (why plasmd run pins, runtime/cpus.py): a pykka round
trip ~200 us across CPUs, ~40 us on one; two threads running small jobs on two CPUs finish
them at half the rate of one thread; SCHED_BATCH, hello.wasm with 8 in flight: 1.22-1.26x
the floor without it, 1.11-1.17x with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from rich.console import Console
from rich.table import Table

from plasm.actors.node import Node, NodeSettings, Submission
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import build_receipt, sign_receipt
from plasm.runtime.cpus import CpuPlan
from plasm.runtime.job import JobInput, Limits
from plasm.runtime.sandbox import Sandbox

HELLO = Path(__file__).resolve().parent.parent / "wasm-examples" / "hello.wasm"
STDIN = b"Hello, World"
TARGET_RATIO = 1.3
TARGET_JOBS_PER_S = 1000


def floor_latencies_us(sandbox: Sandbox, key: SigningKey, jobs: int) -> list[float]:
    module = HELLO.read_bytes()
    peer = peer_id_from_public_key(bytes(key.verify_key))
    job_input, limits = JobInput(stdin=STDIN, module_name="hello.wasm"), Limits()
    sha = sandbox.compile(module).sha256
    latencies = []
    for i in range(jobs):
        start = time.perf_counter()
        outcome = sandbox.run(module, job_input, limits)
        receipt = build_receipt(
            job_id=f"{i:032x}",
            module_sha256=sha,
            job_input=job_input,
            limits=limits,
            outcome=outcome,
            engine_name=sandbox.engine_name,
            engine_version=sandbox.engine_version,
            executor=peer,
            requester=peer,
            nonce=os.urandom(16),
        )
        sign_receipt(receipt, key)
        latencies.append((time.perf_counter() - start) * 1e6)
    return latencies


def _submit(node: Node, module: bytes) -> Submission:
    job_input, limits = JobInput(stdin=STDIN, module_name="hello.wasm"), Limits()
    # The caller waits for the result, so it need not wait for the acceptance too.
    return node.submit(
        module=module, module_sha256=None, job_input=job_input, limits=limits, confirm=False
    )


def sequential_latencies_us(node: Node, jobs: int) -> list[float]:
    module = HELLO.read_bytes()
    latencies = []
    for _ in range(jobs):
        start = time.perf_counter()
        _submit(node, module).done.get(timeout=30)
        latencies.append((time.perf_counter() - start) * 1e6)
    return latencies


def pipelined_us(node: Node, jobs: int, inflight: int) -> float:
    """Wall time per job with `inflight` jobs kept in flight."""
    module = HELLO.read_bytes()
    pending: deque[Submission] = deque()
    start = time.perf_counter()
    for _ in range(jobs):
        if len(pending) >= inflight:
            pending.popleft().done.get(timeout=30)
        pending.append(_submit(node, module))
    while pending:
        pending.popleft().done.get(timeout=30)
    return (time.perf_counter() - start) / jobs * 1e6


def process_latencies_us(jobs: int) -> list[float]:
    """`plasmd execute-job hello.wasm` as a fresh process each time (same venv)."""
    latencies = []
    with tempfile.TemporaryDirectory(prefix="plasm-bench-") as state:
        command = [
            sys.executable,
            "-m",
            "plasm.cli",
            "execute-job",
            str(HELLO),
            "--stdin",
            STDIN.decode(),
            "--state-dir",
            state,
        ]
        for _ in range(jobs + 1):  # the first run creates the key and the module cache
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, timeout=60, check=True)
            latencies.append((time.perf_counter() - start) * 1e6)
            assert done.stdout == STDIN[::-1] + b"\n", done.stdout
    return latencies[1:]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(latencies_us: list[float]) -> dict[str, float]:
    return {
        "median_us": statistics.median(latencies_us),
        "p99_us": percentile(latencies_us, 0.99),
        "mean_us": statistics.fmean(latencies_us),
        "samples": len(latencies_us),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench local", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per round and path")
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executors", type=int, default=0, help="0: one per core")
    parser.add_argument("--process-jobs", type=int, default=20, help="execute-job processes")
    parser.add_argument(
        "--cpu-affinity",
        type=lambda v: int(v) if v.isdigit() else v,
        default="auto",
        help='the node\'s CpuPlan: "auto" (default), "off" or a CPU number',
    )
    parser.add_argument("--json", type=Path, default=Path("bench-local.json"), help="output")
    args = parser.parse_args(argv)

    key = SigningKey(os.urandom(32))
    floors: list[list[float]] = []
    sequentials: list[list[float]] = []
    pipes: list[float] = []
    with Sandbox() as sandbox:
        cpus = CpuPlan.choose(args.cpu_affinity)
        settings = NodeSettings(
            executor_count=args.executors, queue_length=args.inflight * 4, cpus=cpus
        )
        node = Node(key, settings).start()
        try:
            with node.cpus.pinned():
                floor_latencies_us(sandbox, key, 200)  # warm up
                sequential_latencies_us(node, 200)  # warm up (compile, threads)
                for _ in range(args.rounds):
                    floors.append(floor_latencies_us(sandbox, key, args.jobs))
                    sequentials.append(sequential_latencies_us(node, args.jobs // 2))
                    pipes.append(pipelined_us(node, args.jobs, args.inflight))
            executors = node.stats().executors
        finally:
            node.stop()
    process = process_latencies_us(args.process_jobs)

    floor = min(floors, key=statistics.fmean)
    sequential = min(sequentials, key=statistics.fmean)
    pipe = min(pipes)
    floor_mean = statistics.fmean(floor)
    rows = {
        "floor": {**summary(floor), "jobs_per_s": 1e6 / floor_mean},
        "actors_sequential": {
            **summary(sequential),
            "jobs_per_s": 1e6 / statistics.fmean(sequential),
        },
        "actors_pipelined": {"mean_us": pipe, "jobs_per_s": 1e6 / pipe, "inflight": args.inflight},
        "execute_job_process": {
            **summary(process),
            "jobs_per_s": 1e6 / statistics.fmean(process),
        },
    }
    for row in rows.values():
        row["x_floor"] = row["mean_us"] / floor_mean
    ratio = rows["actors_pipelined"]["x_floor"]
    result: dict[str, Any] = {
        "bench": "local",
        "module": "hello.wasm",
        "cpus": os.cpu_count(),
        "executors": executors,
        "cpu_affinity": args.cpu_affinity,
        "jobs_per_round": args.jobs,
        "rounds": args.rounds,
        "paths": rows,
        "targets": {
            "pipelined_x_floor_max": TARGET_RATIO,
            "pipelined_x_floor": ratio,
            "jobs_per_s_min": TARGET_JOBS_PER_S,
            "jobs_per_s": rows["actors_pipelined"]["jobs_per_s"],
            "met": ratio <= TARGET_RATIO
            and rows["actors_pipelined"]["jobs_per_s"] >= TARGET_JOBS_PER_S,
        },
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    render(result, args.json)
    return result


def render(result: dict[str, Any], json_path: Path) -> None:
    table = Table(
        title=f"hello.wasm, {result['jobs_per_round']} jobs x {result['rounds']} rounds, "
        f"{result['executors']} executors, {result['cpus']} CPUs (best round of each)"
    )
    for column in ("path", "median µs", "p99 µs", "mean µs", "jobs/s", "x floor"):
        table.add_column(column, justify="left" if column == "path" else "right")
    names = {
        "floor": "floor (plain calls)",
        "actors_sequential": "actors, 1 at a time",
        "actors_pipelined": f"actors, {result['paths']['actors_pipelined']['inflight']} in flight",
        "execute_job_process": "execute-job process",
    }
    for key, row in result["paths"].items():
        table.add_row(
            names[key],
            f"{row['median_us']:,.0f}" if "median_us" in row else "—",
            f"{row['p99_us']:,.0f}" if "p99_us" in row else "—",
            f"{row['mean_us']:,.0f}",
            f"{row['jobs_per_s']:,.0f}",
            f"{row['x_floor']:.2f}",
        )
    console = Console()
    console.print(table)
    targets = result["targets"]
    console.print(
        f"target: pipelined <= {targets['pipelined_x_floor_max']}x floor -> "
        f"{targets['pipelined_x_floor']:.2f}x; >= {targets['jobs_per_s_min']:,} jobs/s -> "
        f"{targets['jobs_per_s']:,.0f} jobs/s "
        f"({'met' if targets['met'] else 'NOT met'}); JSON in {json_path}"
    )


if __name__ == "__main__":
    main()
