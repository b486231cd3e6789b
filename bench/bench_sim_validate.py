"""`python -m bench sim --validate N`: the simulator against a real devnet of N daemons.

1. Starts `plasm.devnet.Devnet` (N `plasmd run` on 127.0.0.1, joined through the first,
   logging at warning) and waits until each node holds a verified record of a peer; counts
   the records each node holds (the simulated `--known`).
2. Calibrates the simulator's cost figures on two of the nodes, never on `any` jobs:
   `local` jobs (placement local: the API, ingress, run and signing: `--api-ms`) and `peer`
   jobs to one peer, direct after the first (one exchange: 3 message steps and a loopback
   round trip: `--msg-cost-ms` = (peer - local - RTT) / 3), and a first job on up to 4
   peers it is connected to (an offer exchange more, and the compile: `--compile-ms`) and
   on up to 4 it must dial (`--connect-ms`); the share of known peers that are connected
   is `--connected`.
3. Places `--jobs` jobs one after another, each from a random node, placement
   {"mode": "any", "exclude_self": true}, wait 60 s: success, latency p50/p90/p99. The
   calibration's local and peer jobs are interleaved with them (one of each per `any`
   job), so both see the same load; all of it starts 10 s after the devnet is up. The
   "later jobs" rows leave out each node's first `any` job (its first remote job ever).
4. Stops every daemon it started (by PID) and removes their folders.
5. Simulates the same: N nodes, the same jobs at a rate that keeps them as sequential,
   every node alike (no liars, churn, weak or strong nodes), loopback RTT, the calibrated
   costs; prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_sim import HELLO, STDIN, percentile, report, simulate
from plasm.client import Client, ClientError
from plasm.devnet import Devnet

LOOPBACK_RTT_MS = 0.2
RUN_MS = 0.5  # hello.wasm in a warm sandbox, as the simulator's --job-ms
SETTLE_S = 10.0
# Every node joins through node-0: above 48 connections (3/4 of the default
# network.max_connections 64) it prunes to 32, and a pruned node that knew no one else
# stays alone; a 50-node devnet failed that way here, so the budget is raised.
CONFIG = (
    '[executor]\ncpu_affinity = "off"\n[network]\nmax_connections = 256\n'
    '[log]\nlevel = "warning"\n'
)


def _submit(client: Client, module: bytes, placement: dict[str, Any]) -> dict[str, Any]:
    return client.submit(
        module=module, module_name="hello.wasm", stdin=STDIN, placement=placement, wait=60
    )


def _timed(client: Client, module: bytes, placement: dict[str, Any]) -> tuple[float, bool, str]:
    started = time.perf_counter()
    try:
        result = _submit(client, module, placement)
    except ClientError as exc:
        return (time.perf_counter() - started) * 1e3, False, f"client: {exc}"
    elapsed = (time.perf_counter() - started) * 1e3
    ok = result.get("status") == "done" and result.get("outcome", {}).get("kind") == "ok"
    code = "ok" if ok else str((result.get("error") or {}).get("code", result.get("status")))
    return elapsed, ok, code


def measure_devnet(count: int, jobs: int, seed: int) -> dict[str, Any]:
    module = HELLO.read_bytes()
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="psv-", dir="/tmp"))
    config = folder / "plasmd.toml"
    config.write_text(CONFIG)
    net = Devnet(count=count, folder=folder / "n", config=config)
    started = time.monotonic()
    try:
        net.start(timeout=60.0 + 3.0 * count, progress=lambda text: print(f"devnet: {text}"))
        up_s = time.monotonic() - started
        time.sleep(SETTLE_S)  # let start-up work (dials, DHT refresh) die down
        known, connected, tables = [], [], {}
        for node in net.nodes:
            with Client(node.socket, timeout=10) as client:
                rows = [p for p in client.peers() if p.get("capabilities")]
            tables[node.name] = {p["peer_id"]: bool(p.get("connected")) for p in rows}
            known.append(len(rows))
            connected.append(sum(1 for p in rows if p.get("connected")))
        a = net.nodes[1 % count]
        table = tables[a.name]
        by_id = {n.peer_id: n for n in net.nodes}
        linked = [by_id[p] for p, up in table.items() if up and p in by_id]
        b = linked[0] if linked else net.nodes[2 % count]
        local_placement = {"mode": "local"}
        peer = {"mode": "peer", "peer_id": b.peer_id}
        anywhere = {"mode": "any", "exclude_self": True}
        local, direct, latencies, later, codes = [], [], [], [], []
        used: set[str] = set()
        clients = {node.name: Client(node.socket, timeout=90) for node in net.nodes}
        try:
            calibrating = clients[a.name]
            for _ in range(3):
                _timed(calibrating, module, local_placement)
                _timed(calibrating, module, peer)
            # a module's first job on a peer: offer + job exchanges and the compile there,
            # on a peer `a` is connected to, and on one it must dial first
            others = [n for n in net.nodes if n not in (a, b)]
            near = [n for n in others if table.get(n.peer_id)][:4]
            far = [n for n in others if not table.get(n.peer_id)][:4]
            cold, dialed = (
                [_timed(calibrating, module, {"mode": "peer", "peer_id": n.peer_id})[0]
                 for n in group]
                for group in (near, far)
            )  # fmt: skip
            # interleaved, so that calibration and measurement share the machine's load
            for _ in range(jobs):
                local.append(_timed(calibrating, module, local_placement)[0])
                direct.append(_timed(calibrating, module, peer)[0])
                node = net.nodes[rng.randrange(count)]
                elapsed, ok, code = _timed(clients[node.name], module, anywhere)
                codes.append(code)
                if ok:
                    latencies.append(elapsed)
                    if node.name in used:
                        later.append(elapsed)
                used.add(node.name)
        finally:
            for client in clients.values():
                client.close()
    finally:
        net.stop()
        net.remove()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return {
        "nodes": count,
        "up_s": up_s,
        "known_mean": statistics.fmean(known),
        "known_min": min(known),
        "local_ms": statistics.median(local),
        "direct_ms": statistics.median(direct),
        "cold_ms": statistics.median(cold) if cold else None,
        "dialed_ms": statistics.median(dialed) if dialed else None,
        "connected_share": sum(connected) / max(1, sum(known)),
        "local_p90_ms": percentile(local, 0.90),
        "local_p99_ms": percentile(local, 0.99),
        "direct_p90_ms": percentile(direct, 0.90),
        "direct_p99_ms": percentile(direct, 0.99),
        "jobs": jobs,
        "succeeded": len(latencies),
        "success_pct": 100.0 * len(latencies) / jobs,
        "codes": {c: codes.count(c) for c in sorted(set(codes))},
        "p50_ms": percentile(latencies, 0.50),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "later_jobs": len(later),
        "later_p50_ms": percentile(later, 0.50),
        "later_p90_ms": percentile(later, 0.90),
        "later_p99_ms": percentile(later, 0.99),
    }


def sim_args(base: argparse.Namespace, devnet: dict[str, Any]) -> argparse.Namespace:
    args = argparse.Namespace(**vars(base))
    msg_cost = max(0.01, (devnet["direct_ms"] - devnet["local_ms"] - LOOPBACK_RTT_MS) / 3)
    args.nodes = devnet["nodes"]
    args.jobs = devnet["jobs"]
    args.rate = 1000.0 / max(1.0, 3 * devnet["p50_ms"])  # about one job at a time
    args.liars = args.churn = args.weak = args.strong = args.big = args.no_capacity = 0.0
    args.latency_ms, args.latency_sigma = LOOPBACK_RTT_MS, 0.3
    args.msg_cost_ms = msg_cost
    args.job_ms = RUN_MS
    exchange = 3 * msg_cost + LOOPBACK_RTT_MS
    cold, dialed = devnet["cold_ms"], devnet["dialed_ms"]
    args.compile_ms = max(0.0, cold - devnet["direct_ms"] - exchange) if cold else 0.0
    args.connect_ms = max(0.0, dialed - cold - 2 * LOOPBACK_RTT_MS) if cold and dialed else 20.0
    args.connected = devnet["connected_share"]
    args.api_ms = max(0.0, devnet["local_ms"] - RUN_MS)
    args.known = max(1, round(devnet["known_mean"]))
    args.slots = 2
    return args


def validate(base: argparse.Namespace) -> None:
    count = base.validate
    if count < 3:
        raise SystemExit("--validate needs at least 3 nodes")
    jobs = base.jobs if base.jobs != 10_000 else 100  # the simulator's default is too many
    devnet = measure_devnet(count, jobs, base.seed)
    args = sim_args(base, devnet)
    print(
        f"devnet: {count} nodes up in {devnet['up_s']:.0f} s; verified records per node: mean "
        f"{devnet['known_mean']:.1f}, min {devnet['known_min']}, {100 * args.connected:.0f}% of "
        f"them connected; calibration: local job "
        f"{devnet['local_ms']:.1f} ms, direct peer job {devnet['direct_ms']:.1f} ms, first job "
        f"on a connected peer {devnet['cold_ms'] or float('nan'):.1f} ms, on one dialed "
        f"{devnet['dialed_ms'] or float('nan'):.1f} ms -> --api-ms {args.api_ms:.1f} "
        f"--msg-cost-ms {args.msg_cost_ms:.2f} --compile-ms {args.compile_ms:.1f} "
        f"--connect-ms {args.connect_ms:.1f}"
    )
    sim = simulate(args)
    report(sim, args)
    title = f"any jobs, {count} nodes"
    print(f"\n{title:<24}{'devnet':>10}{'sim':>10}{'sim/devnet':>12}")
    for name, key in (("success %", "success_pct"), ("p50 ms", "p50_ms"),
                      ("p90 ms", "p90_ms"), ("p99 ms", "p99_ms"),
                      ("later jobs: p50 ms", "later_p50_ms"),
                      ("later jobs: p90 ms", "later_p90_ms"),
                      ("later jobs: p99 ms", "later_p99_ms")):  # fmt: skip
        real, model = devnet[key], sim[key]
        ratio = model / real if real else float("nan")
        print(f"{name:<24}{real:>10.1f}{model:>10.1f}{ratio:>12.2f}")
    print(
        f"later jobs: not the first job a node asked for ({devnet['later_jobs']} on the devnet, "
        f"{sim['later_jobs']} simulated)"
    )
    print(f"devnet outcomes: {devnet['codes']}")
    print(
        "the machine's own tail, in the calibration jobs: local p90/p99 "
        f"{devnet['local_p90_ms']:.1f}/{devnet['local_p99_ms']:.1f} ms, direct peer p90/p99 "
        f"{devnet['direct_p90_ms']:.1f}/{devnet['direct_p99_ms']:.1f} ms"
    )
    if base.json is not None:
        base.json.write_text(json.dumps({"devnet": devnet, "sim": sim}, indent=2, sort_keys=True))
