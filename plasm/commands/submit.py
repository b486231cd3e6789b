"""`plasmd submit MODULE`: give a job to a running daemon, to run there or on a peer.

Placement options (also used by plasm-console's `run`): `--on PEER_ID` runs the job on
that peer, `--anywhere` on whichever other peer fits (`--require KEY=VALUE` narrows
the choice), `--replicas K --quorum M` on K distinct other peers, accepted when M of
their receipts agree (a quorum job; `--max-replicas N` bounds the replicas added while
they disagree). A waited job that did not run prints the daemon's reason and, for a
remote job, each peer tried and what it answered (for a disputed quorum job, which
peers agreed with which). The exit status is the job's (`plasm.commands._exit`).
Waiting is the daemon's job list polled for the job's id, which the daemon gave at once:
Ctrl-C or a wait that runs out then says which job goes on and how to follow or stop it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plasm.commands._exit import (
    EXIT_CANCELLED,
    EXIT_INTERRUPTED,
    EXIT_PLASMD,
    EXIT_WAIT_RAN_OUT,
    TABLE,
    exit_status,
)
from plasm.commands._options import (
    UsageError,
    add_guest_args,
    add_job_options,
    add_reuse_option,
    add_socket,
    connect,
    determinism_fields,
    fetch_outputs,
    guest_args,
    limit_overrides,
    parse_env,
    print_json_error,
    read_inputs,
    read_module,
    read_stdin,
    reuse_note,
    save_outputs,
)

DEFAULT_WAIT_S = 300.0
# The requirement keys a placement `any` takes (manifest schema), and which are numbers.
REQUIREMENT_KEYS = ("runtime", "min_memory_bytes", "min_fuel", "min_timeout_ms", "arch", "os")
NUMERIC_REQUIREMENTS = frozenset({"min_memory_bytes", "min_fuel", "min_timeout_ms"})


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE.wasm", help="the WebAssembly module to run")
    add_guest_args(parser)
    add_job_options(parser)
    add_reuse_option(parser)
    add_placement_options(parser)
    add_socket(parser)
    parser.epilog = TABLE + " (without --wait: 0 once the daemon took the job, 125 if not)"
    parser.add_argument("--wait", action="store_true",
                        help=f"wait for the result (up to {DEFAULT_WAIT_S:g} s; --wait=SECONDS "
                             "or --wait-timeout SECONDS for another bound) and print it; "
                             "Ctrl-C stops waiting, not the job")
    parser.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                        help="wait for the result up to SECONDS (implies --wait)")
    parser.add_argument("--json", action="store_true",
                        help="print the daemon's JSON answer (the job result when waiting)")


def add_placement_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--on", metavar="PEER_ID",
                       help="run the job on this peer (the node needs the peer-to-peer network)")
    where.add_argument("--anywhere", action="store_true",
                       help="run the job on any other peer that fits (needs the network)")
    parser.add_argument(
        "--require", action="append", default=[], metavar="KEY=VALUE",
        help="with --anywhere: what the peer must offer (repeatable); KEY is one of "
             + ", ".join(REQUIREMENT_KEYS) + ", e.g. min_fuel=5000000000 or arch=x86_64",
    )
    parser.add_argument(
        "--replicas", type=int, metavar="K",
        help="a quorum job: run on K distinct other peers (implies --anywhere; at most 16)",
    )
    parser.add_argument(
        "--quorum", type=int, metavar="M",
        help="with --replicas: how many receipts must agree (default a majority of K)",
    )
    parser.add_argument(
        "--max-replicas", type=int, metavar="N",
        help="with --replicas: the most peers tried while they disagree (default 2K, at most "
             "16); a job with no quorum then ends disputed",
    )
    parser.add_argument(
        "--include-self", action="store_true",
        help="with --replicas: this node runs one of the K replicas itself (first), the "
             "others run on peers",
    )


def placement_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """The manifest's `placement` for --on / --anywhere / --require; None for local."""
    requirements = parse_requirements(args.require)
    replicas = getattr(args, "replicas", None)
    include_self = getattr(args, "include_self", False)
    if replicas is None and (args.quorum is not None or args.max_replicas is not None
                             or include_self):
        raise UsageError("--quorum, --max-replicas and --include-self only apply with --replicas")
    if replicas is not None and args.on:
        raise UsageError("--replicas runs the job on several peers; it does not go with --on")
    if requirements and not (args.anywhere or replicas is not None):
        raise UsageError("--require only applies with --anywhere or --replicas")
    if args.on:
        return {"mode": "peer", "peer_id": args.on}
    if args.anywhere or replicas is not None:
        placement: dict[str, Any] = {"mode": "any"}
        if not include_self:
            placement["exclude_self"] = True
        if requirements:
            placement["requirements"] = requirements
        for key in ("replicas", "quorum", "max_replicas"):
            if getattr(args, key) is not None:
                placement[key] = getattr(args, key)
        if include_self:
            placement["include_self"] = True
        return placement
    return None


