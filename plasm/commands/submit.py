"""`plasmd submit MODULE`: give a job to a running daemon."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plasm.commands._options import (
    add_job_options,
    add_socket,
    connect,
    limit_overrides,
    parse_env,
    read_module,
    read_stdin,
)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE.wasm", help="the WebAssembly module to run")
    add_job_options(parser)
    add_socket(parser)
    parser.add_argument("--wait", nargs="?", type=float, const=300.0, default=None,
                        metavar="SECONDS",
                        help="wait for the result (up to SECONDS, default 300) and print it")
    parser.add_argument("--json", action="store_true",
                        help="print the daemon's JSON answer (the job result when waiting)")


def main(args: argparse.Namespace) -> int:
    import orjson

    module = read_module(args.module)
    with connect(args) as client:
        answer = client.submit(
            module=module,
            module_name=Path(args.module).name,
            stdin=read_stdin(args),
            args=args.args,
            env=parse_env(args.env),
            limits=limit_overrides(args),
            wait=args.wait,
        )
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
        return 0
    if "receipt" not in answer:
        print(f"{answer['job_id']} {answer['status']}")
        return 0
    import base64

    sys.stdout.buffer.write(base64.b64decode(answer["stdout"]))
    sys.stderr.buffer.write(base64.b64decode(answer["stderr"]))
    outcome = answer["outcome"]
    if outcome["kind"] != "ok":
        code = f" (exit code {outcome['exit_code']})" if outcome.get("exit_code") is not None else ""
        print(f"plasmd submit: job {answer['job_id']} ended with {outcome['kind']}{code}",
              file=sys.stderr)
    return 0
