"""A quorum job (3 replicas, 2 must agree) against a plain remote job, in the same run.

    python -m bench quorum [--jobs N] [--clients C]

Starts three executors (A, the seed, then C and D bootstrapping from it) and the
requester B, each a real plasmd in its own temporary state dir on 127.0.0.1, and waits
until B holds all three verified capability records. Then, from B's API over its Unix
socket (module bytes in every request):

  remote      placement {"mode": "peer", "peer_id": A}: one peer, one receipt checked;
  any         placement {"mode": "any", "exclude_self": true}: adds the discovery lookup;
  quorum      placement {"mode": "any", "replicas": 3, "quorum": 2}: the job runs on A, C
              and D at once, B checks the three receipts and compares their agreement keys
              (it waits for all three, so a dissenter would be named);
  concurrent  C client threads submitting remote, then quorum jobs: jobs/s of each.

Every figure is a ratio to the remote job measured in the same run (the machine drifts by
+-30%). All executors are honest here: the cost of disagreement (more replicas) is the cost
of more quorum rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

try:
    from bench.bench_p2p import Daemon, concurrent_rate, submit, timed_ms, wait_for_capabilities
except ModuleNotFoundError:  # python bench/bench_quorum.py: bench/ is sys.path[0]
    from bench_p2p import (  # type: ignore[no-redef]
        Daemon,
        concurrent_rate,
        submit,
        timed_ms,
        wait_for_capabilities,
    )

from plasm.client import Client

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "wasm-examples" / "hello.wasm"


def submit_quorum(client: Client, module: bytes, placement: dict[str, Any]) -> list[str]:
    result = client.submit(
        module=module, module_name="hello.wasm", stdin=b"Hello, World", placement=placement,
        wait=60,
    )
    quorum = result.get("quorum") or {}
    if result.get("status") != "done" or not quorum.get("agreed"):
        raise SystemExit(f"a quorum job did not agree: {result}")
    return [str(peer) for peer in quorum["agreeing"]]


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    module = HELLO.read_bytes()
    with tempfile.TemporaryDirectory(prefix="plasm-quorum-") as tmp:
        daemons: list[Daemon] = []
        try:
            cpus = sorted(os.sched_getaffinity(0))
            a = Daemon(Path(tmp) / "a", "a", executors=4, bootstrap=None, cpu=cpus[0])
            daemons.append(a)
            seed = a.node["addresses"][0]
            for index, name in enumerate(("c", "d")):
                cpu = cpus[(index + 1) % len(cpus)]
                daemons.append(Daemon(Path(tmp) / name, name, 4, bootstrap=seed, cpu=cpu))
            b = Daemon(Path(tmp) / "b", "b", executors=1, bootstrap=seed, cpu=cpus[-1])
            daemons.append(b)
            for executor in daemons[:3]:
                wait_for_capabilities(b, executor.node["peer_id"])
            remote = {"mode": "peer", "peer_id": a.node["peer_id"]}
            anywhere = {"mode": "any", "exclude_self": True}
            quorum = {"mode": "any", "replicas": 3, "quorum": 2}
            with b.client() as client:
                timed_ms(lambda: submit(client, module, remote), 30)  # warm up every path
                timed_ms(lambda: submit(client, module, anywhere), 30)
                agreeing = submit_quorum(client, module, quorum)
                timed_ms(lambda: submit_quorum(client, module, quorum), 30)
                remote_times = timed_ms(lambda: submit(client, module, remote), args.jobs)
                any_times = timed_ms(lambda: submit(client, module, anywhere), args.jobs)
                quorum_times = timed_ms(lambda: submit_quorum(client, module, quorum), args.jobs)
            remote_rate = concurrent_rate(b, module, remote, args.clients, args.jobs)
            quorum_rate = concurrent_rate(b, module, quorum, args.clients, args.jobs,
                                          one=submit_quorum)
        finally:
            for daemon in reversed(daemons):
                daemon.stop()
    base = statistics.median(remote_times)
    print(f"hello.wasm from B, executors A, C, D on loopback, {args.jobs} jobs each, "
          f"{os.cpu_count()} CPUs; a quorum job agreed on {len(agreeing)} of 3 replicas")
    print(f"{'measure':<36}{'ms':>9}{'x remote':>10}")
    for name, times in (("remote job B->A", remote_times), ("remote job B->any", any_times),
                        ("quorum job k=3 m=2", quorum_times)):
        for label, value in (("median", statistics.median(times)),
                             ("p99", percentile(times, 0.99))):
            print(f"{name + ' ' + label:<36}{value:>9.2f}{value / base:>10.2f}")
    print(f"concurrent, {args.clients} clients: remote {remote_rate:.0f} jobs/s, quorum "
          f"{quorum_rate:.0f} jobs/s ({quorum_rate / remote_rate:.2f}x remote)")


if __name__ == "__main__":
    main()
