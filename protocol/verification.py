"""Verifying what people save: a job result, a job as `plasmd job ID --json` shows it, a
receipt's JSON form, or raw COSE_Sign1 bytes.

Only signed bytes are trusted. A job result repeats what its receipt signs (outcome, exit
code, fuel, wall time, truncation flags, the output bytes and files): after the signature,
every one of those fields is compared with the signed body, and the first that differs makes
the verdict ``result_mismatch`` with the message ``<field>: result says X, receipt says Y``.
A result without its ``stdout`` or ``stderr`` bytes is refused, not passed.

A quorum job's result (or a disputed job) carries ``quorum`` (``plasm.protocol.quorum``):
every receipt in it is verified, no executor may sign two, and ``quorum`` of them must agree
(``no_quorum``, ``duplicate_executor``, ``quorum_mismatch`` otherwise); the result's own
receipt must be one of the agreeing. A disputed job has no agreed result: it is invalid
(``no_quorum``) once its receipts are checked.

`expectations_from_saved` reads the saved bytes and works out what can be checked;
`verify_saved` runs the verification and answers a verdict for people and programs. Both
`plasmd verify` and `POST /v1/receipts/verify` use these, so the two can never disagree.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from plasm.protocol.errors import DecodeError, ReceiptError
from plasm.protocol.quorum import check_quorum
from plasm.protocol.receipt import (
    MAX_ENVELOPE_SIZE,
    Receipt,
    envelope_from_json,
    receipt_body_to_json,
    verify_envelope,
)
from plasm.protocol.transparency import LogError, LogProof, verify_log_proof

MAX_SAVED_SIZE = 64 * 2**20
_RESULT = "_result"  # the key under which `expected` carries a saved result
_QUORUM = "_quorum"  # ... and a saved quorum


def expectations_from_saved(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """(receipt COSE bytes, keyword expectations for `verify_saved`) from saved bytes.

    Raises `DecodeError` when the bytes are none of the accepted forms.
    """
    if len(data) > MAX_SAVED_SIZE:
        raise DecodeError(
            f"{len(data)} bytes is more than a saved result can be ({MAX_SAVED_SIZE})"
        )
    if data.lstrip()[:1] != b"{":
        if len(data) > MAX_ENVELOPE_SIZE:
            raise DecodeError("too large to be a receipt")
        return data, {}
    try:
        saved = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from exc
    if not isinstance(saved, dict):
        raise DecodeError("expected a JSON object: a job result or a receipt")
    if isinstance(saved.get("result"), dict) and "receipt" not in saved:
        saved = saved["result"]  # `plasmd job ID --json`: the job, its result inside
    error = saved.get("error")
    if "receipt" not in saved and isinstance(error, dict) and "quorum" in error:
        # a disputed job: no result, every replica's receipt in its error
        receipts = error["quorum"].get("receipts") if isinstance(error["quorum"], dict) else None
        if not isinstance(receipts, list) or not receipts:
            raise DecodeError("the disputed job's quorum holds no receipts")
        return envelope_from_json(receipts[0]), {_QUORUM: error["quorum"]}
    if "receipt" not in saved:
        return envelope_from_json(saved), {}
    envelope = envelope_from_json(saved["receipt"])
    expected: dict[str, Any] = {_RESULT: saved}
    if "quorum" in saved:
        expected[_QUORUM] = saved["quorum"]
    for name in ("stdout", "stderr"):
        if not isinstance(saved.get(name), str):
            raise DecodeError(
                f"the result has no '{name}' bytes (base64) to check against its receipt"
            )
        expected[name] = _b64(saved[name], name)
    return envelope, expected


def verified_receipt(envelope: bytes, expected: dict[str, Any]) -> Receipt:
    """The receipt, after every check `expected` (from `expectations_from_saved`) asks for;
    ``ReceiptError`` otherwise."""
    expected = dict(expected)
    saved = expected.pop(_RESULT, None)
    quorum = expected.pop(_QUORUM, None)
    receipt = verify_envelope(envelope, **expected)
    if saved is not None:
        check_result_fields(saved, receipt)
        if "log" in saved:
            check_log(envelope, saved["log"], receipt.executor)
    if quorum is not None:
        check_quorum(quorum, receipt if saved is not None else None)
    return receipt


def check_log(envelope: bytes, log: Any, executor: str) -> None:
    """A result's ``log`` must prove, offline, that the executor's signed log holds it."""
    try:
        verify_log_proof(envelope, LogProof.from_json(log), executor)
    except LogError as exc:
        raise ReceiptError("log_invalid", str(exc)) from exc


def verify_saved(envelope: bytes, expected: dict[str, Any]) -> dict[str, Any]:
    """The verdict: `valid`, `reason`, `message`, `receipt` (body JSON when signed)."""
    try:
        receipt = verified_receipt(envelope, expected)
    except ReceiptError as exc:
        return {
            "valid": False,
            "reason": exc.reason,
            # `<field>: result says X, receipt says Y` stands alone; other reasons lead.
            "message": exc.detail if exc.reason == "result_mismatch" else str(exc),
            "receipt": None,
            "checked_output": False,
            "checked_log": None,
            "checked_quorum": None,
        }
    checked = _RESULT in expected
    logged = checked and "log" in expected[_RESULT]
    quorum = expected.get(_QUORUM)
    return {
        "valid": True,
        "reason": None,
        "message": "signed by the executor's peer-ID key"
        + ("; every field of the result matches it" if checked else "")
        + ("; its executor's signed log includes it" if logged else "")
        + (
            f"; {len(quorum['agreeing'])} distinct executors agree on it (quorum"
            f" {quorum['quorum']}, {len(quorum['receipts'])} receipts checked)"
            if quorum is not None
            else ""
        ),
        "receipt": receipt_body_to_json(receipt),
        "checked_output": checked,
        # {"index", "size"}: the executor's signed log includes the receipt there.
        "checked_log": (
            {"index": expected[_RESULT]["log"]["index"], "size": expected[_RESULT]["log"]["size"]}
            if logged
            else None
        ),
        # {"agreeing", "quorum", "receipts"}: that many distinct executors' receipts agree.
        "checked_quorum": (
            {
                "agreeing": len(quorum["agreeing"]),
                "quorum": quorum["quorum"],
                "receipts": len(quorum["receipts"]),
            }
            if quorum is not None
            else None
        ),
    }


def check_result_fields(saved: dict[str, Any], receipt: Receipt) -> None:
    """Every field of a job result that its receipt covers must say what the receipt says."""
    body = receipt_body_to_json(receipt)
    outcome = saved.get("outcome")
    outcome = outcome if isinstance(outcome, dict) else {}
    # A reused result (plasm.protocol.reuse) is this node's job answered with an earlier
    # run's receipt: its `reused` names that run, which is what the receipt signs.
    reused = saved.get("reused")
    ran = reused if isinstance(reused, dict) else saved
    pairs: list[tuple[str, Any, Any]] = [
        ("reused.job_id" if ran is reused else "job_id", ran.get("job_id"), body["job_id"]),
        ("executor", saved.get("executor"), body["executor"]),
        ("module_sha256", saved.get("module_sha256"), body["module_sha256"]),
        ("outcome.kind", outcome.get("kind"), body["outcome"]),
        ("outcome.exit_code", outcome.get("exit_code"), body["exit_code"]),
        ("outcome.message", outcome.get("message"), body["message"]),
        ("fuel_consumed", saved.get("fuel_consumed"), body["fuel_consumed"]),
        ("wall_time_us", saved.get("wall_time_us"), body["wall_time_us"]),
        ("stdout_truncated", saved.get("stdout_truncated"), body["stdout_truncated"]),
        ("stderr_truncated", saved.get("stderr_truncated"), body["stderr_truncated"]),
        ("outputs_truncated", saved.get("outputs_truncated"), body["outputs_truncated"]),
        ("outputs", saved.get("outputs"), body["outputs"]),
    ]
    if ran is reused:
        pairs.append(("reused.executor", ran.get("executor"), body["executor"]))
    # The stdout/stderr bytes themselves were checked against the receipt's hashes before
    # (expectations_from_saved makes them expectations); their _text forms must match them.
    for name in ("stdout", "stderr"):
        text = _b64(saved[name], name).decode("utf-8", errors="replace")
        pairs.append((f"{name}_text", saved.get(f"{name}_text"), text))
    for field, says, signed in pairs:
        if type(says) is not type(signed) or says != signed:
            raise ReceiptError(
                "result_mismatch",
                f"{field}: result says {_show(says)}, receipt says {_show(signed)}",
            )


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode() if value is not None else "nothing"
    return text if len(text) <= 200 else text[:197] + "..."


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{what} is not valid base64") from exc
