"""`plasm-console`: an interactive shell against a running plasmd.

Theory of operation: a loop reads one line at a time (`input()` with GNU readline
when stdin is a terminal: history file, tab completion) and hands it to
`ConsoleCommands.execute`, which parses it, calls the daemon through one `Client`
and prints with rich. Nothing is kept between commands but that client and the
job ids seen, so a daemon that is down, restarted or started later is simply found
(or clearly missed) by the next command. Ctrl-C at the prompt drops the line; during
a command it stops that command (a job being waited for keeps running); Ctrl-D and
`quit` leave with status 0.

`-c COMMAND` (repeatable) runs commands without a prompt and exits: 0 when all
succeeded, 1 at the first that failed. Lines piped on stdin run like typed ones;
the exit status is then 1 if any of them failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from plasm._version import __version__
from plasm.commands._options import add_socket, client_socket
from plasm.errors import PlasmError

if TYPE_CHECKING:
    from plasm._console_commands import ConsoleCommands
    from plasm._console_completion import LineEditor

EXIT_FAILED = 1
EXIT_USAGE = 2
PIPED_WIDTH = 250  # columns when stdout is no terminal
PROMPT = "plasm> "


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plasm-console",
        description="An interactive shell for a running plasmd: run WebAssembly modules, list "
                    "jobs, show and verify receipts. Type `help` at the prompt for its commands.",
        epilog="Commands: help, id, status, run, jobs, job, receipt, verify, cancel, peers, caps, "
               "quit. History is kept in $PLASM_CONSOLE_HISTORY, else "
               "~/.local/state/plasm/console_history.",
    )
    add_socket(parser)
    parser.add_argument(
        "-c", "--command", dest="commands", action="append", default=[], metavar="COMMAND",
        help="run COMMAND as if typed at the prompt, then exit (repeatable, run in order; "
             "stops with exit status 1 at the first that fails)",
    )
    parser.add_argument("--version", action="version", version=f"plasm-console {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True, highlight=False)
    try:
        socket_path = client_socket(args)
    except PlasmError as exc:
        err.print(f"plasm-console: error: {exc}", markup=False, soft_wrap=True)
        return EXIT_USAGE

    from plasm._console_commands import ConsoleCommands
    from plasm.client import Client

    with Client(socket_path) as client:
        commands = ConsoleCommands(client, Console(highlight=False, width=_width()), err)
        if args.commands:
            return run_script(commands, args.commands)
        return repl(commands, interactive=sys.stdin.isatty())


def _width() -> int | None:
    """rich's own on a terminal (or $COLUMNS); piped, wide enough that no table is cut at
    rich's default of 80 columns."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPED_WIDTH


def run_script(commands: ConsoleCommands, lines: Sequence[str]) -> int:
    from plasm._console_commands import ConsoleExit

    for line in lines:
        try:
            if not commands.execute(line):
                return EXIT_FAILED
        except ConsoleExit:
            return 0
        except KeyboardInterrupt:
            commands.interrupted()
            return 130
    return 0


def repl(commands: ConsoleCommands, interactive: bool) -> int:
    from plasm._console_commands import ConsoleExit

    editor = _line_editor(commands) if interactive else None
    if interactive:
        greet(commands)
    failed = False
    try:
        while True:
            try:
                line = input(PROMPT if interactive else "")
            except EOFError:
                if interactive:
                    print()
                return EXIT_FAILED if failed and not interactive else 0
            except KeyboardInterrupt:
                print()  # Ctrl-C at the prompt: drop the line, ask again
                continue
            try:
                failed = not commands.execute(line) or failed
            except ConsoleExit:
                return EXIT_FAILED if failed and not interactive else 0
            except KeyboardInterrupt:
                commands.interrupted()
    finally:
        if editor is not None and (problem := editor.save()):
            commands.error(problem, prefix="note: ")


def greet(commands: ConsoleCommands) -> None:
    from plasm.client import ClientError

    out = commands.out
    out.print(f"plasm-console {__version__}  (type help for commands, quit to leave)")
    try:
        node = commands.client.node()
    except ClientError as exc:
        commands.error(f"{exc}; commands will try again", prefix="")
        return
    out.print(f"connected to plasmd at {commands.client.where}, peer {node['peer_id']}",
              markup=False, soft_wrap=True)


def _line_editor(commands: ConsoleCommands) -> LineEditor:
    from plasm._console_completion import Completer, LineEditor

    options = {
        name: [o for action in command.parser._actions for o in action.option_strings]
        for name, command in commands.table.items()
    }
    completer = Completer([*commands.table, "quit"], options,
                          lambda: list(commands.seen_job_ids), commands.daemon_job_ids)
    return LineEditor(completer)


if __name__ == "__main__":
    sys.exit(main())
