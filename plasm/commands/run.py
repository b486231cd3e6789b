"""`plasmd run`: the node daemon, in the foreground (systemd runs it this way)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, metavar="FILE",
        help="TOML config (see plasmd.example.toml); without it every key takes its default",
    )
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="overrides state_dir: key, journal, module cache")
    parser.add_argument("--socket", type=Path, default=None, metavar="PATH",
                        help="overrides api.socket: where the local HTTP API listens")
    parser.add_argument("--log-format", choices=("auto", "json", "rich"), default=None,
                        help="overrides log.format")
    parser.add_argument("--listen", action="append", default=None, metavar="MULTIADDR",
                        help="overrides network.listen (repeatable), e.g. /ip4/0.0.0.0/tcp/7601")
    parser.add_argument("--bootstrap", action="append", default=None,
                        metavar="MULTIADDR/p2p/PEERID",
                        help="overrides network.bootstrap (repeatable)")
    parser.add_argument("--no-network", action="store_true",
                        help="run without the peer-to-peer network (network.enabled = false)")


def main(args: argparse.Namespace) -> int:
    from plasm.config import load_config
    from plasm.logs import setup_logging

    config = load_config(
        args.config,
        {
            "state_dir": str(args.state_dir) if args.state_dir else None,
            "api.socket": str(args.socket) if args.socket else None,
            "log.format": args.log_format,
            "network.listen": args.listen,
            "network.bootstrap": args.bootstrap,
            "network.enabled": False if args.no_network else None,
        },
    )
    setup_logging(config.log.format, config.log.level)

    from plasm.daemon import Daemon, exit_leaving_stuck_threads

    return exit_leaving_stuck_threads(Daemon(config).run())
