"""`plasmd status`: the running daemon at a glance (GET /v1/node)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from plasm.commands._options import add_socket, connect


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the daemon's JSON answer (GET /v1/node)")
    add_socket(parser)


def main(args: argparse.Namespace) -> int:
    import orjson

    with connect(args) as client:
        node = client.node()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(node, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    print(describe(node))
    return 0


def describe(node: dict[str, Any]) -> str:
    from plasm.units import human_size

    status = node.get("status") or {}
    network = node.get("network") or {}
    executors = status.get("executors") or {}
    lines = [
        f"plasmd      {node.get('version')}, up {_duration(status.get('uptime_s', 0))}",
        f"peer id     {node['peer_id']}",
    ]
    if network.get("enabled"):
        addresses = network.get("addresses") or []
        lines.append("addresses   " + ("\n            ".join(addresses) or "-"))
        lines.append(f"reachable   {network.get('reachability', 'unknown')}")
        lines.append(f"peers       {network.get('connected_peers', 0)} connected")
    else:
        lines.append("network     off (network.enabled = false): local jobs only")
    busy, total = executors.get("busy", "?"), executors.get("total", "?")
    lines.append(f"executors   {busy} busy of {total}")
    running, queued = status.get("running", 0), status.get("queued", 0)
    lines.append(f"jobs        {running} running, {queued} queued")
    journal = status.get("journal")
    if journal:
        lines.append(f"journal     {journal['jobs']:,} jobs, {human_size(journal['bytes'])} "
                     f"({journal['path']})")
    return "\n".join(lines)


def _duration(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
