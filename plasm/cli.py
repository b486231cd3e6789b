"""`plasmd`: the daemon and its command-line tools.

Each subcommand lives in its own module under plasm.commands and is imported only
when it runs, so `plasmd verify` or `plasmd execute-job` never pays for the network
stack. Errors a user can fix print one line on stderr (no traceback) and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from plasm._version import __version__
from plasm.errors import PlasmError

EXIT_USAGE = 2

# name -> (module under plasm.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the node daemon in the foreground"),
    "execute-job": ("execute_job", "run one WebAssembly job here, no daemon needed"),
    "submit": ("submit", "submit a job to a running daemon (or, through it, to a peer)"),
    "jobs": ("jobs", "list a running daemon's jobs"),
    "job": ("jobs", "show one job of a running daemon"),
    "wait": ("jobs", "wait for a job of a running daemon to end; exit with its status"),
    "cancel": ("jobs", "cancel a queued or running job"),
    "status": ("status", "the running daemon at a glance: version, peer ID, load, journal"),
    "peers": ("peers", "list the peers a running daemon knows"),
    "devnet": ("devnet", "run N joined daemons on this machine until Ctrl-C (a test bed)"),
    "verify": ("verify", "check a saved result or receipt offline"),
    "replay": ("replay", "run a saved job again here and compare its receipt"),
    "id": ("identity", "print this node's peer ID and public key"),
    "keygen": ("identity", "make this node's key"),
    "completion": ("completion", "print a bash or zsh completion script for plasmd"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plasmd",
        description="Plasm node: run WebAssembly jobs for peers and hand back signed receipts.",
    )
    parser.add_argument("--version", action="version", version=f"plasmd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"plasm.commands.{module_name}")
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(name, command_parser)
        command_parser.set_defaults(_run=module.main)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; what follows the first ``--`` is the job's own arguments, untouched.

    argparse alone cannot take them: the module's optional ARGS are matched (empty) as soon as
    the module is, so positionals after ``--`` would be "unrecognized".
    """
    argv = _wait_equals(argv)
    if "--" not in argv:
        return parser.parse_args(argv)
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    if not hasattr(args, "job_args"):
        parser.error(f"unrecognized arguments: {' '.join(argv[split:])}")
    args.job_args = [*args.job_args, *argv[split + 1 :]]
    return args


def _wait_equals(argv: list[str]) -> list[str]:
    """`submit --wait=N` is `--wait-timeout N`: `--wait` itself takes no value, so that
    `submit --wait MODULE` never reads the module path as seconds."""
    if not argv or argv[0] != "submit":
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    out: list[str] = []
    for token in argv[:end]:
        if token.startswith("--wait="):
            out += ["--wait-timeout", token.removeprefix("--wait=")]
        else:
            out.append(token)
    return out + argv[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except PlasmError as exc:
        print(f"plasmd {args.command}: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):  # --json prints one object, an error too
            from plasm.commands._options import print_json_error

            print_json_error(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
