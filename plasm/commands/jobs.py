"""`plasmd jobs`, `plasmd job ID`, `plasmd cancel ID`: a running daemon's jobs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plasm.commands._options import UsageError, add_socket, connect, fetch_outputs, save_outputs
from plasm.protocol.formats import JOB_STATUSES


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(_jobs_command=name)
    if name == "jobs":
        parser.add_argument("--status", choices=JOB_STATUSES, help="only jobs with this status")
        parser.add_argument(
            "--limit", type=int, default=50, help="at most this many (newest first)"
        )
    else:
        parser.add_argument("job_id", metavar="ID", help="the job id (32 hex characters)")
    if name == "job":
        parser.add_argument(
            "--output-dir",
            type=Path,
            metavar="DIR",
            help="save the job's output files into DIR (each checked against the receipt)",
        )
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    add_socket(parser)


def main(args: argparse.Namespace) -> int:
    import orjson

    with connect(args) as client:
        if args._jobs_command == "jobs":
            answer: object = client.jobs(args.status, args.limit)
        elif args._jobs_command == "job":
            job = client.job(args.job_id)
            if args.output_dir is not None:
                result = job.get("result")
                if not result:
                    raise UsageError(f"job {args.job_id} is {job['status']}: it has no outputs")
                save_outputs(args.output_dir, fetch_outputs(client, result))
            answer = job
        else:
            answer = client.cancel(args.job_id)
    if args.json:  # one object, as the API's (GET /v1/jobs answers {"jobs": [...]})
        shown = {"jobs": answer} if args._jobs_command == "jobs" else answer
        sys.stdout.buffer.write(orjson.dumps(shown, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    if args._jobs_command == "jobs":
        assert isinstance(answer, list)
        for job in answer:
            print(f"{job['job_id']}  {job['status']:<11}  {job.get('outcome') or '-':<13}  "
                  f"{job['module_sha256'][:16]}")
        return 0
    assert isinstance(answer, dict)
    print(f"{answer['job_id']}  {answer['status']}")
    result = answer.get("result")
    if result:
        print(f"outcome   {result['outcome']['kind']}")
        print(f"stdout    {result['stdout_text']!r}")
    if answer.get("error"):
        print(f"error     {answer['error'].get('message')}")
    return 0
