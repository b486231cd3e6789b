"""`plasmd jobs`, `plasmd job ID`, `plasmd wait ID`, `plasmd cancel ID`: a running daemon's
jobs. Wherever an ID is taken, the first characters of one do (unique among the daemon's
last 1000 jobs)."""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path
from typing import Any

from plasm.commands._options import UsageError, add_socket, connect, fetch_outputs, save_outputs
from plasm.protocol.formats import JOB_STATUSES

JOB_ID_LENGTH = 32
PREFIX_SCAN = 1000  # jobs a prefix is looked up among
COLUMNS = ("job id", "status", "outcome", "created", "module")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(_jobs_command=name)
    if name == "jobs":
        parser.add_argument("--status", choices=JOB_STATUSES, help="only jobs with this status")
        parser.add_argument(
            "--limit", type=int, default=50, help="at most this many (newest first)"
        )
    else:
        parser.add_argument("job_id", metavar="ID",
                            help="the job id (32 hex characters), or its first characters")
    if name == "job":
        parser.add_argument(
            "--output-dir",
            type=Path,
            metavar="DIR",
            help="save the job's output files into DIR (each checked against the receipt)",
        )
        raw = parser.add_mutually_exclusive_group()
        raw.add_argument("--stdout", action="store_true",
                         help="write the job's stdout bytes, and nothing else, to stdout")
        raw.add_argument("--stderr", action="store_true",
                         help="write the job's stderr bytes, and nothing else, to stdout")
    if name == "wait":
        from plasm.commands._exit import TABLE

        parser.epilog = TABLE
        parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                            help="stop waiting after SECONDS (exit 128; the job goes on)")
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    add_socket(parser)


def main(args: argparse.Namespace) -> int:
    import orjson

    with connect(args) as client:
        if args._jobs_command == "jobs":
            answer: Any = client.jobs(args.status, args.limit)
        else:
            job_id = resolve_job_id(client, args.job_id)
            if args._jobs_command == "cancel":
                answer = client.cancel(job_id)
            elif args._jobs_command == "wait":
                return _wait(client, job_id, args)
            else:
                answer = client.job(job_id)
                if args.output_dir is not None:
                    result = answer.get("result")
                    if not result:
                        raise UsageError(f"job {job_id} is {answer['status']}: it has no outputs")
                    save_outputs(args.output_dir, fetch_outputs(client, result))
    if args.json:  # one object, as the API's (GET /v1/jobs answers {"jobs": [...]})
        shown = {"jobs": answer} if args._jobs_command == "jobs" else answer
        sys.stdout.buffer.write(orjson.dumps(shown, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    if args._jobs_command == "jobs":
        if answer:
            print(_table([_row(job) for job in answer]))
        return 0
    if args._jobs_command == "job" and (args.stdout or args.stderr):
        result = answer.get("result")
        if not result:
            raise UsageError(f"job {answer['job_id']} is {answer['status']}: it has no output")
        sys.stdout.buffer.write(base64.b64decode(result["stdout" if args.stdout else "stderr"]))
        return 0
    if args._jobs_command == "cancel":
        print(f"{answer['job_id']}  {answer['status']}")
        return 0
    print(describe(answer))
    return 0


def resolve_job_id(client: Any, text: str) -> str:
    """A full job id from a full one or from its first characters (unique among the last
    ``PREFIX_SCAN`` jobs); ``UsageError`` otherwise."""
    if len(text) == JOB_ID_LENGTH:
        return text
    if not text or any(c not in "0123456789abcdef" for c in text) or len(text) > JOB_ID_LENGTH:
        raise UsageError(f"{text!r} is not a job id: 32 lowercase hex characters, or the "
                         "first of them")
    matches = [job["job_id"] for job in client.jobs(None, PREFIX_SCAN)
               if job["job_id"].startswith(text)]
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        raise UsageError(f"no job id starts with {text!r} (`plasmd jobs` lists them)")
    raise UsageError(f"{text!r} starts {len(matches)} job ids: type more of it")


def _wait(client: Any, job_id: str, args: argparse.Namespace) -> int:
    import orjson

    from plasm.commands._exit import (
        EXIT_CANCELLED,
        EXIT_INTERRUPTED,
        EXIT_PLASMD,
        EXIT_WAIT_RAN_OUT,
        exit_status,
    )
    from plasm.commands.submit import FINAL

    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    delay = 0.005
    try:
        while True:
            job = client.job(job_id)
            if job["status"] in FINAL:
                break
            if deadline is not None and time.monotonic() >= deadline:
                print(f"plasmd wait: job {job_id} is still {job['status']} after "
                      f"{args.timeout:g} s", file=sys.stderr)
                return EXIT_WAIT_RAN_OUT
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    except KeyboardInterrupt:
        print(f"plasmd wait: stopped waiting; job {job_id} goes on", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(job, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(describe(job))
    result = job.get("result")
    if not result:
        return EXIT_CANCELLED if job["status"] == "cancelled" else EXIT_PLASMD
    return exit_status(result["outcome"]["kind"], result["outcome"].get("exit_code"))


def describe(job: dict[str, Any]) -> str:
    """A job for people: status, times, where it ran, how it ended, its output as text."""
    lines = [f"job       {job['job_id']}", f"status    {job['status']}"]
    for key, label in (("created_at_ms", "created"), ("started_at_ms", "started"),
                       ("finished_at_ms", "finished")):
        if job.get(key):
            lines.append(f"{label:<9} {_when(job[key])}")
    result = job.get("result") or {}
    executor = result.get("executor") or job.get("executor")
    if executor:
        lines.append(f"executor  {executor}")
    lines.append(f"module    {job['module_sha256']}")
    if result:
        outcome = result["outcome"]
        detail = f" (exit code {outcome['exit_code']})" if outcome.get("exit_code") else ""
        message = f": {outcome['message']}" if outcome.get("message") else ""
        lines.append(f"outcome   {outcome['kind']}{detail}{message}")
        lines.append(f"fuel      {result['fuel_consumed']:,}")
        for stream in ("stdout", "stderr"):
            text = result.get(f"{stream}_text")
            if text is None:
                text = f"({len(base64.b64decode(result[stream]))} bytes, not UTF-8: "
                text += f"`plasmd job {job['job_id']} --{stream}` writes them)"
            lines.append(f"{stream}:" if text else f"{stream}    (empty)")
            lines += [f"  {line}" for line in text.splitlines()] if text else []
    if job.get("error"):
        error = job["error"]
        lines.append(f"error     {error.get('code')}: {error.get('message')}")
    return "\n".join(lines)


def _row(job: dict[str, Any]) -> tuple[str, ...]:
    return (job["job_id"], job["status"], job.get("outcome") or "-",
            _when(job["created_at_ms"]), job["module_sha256"][:16])


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"


def _table(rows: list[tuple[str, ...]]) -> str:
    from plasm.commands.peers import format_table

    return format_table(rows, COLUMNS)
