"""Formats of identifiers shared by messages, receipts and manifests."""

from __future__ import annotations

import re

NONCE_SIZE = 16
SHA256_SIZE = 32
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_job_id(job_id: object, what: str = "job_id") -> None:
    """A job ID is 32 lowercase hex characters (the first 12 are its creation time in unix ms)."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"{what} must be 32 lowercase hex characters, got {job_id!r}")


def check_sha256_hex(digest: object, what: str = "module_sha256") -> None:
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise ValueError(f"{what} must be 64 lowercase hex characters, got {digest!r}")


def is_sha256_hex(digest: object) -> bool:
    """True for 64 lowercase hex characters (how a sha256 is named in JSON and on disk)."""
    return isinstance(digest, str) and _SHA256_HEX.fullmatch(digest) is not None


def check_nonce(nonce: object, what: str = "nonce") -> None:
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ValueError(f"{what} must be {NONCE_SIZE} bytes, got {nonce!r}")


def check_non_negative(value: object, what: str) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")


JOB_STATUSES = (
    "queued",
    "running",
    "done",
    "failed",
    "cancelled",
    "interrupted",
    "rejected",
    "disputed",  # a quorum job whose replicas did not agree (plasm.protocol.quorum)
)


def check_status(status: str) -> None:
    """A job status of the API and the journal (`JOB_STATUSES`), else ValueError."""
    if status not in JOB_STATUSES:
        raise ValueError(f"job status must be one of {JOB_STATUSES}, got {status!r}")