def parse_requirements(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs as requirements; numeric values become ints."""
    wanted: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise UsageError(f"--require {pair!r}: expected KEY=VALUE")
        if key not in REQUIREMENT_KEYS:
            raise UsageError(f"--require {pair!r}: unknown key {key!r}; "
                             f"use one of {', '.join(REQUIREMENT_KEYS)}")
        if key in NUMERIC_REQUIREMENTS:
            try:
                wanted[key] = int(value.replace("_", ""))
            except ValueError:
                raise UsageError(f"--require {pair!r}: {key} takes a whole number") from None
        else:
            wanted[key] = int(value) if value.isdigit() else value
    return wanted


def failure_lines(answer: dict[str, Any]) -> list[str]:
    """A job that did not run, for people: its error, then each peer tried and its answer."""
    error = answer.get("error") or {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = error.get("code")
    message = error.get("message") or "no reason given"
    lines = [f"job {answer.get('job_id', '?')} {answer.get('status', 'failed')}: {message}"
             + (f" ({code})" if code else "")]
    for attempt in error.get("attempts") or []:
        lines.append(f"  tried {attempt.get('peer_id', '?')}: {attempt.get('result', '?')}")
    quorum = error.get("quorum")
    if isinstance(quorum, dict):
        lines.extend(quorum_lines(quorum))
    return lines


def quorum_lines(quorum: dict[str, Any]) -> list[str]:
    """Who agreed with whom in a quorum job (`quorum` of its result or error)."""
    receipts = quorum.get("receipts") or []
    agreeing = quorum.get("agreeing") or []
    dissenting = quorum.get("dissenting") or []
    verdict = "agreed" if quorum.get("agreed") else "no quorum"
    lines = [f"  quorum {quorum.get('quorum', '?')} of {len(receipts)} receipt(s): {verdict}"]
    lines += [f"  agrees:    {peer}" for peer in agreeing]
    lines += [f"  dissents:  {peer}" for peer in dissenting]
    return lines


def main(args: argparse.Namespace) -> int:
    from plasm.client import ClientError

    placement = placement_from_args(args)
    module = read_module(args.module)
    wait = args.wait_timeout if args.wait_timeout is not None else (
        DEFAULT_WAIT_S if args.wait else None)
    if wait is not None and wait <= 0:
        raise UsageError("--wait-timeout must be a number of seconds above 0")
    try:
        return _submit(args, placement, module, wait)
    except ClientError as exc:  # the daemon unreachable, or it refused the job
        print(f"plasmd submit: error: {exc}", file=sys.stderr)
        if args.json:
            print_json_error(exc)
        return EXIT_PLASMD


def _submit(
    args: argparse.Namespace, placement: dict[str, Any] | None, module: bytes, wait: float | None
) -> int:
    import orjson

    with connect(args) as client:
        answer = client.submit(
            module=module,
            module_name=Path(args.module).name,
            stdin=read_stdin(args),
            args=guest_args(args),
            env=parse_env(args.env),
            limits=limit_overrides(args),
            placement=placement,
            extra=determinism_fields(args),
            reuse=args.reuse,
            files=read_inputs(args),
        )
        if wait is not None:
            job_id = str(answer["job_id"])
            try:
                final = _wait_for(client, job_id, wait)
            except KeyboardInterrupt:
                print(f"plasmd submit: stopped waiting; job {job_id} goes on: `plasmd job "
                      f"{job_id}` shows it, `plasmd cancel {job_id}` stops it", file=sys.stderr)
                return EXIT_INTERRUPTED
            if final is None:
                status = client.job(job_id)["status"]
                if args.json:
                    sys.stdout.buffer.write(orjson.dumps({"job_id": job_id, "status": status})
                                            + b"\n")
                print(f"plasmd submit: the wait ran out after {wait:g} s; job {job_id} is "
                      f"still {status}: `plasmd job {job_id}` shows it, `plasmd cancel "
                      f"{job_id}` stops it", file=sys.stderr)
                return EXIT_WAIT_RAN_OUT
            answer = final
        if args.output_dir is not None and "receipt" in answer:
            save_outputs(args.output_dir, fetch_outputs(client, answer))
    failed = "receipt" not in answer and "error" in answer
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
    elif "receipt" not in answer and not failed:
        print(f"{answer['job_id']} {answer['status']}")
    elif not failed:
        _print_result(answer)
        note = reuse_note(answer)
        if note is not None:
            print(f"plasmd submit: {note}", file=sys.stderr)
        elif placement is not None:
            print(f"plasmd submit: ran on peer {answer['executor']}", file=sys.stderr)
        if isinstance(answer.get("quorum"), dict):
            for line in quorum_lines(answer["quorum"]):
                print(f"plasmd submit: {line}", file=sys.stderr)
    if failed:
        for line in failure_lines(answer):
            print(f"plasmd submit: {line}", file=sys.stderr)
        return EXIT_CANCELLED if answer.get("status") == "cancelled" else EXIT_PLASMD
    if "receipt" in answer:
        outcome = answer["outcome"]
        return exit_status(outcome["kind"], outcome.get("exit_code"))
    return 0


FINAL = frozenset({"done", "failed", "cancelled", "interrupted", "rejected", "disputed"})


def _wait_for(client: Any, job_id: str, seconds: float) -> dict[str, Any] | None:
    """The job's result (or ``{job_id, status, error}`` when it did not run) once final;
    None when ``seconds`` pass first. Polls its job record, 10 ms apart at first."""
    import time

    deadline = time.monotonic() + seconds
    delay = 0.005
    while True:
        job = client.job(job_id)
        if job["status"] in FINAL:
            if "result" in job:
                return dict(job["result"])
            answer = {"job_id": job_id, "status": job["status"]}
            if "error" in job:
                answer["error"] = job["error"]
            return answer
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.2)


def _print_result(answer: dict[str, Any]) -> None:
    import base64

    sys.stdout.buffer.write(base64.b64decode(answer["stdout"]))
    sys.stdout.flush()
    sys.stderr.buffer.write(base64.b64decode(answer["stderr"]))
    outcome = answer["outcome"]
    if outcome["kind"] != "ok":
        exit_code = outcome.get("exit_code")
        code = f" (exit code {exit_code})" if exit_code is not None else ""
        print(f"plasmd submit: job {answer['job_id']} ended with {outcome['kind']}{code}",
              file=sys.stderr)
