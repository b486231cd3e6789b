"""`plasmd execute-job MODULE.wasm`: run one job here, through the node's actors.

No daemon and no network: the ingress, executor pool and signer start in this
process, run the job, sign its receipt with the node key, and stop. The exit status is
the job's (`plasm.commands._exit`): its own exit code when it ran to its end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plasm.commands._exit import EXIT_NOT_RUNNABLE, TABLE, exit_status
from plasm.commands._options import (
    UsageError,
    add_guest_args,
    add_job_options,
    add_state_dir,
    determinism_input,
    guest_args,
    limit_overrides,
    parse_env,
    read_inputs,
    read_module,
    read_stdin,
    save_outputs,
    state_dir,
)

RESULT_TIMEOUT_S = 24 * 3600.0


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.epilog = TABLE
    parser.add_argument("module", metavar="MODULE.wasm", help="the WebAssembly module to run")
    add_guest_args(parser)
    add_job_options(parser)
    add_state_dir(parser)
    parser.add_argument(
        "--max-compile-ms",
        type=int,
        default=None,
        metavar="MS",
        help="wall time the module may take to compile, in ms (default 5000, as the daemon's "
        "executor.max_compile_ms); the compile also counts against --timeout",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: outcome, output, receipt (schemas/job-result.schema.json)",
    )


def main(args: argparse.Namespace) -> int:
    import dataclasses

    import orjson

    from plasm.actors.node import Node, NodeSettings, result_json
    from plasm.keystore import load_or_create_key
    from plasm.runtime.job import JobInput, Limits, OutcomeKind
    from plasm.runtime.sandbox import CompileSettings

    module = read_module(args.module)
    env = parse_env(args.env)
    try:
        job_input = JobInput(
            stdin=read_stdin(args),
            args=guest_args(args),
            env=tuple(sorted(env.items())),
            module_name=Path(args.module).name,
            files=read_inputs(args),
            **determinism_input(args),
        )
        limits = dataclasses.replace(Limits(), **limit_overrides(args))
        compiling = CompileSettings(workers=1, warm=False)  # its module is mostly on disk
        if args.max_compile_ms is not None:
            compiling = dataclasses.replace(compiling, max_compile_ms=args.max_compile_ms)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    directory = state_dir(args)
    identity = load_or_create_key(directory)
    settings = NodeSettings(
        executor_count=1, module_cache_dir=directory / "cache" / "modules", compiling=compiling
    )
    with Node(identity.signing_key, settings) as node:
        submission = node.submit(
            module=module, module_sha256=None, job_input=job_input, limits=limits, confirm=False
        )
        finished = submission.wait(RESULT_TIMEOUT_S)
        if finished is None:
            raise UsageError(f"the job did not finish within {RESULT_TIMEOUT_S:g} s")
    executed = finished.executed
    outcome = executed.outcome
    if args.output_dir is not None:
        save_outputs(args.output_dir, outcome.output_files)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result_json(finished)) + b"\n")
    else:
        sys.stdout.buffer.write(outcome.stdout)
        sys.stderr.buffer.write(outcome.stderr)
    sys.stdout.flush()
    if outcome.kind == OutcomeKind.INVALID_MODULE:
        print(
            f"plasmd execute-job: error: {args.module} is not a runnable WebAssembly module: "
            f"{outcome.message}",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNABLE
    if outcome.kind == OutcomeKind.COMPILE_LIMIT:
        print(
            f"plasmd execute-job: error: {args.module} was not compiled: {outcome.message}; "
            f"--max-compile-ms raises the time limit",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNABLE
    if outcome.kind != OutcomeKind.OK and not args.json:
        detail = f" (exit code {outcome.exit_code})" if outcome.exit_code is not None else ""
        print(
            f"plasmd execute-job: job ended with {outcome.kind.value}{detail}"
            + (f": {outcome.message}" if outcome.message else ""),
            file=sys.stderr,
        )
    return exit_status(outcome.kind.value, outcome.exit_code)
