"""`plasmd devnet --nodes N`: N daemons on this machine, joined, until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

COLUMNS = ("name", "peer id", "api socket", "address")
EXIT_FAILED = 1


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Start N plasmd daemons on this machine as separate processes (each with its own "
        "state directory, API socket and log under DIR, listening on 127.0.0.1 on free "
        "ports), join them through the first, and print a table of their names, peer IDs "
        "and sockets once every node has verified a peer's capability record. Ctrl-C (or "
        "SIGTERM) stops them all and removes what they made unless --keep. Talk to a node "
        "with e.g. `plasmd submit --socket DIR/node-1/api.sock --anywhere hello.wasm`."
    )
    parser.add_argument("--nodes", type=int, default=3, metavar="N",
                        help="how many daemons (default 3)")
    parser.add_argument("--dir", type=Path, metavar="DIR",
                        help="where their folders go (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the nodes' folders (keys, journals, logs) when stopping")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a plasmd config for every node (default: the defaults, "
                             "with executor.cpu_affinity = \"off\")")
    parser.add_argument("--timeout", type=float, default=180.0, metavar="SECONDS",
                        help="how long the nodes may take to come up and find each other "
                             "(default 180)")
    parser.add_argument("--json", action="store_true",
                        help='print {"dir": ..., "nodes": [{name, peer_id, socket, '
                             'address, pid, state_dir, log}, ...]} as one line instead of '
                             "the table")


def main(args: argparse.Namespace) -> int:
    import orjson

    from plasm.commands.peers import format_table
    from plasm.devnet import Devnet, DevnetError, default_folder

    if args.nodes < 1:
        print("plasmd devnet: error: --nodes must be at least 1", file=sys.stderr)
        return 2
    if args.config is not None and not args.config.is_file():
        print(f"plasmd devnet: error: no config file at {args.config}", file=sys.stderr)
        return 2
    owned = args.dir is None
    folder = default_folder() if owned else args.dir
    devnet = Devnet(args.nodes, folder, config=args.config, owns_folder=owned)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        try:
            devnet.start(args.timeout, progress=lambda text: print(text, file=sys.stderr))
        except DevnetError as exc:
            print(f"plasmd devnet: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        if stopping:
            return 0
        took = time.monotonic() - started
        if args.json:
            nodes = [node.as_json() for node in devnet.nodes]
            sys.stdout.buffer.write(orjson.dumps({"dir": str(folder), "nodes": nodes}) + b"\n")
        else:
            rows: list[tuple[str, ...]] = [
                (n.name, n.peer_id, str(n.socket), n.address) for n in devnet.nodes
            ]
            print(format_table(rows, COLUMNS))
            print(f"\n{len(rows)} nodes ready in {took:.1f} s under {folder}; "
                  "Ctrl-C stops them" + ("" if args.keep else " and removes that folder"))
        sys.stdout.flush()
        reported: set[str] = set()
        while not stopping:
            for node in devnet.exited():
                if node.name not in reported:
                    reported.add(node.name)
                    print(f"plasmd devnet: {node.name} exited with status "
                          f"{node.proc.returncode if node.proc else '?'}; see {node.log_path}",
                          file=sys.stderr)
            time.sleep(0.2)
        return 0
    finally:
        print("stopping the devnet's nodes", file=sys.stderr)
        devnet.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            devnet.remove()

