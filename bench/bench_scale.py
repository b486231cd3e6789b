"""`python -m bench scale`: devnets of 20, 50 and 100 plasmd, as issue 15 measures them.

For each size N (`--nodes 20,50,100`):

1. `plasm.devnet.Devnet` starts N `plasmd run` on 127.0.0.1, joined through the first,
   with the default `network.max_connections` (64) unless `--max-connections`; "ready" is
   the time until every node holds a verified capability record of a peer (target: <= 60 s
   at 100 nodes).
2. After `--settle` seconds, 10 random nodes (`--from`) each place `--jobs` hello.wasm jobs
   with placement `any` (exclude_self) one after another, and as many `local` jobs
   interleaved with them: the local job is the baseline measured in the same run (placement
   p50 target: <= 0.1 s).
3. Connections per node (`GET /v1/node`: every node, the bootstrap node named; none may be
   above the cap), RSS per node (/proc/PID/status VmRSS).
4. DHT messages per placed job: the sum over all nodes of `plasm_dht_requests_served_total`
   (`/metrics`) across the placement phase, less the same sum over an idle window of the same
   length right after it (background refresh and republishing), divided by the jobs placed.
   The idle rate is reported too, per node and minute. Flat from 20 to 100 is the target.
5. Stops every daemon it started (by PID) and removes their folders.

Prints one table row per size and, with `--json FILE`, the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_sim import HELLO, STDIN, percentile
from plasm.client import Client, ClientError
from plasm.devnet import Devnet

DEFAULT_MAX_CONNECTIONS = 64
TARGET_READY_S = 60.0  # at 100 nodes
TARGET_P50_S = 0.1
DHT_COUNTER = re.compile(r"^plasm_dht_requests_served_total (\d+)$", re.M)


def _config(max_connections: int) -> str:
    return (
        '[executor]\ncpu_affinity = "off"\n'
        f"[network]\nmax_connections = {max_connections}\n"
        '[log]\nlevel = "warning"\n'
    )


def _timed(client: Client, module: bytes, placement: dict[str, Any]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        result = client.submit(
            module=module, module_name="hello.wasm", stdin=STDIN, placement=placement, wait=60
        )
    except ClientError as exc:
        return (time.perf_counter() - started) * 1e3, f"client: {exc}"
    elapsed = (time.perf_counter() - started) * 1e3
    ok = result.get("status") == "done" and result.get("outcome", {}).get("kind") == "ok"
    return elapsed, "ok" if ok else str((result.get("error") or {}).get("code", "failed"))


def _dht_total(net: Devnet) -> int:
    total = 0
    for node in net.nodes:
        with Client(node.socket, timeout=20) as client:
            found = DHT_COUNTER.search(client.metrics())
        total += int(found.group(1)) if found else 0
    return total


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(count: int, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    module = HELLO.read_bytes()
    folder = Path(tempfile.mkdtemp(prefix="pbs-", dir="/tmp"))
    config = folder / "plasmd.toml"
    config.write_text(_config(args.max_connections))
    net = Devnet(count=count, folder=folder / "n", config=config)
    started = time.monotonic()
    try:
        net.start(timeout=120.0 + 3.0 * count, progress=lambda text: print(f"  {text}"))
        ready_s = time.monotonic() - started
        time.sleep(args.settle)
        senders = rng.sample(net.nodes, min(args.senders, count))
        any_ms: list[float] = []
        local_ms: list[float] = []
        codes: dict[str, int] = {}
        clients = {node.name: Client(node.socket, timeout=90) for node in senders}
        try:
            dht_before = _dht_total(net)
            phase_started = time.monotonic()
            for _ in range(args.jobs):
                for node in senders:
                    client = clients[node.name]
                    local_ms.append(_timed(client, module, {"mode": "local"})[0])
                    elapsed, code = _timed(client, module, {"mode": "any", "exclude_self": True})
                    codes[code] = codes.get(code, 0) + 1
                    if code == "ok":
                        any_ms.append(elapsed)
            phase_s = time.monotonic() - phase_started
            dht_placing = _dht_total(net) - dht_before
            time.sleep(phase_s)
            dht_idle = _dht_total(net) - dht_before - dht_placing
        finally:
            for client in clients.values():
                client.close()
        connections = {}
        for node in net.nodes:
            with Client(node.socket, timeout=20) as client:
                connections[node.name] = client.node()["network"]["connected_peers"]
        rss = [_rss_mib(node.proc.pid) for node in net.nodes if node.proc is not None]
    finally:
        net.stop()
        net.remove()
        shutil.rmtree(folder, ignore_errors=True)
    placed = len(any_ms)
    return {
        "nodes": count,
        "max_connections": args.max_connections,
        "ready_s": ready_s,
        "jobs": args.jobs * len(senders),
        "placed": placed,
        "codes": codes,
        "any_p50_ms": percentile(any_ms, 0.50),
        "any_p99_ms": percentile(any_ms, 0.99),
        "local_p50_ms": percentile(local_ms, 0.50),
        "connections_max": max(connections.values()),
        "connections_mean": statistics.fmean(connections.values()),
        "connections_bootstrap": connections[net.nodes[0].name],
        "rss_mean_mib": statistics.fmean(rss),
        "rss_max_mib": max(rss),
        "dht_per_job": (dht_placing - dht_idle) / max(1, placed),
        "dht_idle_per_node_min": dht_idle / count / max(phase_s, 1e-9) * 60,
        "phase_s": phase_s,
    }


def _row(r: dict[str, Any]) -> str:
    ratio = r["any_p50_ms"] / r["local_p50_ms"] if r["local_p50_ms"] else float("nan")
    return (
        f"{r['nodes']:>5} {r['ready_s']:>7.1f} {r['placed']:>4}/{r['jobs']:<4}"
        f"{r['any_p50_ms']:>8.1f} {r['any_p99_ms']:>8.1f} {r['local_p50_ms']:>7.1f} "
        f"{ratio:>6.1f}x {r['connections_max']:>5} {r['connections_bootstrap']:>5} "
        f"{r['connections_mean']:>6.1f} {r['rss_mean_mib']:>6.0f} {r['rss_max_mib']:>6.0f} "
        f"{r['dht_per_job']:>8.1f} {r['dht_idle_per_node_min']:>8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="20,50,100", help="devnet sizes, comma-separated")
    parser.add_argument("--senders", type=int, default=10, help="nodes that place jobs")
    parser.add_argument("--jobs", type=int, default=5, help="`any` jobs per sending node")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds between ready and the first job")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    try:
        sizes = [int(n) for n in args.nodes.split(",")]
    except ValueError:
        raise SystemExit(f"--nodes takes sizes like 20,50,100, not {args.nodes!r}") from None
    if any(n < 2 for n in sizes):
        raise SystemExit("--nodes: a devnet needs at least 2 nodes to place jobs on a peer")
    rng = random.Random(args.seed)
    results = []
    for count in sizes:
        print(f"devnet of {count} nodes:")
        results.append(measure(count, args, rng))
    print(
        f"\n{'nodes':>5} {'ready s':>7} {'placed':>9}{'p50 ms':>8} {'p99 ms':>8} "
        f"{'local':>7} {'x loc':>7} {'conn':>5} {'boot':>5} {'mean':>6} {'RSS':>6} "
        f"{'max':>6} {'DHT/job':>8} {'DHT idle':>8}"
    )
    for r in results:
        print(_row(r))
    print(
        f"connections: max over all nodes / the bootstrap node / mean (cap "
        f"{args.max_connections}); RSS MiB mean / max; DHT/job: Kademlia requests per placed "
        f"job above the idle rate; DHT idle: requests per node per minute with no jobs"
    )
    for r in results:
        over = r["connections_max"] > args.max_connections
        print(f"{r['nodes']} nodes: placement p50 {r['any_p50_ms'] / 1e3:.3f} s (target <= "
              f"{TARGET_P50_S:g} s: {'met' if r['any_p50_ms'] / 1e3 <= TARGET_P50_S else 'NOT met'}"
              f"); connections {'ABOVE' if over else 'within'} the cap; outcomes {r['codes']}")
        if r["nodes"] == 100:
            met = r["ready_s"] <= TARGET_READY_S
            print(f"  ready in {r['ready_s']:.0f} s (target <= {TARGET_READY_S:g} s at 100: "
                  f"{'met' if met else 'NOT met'})")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
