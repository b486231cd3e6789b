"""The job-result JSON object (``schemas/job-result.schema.json``).

``stdout``/``stderr`` are base64 of the exact captured bytes, which the receipt hashes;
``stdout_text``/``stderr_text`` decode them as UTF-8 with replacement characters, for people.
``outputs`` lists the files the job left under ``/output`` (path, size, sha256 hex, sorted by
path), as the receipt does; their bytes travel apart (blobs, ``--output-dir``).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from plasm.protocol.quorum import QuorumOutcome
from plasm.protocol.receipt import receipt_to_json, verify_envelope
from plasm.protocol.transparency import LogProof
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
    log: LogProof | None = None,
    quorum: QuorumOutcome | None = None,
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
            outputs=outcome.output_files,
        )
    result: dict[str, Any] = {
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
        "outputs": [
            {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for path, data in outcome.output_files
        ],
        "outputs_truncated": outcome.outputs_truncated,
        "fuel_consumed": outcome.fuel_consumed,
        "wall_time_us": outcome.wall_time_us,
        "module_sha256": module_sha256,
        "executor": executor,
        "receipt": receipt_to_json(envelope, already_verified=already_verified),
    }
    if log is not None:  # where the executor's transparency log holds the receipt
        result["log"] = log.to_json()
    if quorum is not None:  # a quorum job: its replicas' receipts and how they agreed
        result["quorum"] = quorum.to_json()
    return result
