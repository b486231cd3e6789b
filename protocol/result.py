"""The job-result JSON object (``schemas/job-result.schema.json``).

``stdout``/``stderr`` are base64 of the exact captured bytes, which the receipt hashes;
``stdout_text``/``stderr_text`` decode them as UTF-8 with replacement characters, for people.
"""

from __future__ import annotations

import base64
from typing import Any

from plasm.protocol.receipt import receipt_to_json, verify_envelope
from plasm.runtime.job import Outcome, OutcomeKind


def job_result_to_json(
    job_id: str,
    status: str,
    outcome: Outcome,
    module_sha256: str,
    executor: str,
    envelope: bytes,
    *,
    already_verified: bool = False,
) -> dict[str, Any]:
    """The documented job-result object.

    The receipt is verified against the rest (executor, job, module, stdout and stderr bytes),
    so the object never shows output its receipt does not sign; ``ReceiptError`` otherwise.
    A caller that holds a receipt it verified (or that its own signer just made) passes
    ``already_verified=True`` and skips the signature check on this hot path.
    """
    if not already_verified:
        verify_envelope(
            envelope,
            expected_executor=executor,
            expected_job_id=job_id,
            expected_module_sha256=module_sha256,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
        )
    return {
        "job_id": job_id,
        "status": status,
        "outcome": {
            "kind": OutcomeKind(outcome.kind).value,
            "exit_code": outcome.exit_code,
            "message": outcome.message,
        },
        "stdout": base64.b64encode(outcome.stdout).decode("ascii"),
        "stderr": base64.b64encode(outcome.stderr).decode("ascii"),
        "stdout_text": outcome.stdout.decode("utf-8", errors="replace"),
        "stderr_text": outcome.stderr.decode("utf-8", errors="replace"),
        "stdout_truncated": outcome.stdout_truncated,
        "stderr_truncated": outcome.stderr_truncated,
        "fuel_consumed": outcome.fuel_consumed,
        "wall_time_us": outcome.wall_time_us,
        "module_sha256": module_sha256,
        "executor": executor,
        "receipt": receipt_to_json(envelope, already_verified=already_verified),
    }
