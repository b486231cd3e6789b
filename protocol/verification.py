"""Verifying what people save: a job result, a receipt's JSON form, or a raw envelope.

`expectations_from_saved` reads the saved bytes and works out what can be checked
(the output bytes a job result carries, its module hash and job id);
`verify_saved` runs the verification and answers a verdict for people and programs.
Both `plasmd verify` and `POST /v1/receipts/verify` use these, so the two can never
disagree.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from plasm.protocol.errors import DecodeError, ReceiptError
from plasm.protocol.receipt import (
    MAX_ENVELOPE_SIZE,
    envelope_from_json,
    receipt_body_to_json,
    verify_envelope,
)

MAX_SAVED_SIZE = 64 * 2**20


def expectations_from_saved(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """(envelope, keyword expectations for `verify_envelope`) from saved bytes.

    Raises `DecodeError` when the bytes are none of the accepted forms.
    """
    if len(data) > MAX_SAVED_SIZE:
        raise DecodeError(
            f"{len(data)} bytes is more than a saved result can be ({MAX_SAVED_SIZE})"
        )
    if data.lstrip()[:1] != b"{":
        if len(data) > MAX_ENVELOPE_SIZE:
            raise DecodeError("too large to be a receipt envelope")
        return data, {}
    try:
        saved = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from exc
    if not isinstance(saved, dict):
        raise DecodeError("expected a JSON object: a job result or a receipt")
    if "receipt" in saved:  # a job result: check the output it carries too
        envelope = envelope_from_json(saved["receipt"])
        expected: dict[str, Any] = {}
        for name in ("stdout", "stderr"):
            if isinstance(saved.get(name), str):
                expected[name] = _b64(saved[name], name)
        if isinstance(saved.get("module_sha256"), str):
            expected["expected_module_sha256"] = saved["module_sha256"]
        if isinstance(saved.get("job_id"), str):
            expected["expected_job_id"] = saved["job_id"]
        if isinstance(saved.get("executor"), str):
            expected["expected_executor"] = saved["executor"]
        return envelope, expected
    return envelope_from_json(saved), {}


def verify_saved(envelope: bytes, expected: dict[str, Any]) -> dict[str, Any]:
    """The verdict: `valid`, `reason`, `message`, `receipt` (body JSON when signed)."""
    try:
        receipt = verify_envelope(envelope, **expected)
    except ReceiptError as exc:
        return {
            "valid": False,
            "reason": exc.reason,
            "message": str(exc),
            "receipt": None,
            "checked_output": False,
        }
    return {
        "valid": True,
        "reason": None,
        "message": "signed by the executor's peer-ID key"
        + ("; the output matches its hashes" if "stdout" in expected else ""),
        "receipt": receipt_body_to_json(receipt),
        "checked_output": "stdout" in expected,
    }


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{what} is not valid base64") from exc
