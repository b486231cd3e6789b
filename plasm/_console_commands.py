"""The commands of plasm-console: one method each, parsed with argparse, shown with rich.

A command either succeeds (returns True), reports a problem the user can act on
(raises a `PlasmError`, printed as one line by `execute`, returns False) or gives a
verdict that is not a success (a receipt that is NOT verified returns False). Every
call to the daemon goes through one `Client`, which reconnects on each call after
a failure, so a daemon started after the console is found by the next command.

Receipts are verified here, offline, with the same code as `plasmd verify`; the
console never takes the daemon's word for its own receipts.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import orjson
from rich.console import Console
from rich.markup import escape

from plasm._console_render import (
    capabilities_table,
    job_table,
    jobs_table,
    mapping_table,
    node_table,
    peers_table,
    print_output,
    receipt_table,
    result_summary,
)
from plasm.client import ApiRequestError, Client, DaemonUnavailableError
from plasm.commands._options import (
    UsageError,
    add_job_options,
    add_reuse_option,
    determinism_fields,
    fetch_outputs,
    limit_overrides,
    parse_env,
    read_inputs,
    read_module,
    read_stdin,
    save_outputs,
)
from plasm.commands.submit import add_placement_options, failure_lines, placement_from_args
from plasm.errors import PlasmError
from plasm.protocol.formats import JOB_STATUSES

FINISHED = frozenset({"done", "failed", "cancelled", "interrupted", "rejected", "disputed"})
STATUSES = JOB_STATUSES
STILL_RUNNING_NOTE_S = 1.0
CANCEL_SETTLE_S = 5.0
NO_NETWORK = ("this node runs without the peer-to-peer network: it knows no peers, "
              "and jobs run on this node only (network.enabled in its config)")
REMEMBERED_IDS = 200
COMPLETION_TIMEOUT_S = 2.0


WASM_MAGIC = b"\0asm"  # what every WebAssembly binary starts with

class ConsoleExit(Exception):
    """`quit`: leave the console."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of exiting the console."""

    def __init__(self, name: str, description: str) -> None:
        super().__init__(prog=name, description=description, add_help=False)

    def error(self, message: str) -> NoReturn:
        usage = self.format_usage().strip().removeprefix("usage: ")
        raise UsageError(f"{message}; usage: {usage}")


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    parser: _Parser
    handler: Callable[[argparse.Namespace], bool]


