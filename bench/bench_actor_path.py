"""hello.wasm through the actor path, against the same steps as plain calls (no assertions).

    python bench/bench_actor_path.py [--jobs N] [--inflight K] [--rounds R]

floor:       one thread calls Sandbox.run, build_receipt and sign_receipt in a loop:
             the work a job needs, with no actors at all.
sequential:  Node.submit then wait, one job at a time (ingress -> executor -> signer).
pipelined:   one client keeps K jobs in flight; jobs/s is what the node sustains.

Targets (issue 2): pipelined per-job time at most 1.3x the floor, and at least 1,000
jobs/s. The machine is noisy (about one effective core, +-30% drift), so each figure is
the best of R rounds, floor and actor path interleaved, and ratios are taken within
the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import deque
from pathlib import Path

from nacl.signing import SigningKey

from plasm.actors.node import Node, NodeSettings
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import build_receipt, sign_receipt
from plasm.runtime.cpus import CpuPlan
from plasm.runtime.job import JobInput, Limits
from plasm.runtime.sandbox import Sandbox

HELLO = Path(__file__).resolve().parent.parent / "wasm-examples" / "hello.wasm"
STDIN = b"Hello, World"


def floor_us(sandbox: Sandbox, key: SigningKey, jobs: int) -> float:
    module = HELLO.read_bytes()
    peer = peer_id_from_public_key(bytes(key.verify_key))
    job_input, limits = JobInput(stdin=STDIN, module_name="hello.wasm"), Limits()
    sha = sandbox.compile(module).sha256
    start = time.perf_counter()
    for i in range(jobs):
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
    return (time.perf_counter() - start) / jobs * 1e6


def sequential_us(node: Node, jobs: int) -> list[float]:
    module = HELLO.read_bytes()
    job_input, limits = JobInput(stdin=STDIN, module_name="hello.wasm"), Limits()
    latencies = []
    for _ in range(jobs):
        start = time.perf_counter()
        node.submit(
            module=module, module_sha256=None, job_input=job_input, limits=limits, confirm=False
        ).done.get(timeout=30)
        latencies.append((time.perf_counter() - start) * 1e6)
    return latencies


def pipelined_us(node: Node, jobs: int, inflight: int) -> float:
    module = HELLO.read_bytes()
    job_input, limits = JobInput(stdin=STDIN, module_name="hello.wasm"), Limits()
    pending: deque = deque()
    start = time.perf_counter()
    for _ in range(jobs):
        if len(pending) >= inflight:
            pending.popleft().done.get(timeout=30)
        pending.append(
            node.submit(
                module=module, module_sha256=None, job_input=job_input, limits=limits, confirm=False
            )
        )
    while pending:
        pending.popleft().done.get(timeout=30)
    return (time.perf_counter() - start) / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executors", type=int, default=0, help="0: one per core")
    parser.add_argument(
        "--cpu-affinity",
        type=lambda v: int(v) if v.isdigit() else v,
        default="auto",
        help='the node\'s CpuPlan: "auto" (default), "off" or a CPU number',
    )
    args = parser.parse_args()

    key = SigningKey(os.urandom(32))
    floors, seqs, pipes, latencies = [], [], [], []
    with Sandbox() as sandbox:
        floor_us(sandbox, key, 200)  # warm up
        cpus = CpuPlan.choose(args.cpu_affinity)
        settings = NodeSettings(
            executor_count=args.executors, queue_length=args.inflight * 4, cpus=cpus
        )
        node = Node(key, settings).start()
        try:
            # The client and the floor run on the node's home CPU, as the daemon's API
            # threads do (runtime/cpus.py); --cpu-affinity off measures without pinning.
            with node.cpus.pinned():
                sequential_us(node, 200)  # warm up (compile, threads)
                for _ in range(args.rounds):
                    floors.append(floor_us(sandbox, key, args.jobs))
                    lat = sequential_us(node, args.jobs // 2)
                    latencies += lat
                    seqs.append(statistics.mean(lat))
                    pipes.append(pipelined_us(node, args.jobs, args.inflight))
            executors = node.stats().executors
        finally:
            node.stop()
    floor, seq, pipe = min(floors), min(seqs), min(pipes)
    latencies.sort()
    print(
        f"hello.wasm, {args.jobs} jobs x {args.rounds} rounds, {executors} executors, "
        f"{os.cpu_count()} CPUs; best round of each"
    )
    print(f"{'path':<34}{'us/job':>10}{'jobs/s':>10}{'x floor':>10}")
    rows = [
        ("floor: run+receipt+sign, plain", floor),
        ("actors, sequential (latency)", seq),
        (f"actors, pipelined ({args.inflight} in flight)", pipe),
    ]
    for name, us in rows:
        print(f"{name:<34}{us:>10.0f}{1e6 / us:>10.0f}{us / floor:>10.2f}")
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"sequential latency p50 {p50:.0f} us, p99 {p99:.0f} us")
    print(
        f"target: pipelined <= 1.30x floor -> {pipe / floor:.2f}x; "
        f">= 1000 jobs/s -> {1e6 / pipe:.0f} jobs/s"
    )


if __name__ == "__main__":
    main()
