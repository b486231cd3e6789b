"""`plasmd verify FILE`: check a saved result or receipt offline.

FILE is a `--json` job result or a job as `plasmd job ID --json` shows it (every field the
receipt covers is checked against the signed body: a mismatch is `INVALID: <field>: result
says X, receipt says Y`), a receipt in its JSON form, or the raw COSE_Sign1 bytes. A quorum
job's result is also checked as a quorum (every replica's receipt valid, distinct
executors, `quorum` of them agree); a disputed job's receipts are checked and it is INVALID
(`no_quorum`): there is no agreed result. Nothing
but the file is needed: the executor's public key is in its peer ID (the COSE kid). Version 1
receipts (plasmd 0.2 and older) are refused with a message saying so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plasm.commands._options import UsageError

EXIT_MISMATCH = 1


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        help="result or job JSON, receipt JSON or COSE_Sign1 bytes; - for stdin",
    )
    parser.add_argument(
        "--module",
        metavar="MODULE.wasm",
        help="also check that the receipt names this module's sha256",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")


def main(args: argparse.Namespace) -> int:
    import hashlib

    import orjson

    from plasm.protocol.errors import ProtocolError
    from plasm.protocol.verification import expectations_from_saved, verify_saved

    data = _read(args.file)
    try:
        envelope, expected = expectations_from_saved(data)
    except ProtocolError as exc:
        raise UsageError(f"{args.file}: {exc}") from exc
    if args.module:
        try:
            expected["expected_module_sha256"] = hashlib.sha256(
                Path(args.module).read_bytes()
            ).hexdigest()
        except OSError as exc:
            raise UsageError(f"cannot read module {args.module}: {exc.strerror}") from exc
    verdict = verify_saved(envelope, expected)
    if args.json:
        print(orjson.dumps(verdict, option=orjson.OPT_INDENT_2).decode())
    else:
        _print(verdict)
    return 0 if verdict["valid"] else EXIT_MISMATCH


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from exc


def _print(verdict: dict[str, Any]) -> None:
    if not verdict["valid"]:
        print(f"INVALID: {verdict['message']}")
        return
    body = verdict["receipt"]
    outcome = body["outcome"] + (
        f" (exit code {body['exit_code']})" if body.get("exit_code") is not None else ""
    )
    rows = [
        (
            "verdict",
            "valid: signed by the executor's peer-ID key"
            + ("; every field of the result matches" if verdict["checked_output"] else ""),
        ),
        *(
            (
                (
                    "log",
                    f"leaf {log['index']} of the {log['size']}-leaf log the executor signed "
                    "(RFC 9162 inclusion proof checked)",
                ),
            )
            if (log := verdict.get("checked_log"))
            else ()
        ),
        *(
            (
                (
                    "quorum",
                    f"{quorum['agreeing']} distinct executors agree (quorum {quorum['quorum']}; "
                    f"{quorum['receipts']} receipts, each verified)",
                ),
            )
            if (quorum := verdict.get("checked_quorum"))
            else ()
        ),
        ("job", body["job_id"]),
        ("executor", body["executor"]),
        ("requester", body["requester"]),
        ("module sha256", body["module_sha256"]),
        ("input sha256", body["input_sha256"]),
        (
            "stdout sha256",
            f"{body['stdout_sha256']} ({body['stdout_len']} bytes"
            + (", truncated)" if body["stdout_truncated"] else ")"),
        ),
        (
            "stderr sha256",
            f"{body['stderr_sha256']} ({body['stderr_len']} bytes"
            + (", truncated)" if body["stderr_truncated"] else ")"),
        ),
        *(
            (f"output {o['path']}", f"{o['sha256']} ({o['size']} bytes)")
            for o in body["outputs"]
        ),
        *((("outputs", "truncated: a quota was hit"),) if body["outputs_truncated"] else ()),
        ("outcome", outcome + (f": {body['message']}" if body.get("message") else "")),
        ("fuel consumed", f"{body['fuel_consumed']}{'' if body['fuel_exact'] else ' (inexact)'}"),
        ("wall time", f"{body['wall_time_us'] / 1000:.3f} ms"),
        ("limits", ", ".join(f"{k}={v}" for k, v in body["limits"].items())),
        ("engine", f"{body['engine']['name']} {body['engine']['version']}"),
        ("profile", body["profile"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