class ConsoleCommands:
    def __init__(self, client: Client, out: Console, err: Console) -> None:
        self.client = client
        self.out = out
        self.err = err
        self.seen_job_ids: list[str] = []
        self._peer_id: str | None = None  # this node's, once asked
        self.table: dict[str, Command] = {}
        self._declare()

    # -- dispatch ----------------------------------------------------------------------

    def execute(self, line: str) -> bool:
        """Run one typed line; False when it failed (the reason is already printed)."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.error(f"cannot read that line: {str(exc).lower()}")
            return False
        if not words:
            return True
        name, rest = words[0], words[1:]
        if name in ("quit", "exit"):
            raise ConsoleExit
        command = self.table.get(name)
        if command is None:
            self.error(self._unknown(name))
            return False
        if "-h" in rest or "--help" in rest:
            return self.help(argparse.Namespace(command=name))
        try:
            return command.handler(command.parser.parse_intermixed_args(rest))
        except DaemonUnavailableError as exc:
            self.error(str(exc), prefix="")
        except ApiRequestError as exc:
            self.error(exc.message + _hint(exc))
        except PlasmError as exc:
            self.error(str(exc))
        return False

    def interrupted(self) -> None:
        """Ctrl-C during a command: drop a half-used connection, say so, carry on."""
        self.client.close()
        self.err.print("[yellow]interrupted[/yellow]")

    def error(self, message: str, prefix: str = "error: ") -> None:
        self.err.print(f"[bold red]{prefix}[/bold red]{escape(message)}", soft_wrap=True)

    def remember(self, job_id: str) -> None:
        if job_id in self.seen_job_ids:
            self.seen_job_ids.remove(job_id)
        self.seen_job_ids.insert(0, job_id)
        del self.seen_job_ids[REMEMBERED_IDS:]

    def daemon_job_ids(self) -> list[str]:
        """Recent job ids for Tab, from a short-lived client: a stuck daemon costs 2 s at most."""
        with Client(self.client.socket_path, timeout=COMPLETION_TIMEOUT_S) as quick:
            return [job["job_id"] for job in quick.jobs(limit=100)]

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, [*self.table, "quit"], n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown command {name!r}{guess} (type help for the list)"

    # -- the commands ------------------------------------------------------------------

    def _declare(self) -> None:
        def add(name: str, summary: str, handler: Callable[[argparse.Namespace], bool]) -> _Parser:
            parser = _Parser(name, summary)
            self.table[name] = Command(name, summary, parser, handler)
            return parser

        add("help", "list the commands, or explain one", self.help).add_argument(
            "command", nargs="?", metavar="COMMAND")
        add("id", "this node's peer ID and public key", self.identity)
        add("status", "is the daemon up; its engine, executors and limits", self.status)
        run = add("run", "run a module here or on a peer: output, then the verified receipt",
                  self.run)
        run.add_argument("module", metavar="MODULE.wasm", nargs="?")
        run.add_argument("job_args", nargs="*", metavar="ARGS",
                         help="arguments for the job (put -- before any that start with -)")
        add_job_options(run)
        add_reuse_option(run)
        add_placement_options(run)
        run.add_argument("--detach", action="store_true",
                         help="do not wait: print the job id and return")
        jobs = add("jobs", "the daemon's jobs, newest first", self.jobs)
        jobs.add_argument("--status", choices=STATUSES, help="only jobs with this status")
        jobs.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
        for name, summary, handler in (
            ("job", "one job: status, output and receipt summary", self.job),
            ("receipt", "a job's receipt in full, verified here", self.receipt),
            ("cancel", "stop a queued or running job", self.cancel),
        ):
            add(name, summary, handler).add_argument(
                "job_id", metavar="ID", help="a job id, or the first characters of one")
        add("verify", "check a saved result or receipt file offline", self.verify).add_argument(
            "file", metavar="FILE",
            help="a `--json` job result, a job, a receipt JSON or COSE_Sign1 bytes")
        add("peers", "the peers this node knows", self.peers)
        add("clear", "clear the screen", self.clear)
        add("caps", "a peer's capability record (this node's without PEER)",
            self.caps).add_argument("peer", nargs="?", metavar="PEER",
                                    help="a peer id, or the first characters of a known one")

    def clear(self, args: argparse.Namespace) -> bool:
        self.out.clear()
        return True

    def help(self, args: argparse.Namespace) -> bool:
        if args.command:
            command = self.table.get(args.command)
            if command is None:
                raise UsageError(self._unknown(args.command))
            self.out.print(escape(command.parser.format_help().rstrip()))
            return True
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for command in self.table.values():
            usage = command.parser.format_usage().strip().removeprefix("usage: ")
            table.add_row(usage if len(usage) < 40 else f"{command.name} ...", command.summary)
        table.add_row("quit", "leave the console (Ctrl-D too)")
        self.out.print(table)
        self.out.print("[dim]`help COMMAND` for its options. Tab completes commands, files and "
                       "job ids; Ctrl-C stops waiting.[/dim]")
        return True

    def identity(self, args: argparse.Namespace) -> bool:
        node = self.client.node()
        self.out.print(f"peer id     {node['peer_id']}", soft_wrap=True)
        self.out.print(f"public key  {node['public_key']}", soft_wrap=True)
        return True

    def status(self, args: argparse.Namespace) -> bool:
        health = self.client.health().get("status", "?")
        self.out.print(node_table(self.client.node(), str(health), self.client.where))
        return True

    def run(self, args: argparse.Namespace) -> bool:
        if args.module is None:
            raise UsageError("run needs the module to run: run MODULE.wasm [ARGS ...] "
                             "(`help run` lists the options)")
        placement = placement_from_args(args)
        module = read_module(args.module)
        if not module.startswith(WASM_MAGIC):
            raise UsageError(f"{args.module} is not a WebAssembly module (it does not start "
                             "with \\0asm); give a .wasm file")
        answer = self.client.submit(
            module=module,
            module_name=Path(args.module).name,
            stdin=read_stdin(args),
            args=[*args.job_args, *args.args],
            env=parse_env(args.env),
            limits=limit_overrides(args),
            placement=placement,
            extra=determinism_fields(args),
            reuse=args.reuse,
            files=read_inputs(args),
        )
        job_id = answer["job_id"]
        self.remember(job_id)
        if args.detach:
            self.out.print(f"job {job_id} {answer['status']}", soft_wrap=True)
            return True
        try:
            job = self._wait(job_id)
        except KeyboardInterrupt:
            self.client.close()
            self.out.print(f"[yellow]stopped waiting for job {job_id}[/yellow]; it keeps running: "
                           f"`cancel {job_id}` stops it, `job {job_id}` shows it", soft_wrap=True)
            return False
        shown = self._show_finished(job)
        if args.output_dir is not None and job.get("result"):
            save_outputs(args.output_dir, fetch_outputs(self.client, job["result"]))
            self.out.print(f"outputs saved under {args.output_dir} (each checked against the "
                           "receipt)", soft_wrap=True)
        return shown

    def jobs(self, args: argparse.Namespace) -> bool:
        if args.limit < 1:
            raise UsageError("--limit must be at least 1")
        listed = self.client.jobs(args.status, args.limit)
        for job in reversed(listed):
            self.remember(job["job_id"])
        if not listed:
            self.out.print("no jobs" + (f" with status {args.status}" if args.status else " yet"))
            return True
        self.out.print(jobs_table(listed))
        return True

    def job(self, args: argparse.Namespace) -> bool:
        job = self.client.job(self._resolve(args.job_id))
        self.out.print(job_table(job))
        if job.get("result"):
            print_output(self.out, job["result"])
            verdict = saved_result_verdict(job["result"])
            self.out.print(result_summary(job["result"], verdict, self._own_peer_id()))
            return bool(verdict["valid"])
        return True

    def receipt(self, args: argparse.Namespace) -> bool:
        job_id = self._resolve(args.job_id)
        job = self.client.job(job_id)
        result = job.get("result")
        if not result or not result.get("receipt"):
            raise UsageError(f"job {job_id} is {job['status']}: it has no receipt"
                             + ("" if job["status"] in FINISHED else " yet"))
        verdict = saved_result_verdict(result)
        self.out.print(receipt_table(verdict, f"receipt of job {job_id}"))
        return bool(verdict["valid"])

    def cancel(self, args: argparse.Namespace) -> bool:
        job_id = self._resolve(args.job_id)
        status = self.client.cancel(job_id)["status"]
        deadline = time.monotonic() + CANCEL_SETTLE_S
        while status not in FINISHED and time.monotonic() < deadline:
            time.sleep(0.05)
            status = self.client.job(job_id)["status"]
        self.out.print(f"job {job_id}: {status}", soft_wrap=True)
        return True

    def verify(self, args: argparse.Namespace) -> bool:
        from plasm.protocol.errors import ProtocolError
        from plasm.protocol.verification import expectations_from_saved, verify_saved

        try:
            data = Path(args.file).expanduser().read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from exc
        try:
            envelope, expected = expectations_from_saved(data)
        except ProtocolError as exc:
            raise UsageError(f"{args.file} is no job result or receipt: {exc}") from exc
        verdict = verify_saved(envelope, expected)
        self.out.print(receipt_table(verdict, escape(args.file)))
        return bool(verdict["valid"])

    def peers(self, args: argparse.Namespace) -> bool:
        try:
            peers = self.client.peers()
        except ApiRequestError as exc:
            if exc.code != "network_disabled":
                raise
            self.out.print(f"[yellow]{NO_NETWORK}[/yellow]", soft_wrap=True)
            return True
        if not peers:
            self.out.print("no peers known yet")
            return True
        self.out.print(peers_table(peers))
        return True

    def caps(self, args: argparse.Namespace) -> bool:
        node = self.client.node()
        if args.peer in (None, "self", node["peer_id"]):
            self.out.print(mapping_table(node.get("capabilities", {})))
            return True
        try:
            peer = self.client.peer(self._resolve_peer(args.peer))
        except ApiRequestError as exc:
            if exc.code != "network_disabled":
                raise
            self.error(f"cannot ask {args.peer}: {NO_NETWORK}")
            return False
        record = peer.get("capabilities")
        if not record:
            raise UsageError(f"peer {peer['peer_id']} has not sent a verified capability "
                             "record yet; try again in a moment")
        self.out.print(capabilities_table(record))
        return True

    # -- helpers -----------------------------------------------------------------------

    def _wait(self, job_id: str) -> dict[str, Any]:
        """Poll the job until it finishes, under a spinner; Ctrl-C raises KeyboardInterrupt."""
        note_at = time.monotonic() + STILL_RUNNING_NOTE_S
        delay = 0.01
        with self.out.status(f"running job {job_id}  (Ctrl-C stops waiting)"):
            while True:
                job = self.client.job(job_id)
                if job["status"] in FINISHED:
                    return job
                if note_at and time.monotonic() > note_at:
                    note_at = 0.0
                    self.out.print(f"job {job_id} is {job['status']}; waiting for it "
                                   "(Ctrl-C stops waiting, the job keeps running)", soft_wrap=True)
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _show_finished(self, job: dict[str, Any]) -> bool:
        result = job.get("result")
        if not result:
            if not job.get("error"):
                raise UsageError(f"job {job['job_id']} {job['status']}")
            first, *tried = failure_lines(job)
            self.error(first)
            for line in tried:
                self.err.print(escape(line), soft_wrap=True)
            return False
        print_output(self.out, result)
        verdict = saved_result_verdict(result)
        self.out.print(result_summary(result, verdict, self._own_peer_id()))
        return bool(verdict["valid"])

    def _own_peer_id(self) -> str | None:
        if self._peer_id is None:
            self._peer_id = str(self.client.node()["peer_id"])
        return self._peer_id

    def _resolve_peer(self, text: str) -> str:
        """A full peer id from a full one or from the first characters of a known one."""
        known = [peer["peer_id"] for peer in self.client.peers()]
        if text in known:
            return text
        matches = [peer_id for peer_id in known if peer_id.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UsageError(f"this node knows no peer {text!r} (`peers` lists them)")
        raise UsageError(f"{text!r} starts {len(matches)} peer ids: type more of it")

    def _resolve(self, text: str) -> str:
        """A full job id from a full one or from the first characters of a known one."""
        text = text.lower()
        if len(text) == 32:
            return text
        known = list(dict.fromkeys(self.seen_job_ids + [
            job["job_id"] for job in self.client.jobs(limit=1000)]))
        matches = [job_id for job_id in known if job_id.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UsageError(f"no job id starts with {text!r} (`jobs` lists them)")
        raise UsageError(f"{text!r} starts {len(matches)} job ids: type more of it")


def saved_result_verdict(result: dict[str, Any]) -> dict[str, Any]:
    """The offline verdict on a job result's receipt, against the output it carries."""
    from plasm.protocol.errors import ProtocolError
    from plasm.protocol.verification import expectations_from_saved, verify_saved

    try:
        envelope, expected = expectations_from_saved(orjson.dumps(result))
    except ProtocolError as exc:
        return {"valid": False, "reason": "malformed", "message": str(exc), "receipt": None,
                "checked_output": False, "checked_log": None, "checked_quorum": None}
    return verify_saved(envelope, expected)


def _hint(exc: ApiRequestError) -> str:
    if exc.code == "unsupported_placement":
        return " (run it without --on or --anywhere to run it on this node)"
    return ""
