"""Run one benchmark: python -m bench NAME, NAME one of:

local    hello.wasm as plain calls, through the actors, and via `plasmd execute-job`
         (issue 2's targets); a rich table, and JSON in bench-local.json
sandbox  Sandbox.run against bare wasmtime-py steps
api      a real plasmd over its Unix socket (issue 3's targets)
p2p      two plasmd on loopback, jobs run remotely (issue 4's targets)
quorum   a quorum job (3 replicas, 2 must agree) against a plain remote job
journal  SQLite journal writes
network  one PeerRequest on a kept libp2p connection
transfer a 64 MiB blob to a peer over /plasm/blob/1.0.0 vs plain trio TCP (issue 12)
scale    devnets of 20, 50 and 100 plasmd: time until ready, `any` placement latency
         against a local job, connections and RSS per node, DHT messages per job
sim      a discrete-event simulation of `any` placement on N nodes with liars and churn,
         driving the real sans-IO negotiation; --validate N compares it with a devnet

`python -m bench <name> --help` lists that benchmark's options. Each prints its figures
next to a baseline measured in the same run: this machine drifts by +-30%.
"""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "local": "bench.bench_actor_path",
    "sandbox": "bench.bench_sandbox",
    "api": "bench.bench_api",
    "p2p": "bench.bench_p2p",
    "quorum": "bench.bench_quorum",
    "journal": "bench.bench_journal",
    "network": "bench.bench_network",
    "transfer": "bench.bench_transfer",
    "scale": "bench.bench_scale",
    "sim": "bench.bench_sim",
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHES:
        print(__doc__, file=sys.stderr)
        return 0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2
    name = sys.argv[1]
    sys.argv = [f"python -m bench {name}", *sys.argv[2:]]
    importlib.import_module(BENCHES[name]).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
