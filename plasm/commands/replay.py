"""`plasmd replay RESULT.json --module M.wasm`: run a job again here and compare receipts.

The saved result's receipt is verified first (as `plasmd verify` does). The job's input is
not in a receipt, only its hash: give it again (guest arguments after the module, `--stdin`,
`--env`, `--input GUEST=HOST`, `--module-name` if argv[0] was not the module's file name,
and `--seed` / `--epoch-ms` / `--determinism` if the job set them); replay refuses an input
or module that is not the one the receipt names. The job then runs in this process under the
receipt's limits and profile, and every deterministic field of the new receipt body is
compared with the signed one. The per-run fields are left out: `job_id`, `nonce`,
`requester`, `executor`, `started_at_ms`, `finished_at_ms`, `wall_time_us` (and
`fuel_consumed` when the receipt says `fuel_exact: false`).

Prints `reproduced` (exit 0) or each difference (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plasm.commands._options import (
    UsageError,
    determinism_input,
    parse_env,
    read_inputs,
    read_module,
    read_stdin,
)

EXIT_DIFFERENT = 1


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", metavar="RESULT.json", help="a saved job result (or job JSON)")
    parser.add_argument("--module", required=True, metavar="M.wasm", help="the job's module")
    parser.add_argument("job_args", nargs="*", metavar="ARGS", help="the job's arguments")
    parser.add_argument("--module-name", metavar="NAME",
                        help="the job's argv[0] (default: the module file's name, as "
                        "execute-job and submit send it)")
    stdin = parser.add_mutually_exclusive_group()
    stdin.add_argument("--stdin", metavar="TEXT", help="the job's stdin, as text")
    stdin.add_argument("--stdin-file", metavar="PATH", help="the job's stdin, from a file")
    parser.add_argument("--arg", dest="args", action="append", default=[], metavar="A",
                        help="an argument, after ARGS (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="an environment variable of the job (repeatable)")
    parser.add_argument("--input", dest="inputs", action="append", default=[],
                        metavar="GUEST=HOST", help="an input file of the job (repeatable)")
    parser.add_argument("--determinism", choices=("on", "off"), default=None,
                        help="as the job was submitted (default on)")
    parser.add_argument("--seed", metavar="HEX", help="the job's seed, if it set one")
    parser.add_argument("--epoch-ms", type=int, metavar="MS", help="the job's epoch, if set")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")


def main(args: argparse.Namespace) -> int:
    import orjson

    from plasm.protocol.errors import ProtocolError
    from plasm.protocol.verification import expectations_from_saved, verified_receipt
    from plasm.replay import ReplayError, replay
    from plasm.runtime.job import JobInput
    from plasm.runtime.sandbox import CompileSettings, Sandbox

    try:
        data = Path(args.result).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.result}: {exc.strerror}") from exc
    try:
        envelope, expected = expectations_from_saved(data)
        signed = verified_receipt(envelope, expected)
    except ProtocolError as exc:
        raise UsageError(f"{args.result}: the receipt does not verify: {exc}") from exc
    try:
        job_input = JobInput(
            stdin=read_stdin(args),
            args=(*args.job_args, *args.args),
            env=tuple(sorted(parse_env(args.env).items())),
            module_name=args.module_name or Path(args.module).name,
            files=read_inputs(args),
            **determinism_input(args),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    with Sandbox(compiling=CompileSettings(workers=1, warm=False)) as sandbox:
        try:
            differences = replay(signed, read_module(args.module), job_input, sandbox)
        except ReplayError as exc:
            raise UsageError(str(exc)) from exc
    if args.json:
        answer = {"reproduced": not differences, "differences": differences}
        sys.stdout.buffer.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2) + b"\n")
    elif not differences:
        print("reproduced: every deterministic field of the receipt is the same")
    else:
        for difference in differences:
            print(f"DIFFERENT: {difference['field']}: receipt says {difference['receipt']}, "
                  f"replay gives {difference['replay']}")
    return 0 if not differences else EXIT_DIFFERENT
