"""`plasmd peers`: the peers a running daemon knows, as a table or as JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from plasm.commands._options import add_socket, connect

EXIT_NO_NETWORK = 1
COLUMNS = ("peer id", "connected", "latency", "jobs run", "rejected", "disputed", "runtimes",
           "max fuel", "max memory", "addresses")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help='print the daemon\'s JSON answer ({"peers": [...]})')
    add_socket(parser)


def main(args: argparse.Namespace) -> int:
    import orjson

    from plasm.client import ApiRequestError

    with connect(args) as client:
        try:
            peers = client.peers()
        except ApiRequestError as exc:
            if exc.code != "network_disabled":
                raise
            print("plasmd peers: this node runs without the peer-to-peer network, so it knows "
                  "no peers (set network.enabled = true in its config and restart it)",
                  file=sys.stderr)
            return EXIT_NO_NETWORK
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"peers": peers}, option=orjson.OPT_INDENT_2)
                                + b"\n")
        return 0
    if not peers:
        print("no peers known yet")
        return 0
    print(format_table([peer_row(peer) for peer in peers]))
    return 0


def peer_row(peer: dict[str, Any]) -> tuple[str, ...]:
    """One peer as the table's cells (`-` where the peer did not say)."""
    caps = peer.get("capabilities") or {}
    max_limits = caps.get("max_limits") or {}
    latency = peer.get("latency_us")
    return (
        str(peer["peer_id"]),
        "yes" if peer.get("connected") else "no",
        f"{latency / 1000:.1f} ms" if isinstance(latency, int) else "-",
        str(peer.get("jobs_run", 0)),
        str(peer.get("receipts_rejected", 0)),
        disputed_cell(peer),
        ",".join(caps.get("runtimes") or ()) or "-",
        _number(max_limits.get("fuel")),
        _bytes(max_limits.get("memory_bytes")),
        " ".join(_dialable(peer.get("addresses") or [])) or "-",
    )


def disputed_cell(peer: dict[str, Any]) -> str:
    """Receipts that disagreed with an agreed quorum, and `(cooling down)` while the peer
    is offered no jobs for it."""
    import time

    count = str(peer.get("receipts_disputed", 0))
    until = peer.get("cooldown_until_ms")
    if isinstance(until, int) and until > time.time_ns() // 1_000_000:
        return f"{count} (cooling down)"
    return count


def format_table(rows: list[tuple[str, ...]], columns: tuple[str, ...] = COLUMNS) -> str:
    """Columns aligned with two spaces; the last (addresses) is never padded or cut."""
    widths = [max(len(cells[i]) for cells in [columns, *rows]) for i in range(len(columns))]
    lines = []
    for cells in [columns, *rows]:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    return "\n".join(lines)


def _dialable(addresses: list[str]) -> list[str]:
    """The full multiaddrs (ending in /p2p/<peer id>) when the peer has any, else all."""
    full = [address for address in addresses if "/p2p/" in address]
    return full or addresses


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _bytes(value: Any) -> str:
    from plasm.units import human_size

    return human_size(value) if isinstance(value, int) else "-"
