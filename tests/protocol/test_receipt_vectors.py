"""The cross-language receipt vectors: committed, reproducible, and judged as labelled."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plasm.protocol.errors import ReceiptError
from plasm.protocol.receipt import REASONS, receipt_to_json, verify_envelope
from plasm.runtime.job import JobInput

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTORS = json.loads((VECTORS_DIR / "receipt-vectors.json").read_text("utf-8"))


def _files(given: list[dict[str, str]]) -> tuple[tuple[str, bytes], ...]:
    return tuple((f["path"], base64.b64decode(f["content"])) for f in given)


def _determinism(given: dict[str, Any] | None) -> dict[str, Any]:
    if given is None:
        return {"deterministic": False}
    seed = given["seed"]
    return {"epoch_ms": given["epoch_ms"], "seed": None if seed is None else bytes.fromhex(seed)}


def expectations(given: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments of ``verify_envelope`` from a vector's JSON expectations."""
    decoders: dict[str, Callable[[str], Any]] = {
        "expected_executor": str,
        "expected_job_id": str,
        "expected_module_sha256": str,
        "expected_nonce": bytes.fromhex,
        "stdout": base64.b64decode,
        "stderr": base64.b64decode,
        "outputs": _files,
    }
    return {name: decoders[name](value) for name, value in given.items()}


@pytest.mark.timeout(60)
def test_the_committed_vectors_are_what_the_generator_writes() -> None:
    completed = subprocess.run(
        [sys.executable, str(VECTORS_DIR / "make_receipt_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_every_valid_vector_verifies_with_all_its_expectations(vector: dict[str, Any]) -> None:
    envelope = base64.b64decode(vector["cose"])
    expected = vector["expected"]
    given_input = vector["input"]
    job_input = JobInput(
        stdin=base64.b64decode(given_input["stdin"]),
        args=tuple(given_input["args"]),
        env=tuple(sorted(given_input["env"].items())),
        module_name=given_input["module_name"],
        files=_files(given_input["files"]),
        **_determinism(given_input["determinism"]),
    )
    module = base64.b64decode(vector["module"])
    assert hashlib.sha256(module).hexdigest() == expected["module_sha256"]
    receipt = verify_envelope(
        envelope,
        expected_executor=expected["executor"],
        expected_job_id=expected["job_id"],
        expected_nonce=bytes.fromhex(expected["nonce"]),
        expected_module_sha256=expected["module_sha256"],
        stdout=base64.b64decode(vector["stdout"]),
        stderr=base64.b64decode(vector["stderr"]),
        job_input=job_input,
        outputs=_files(vector["outputs"]),
    )
    assert receipt.executor == VECTORS["keys"]["executor"]["peer_id"]
    assert receipt_to_json(envelope) == vector["receipt_json"]


@pytest.mark.parametrize("vector", VECTORS["tampered"], ids=lambda v: v["name"])
def test_every_tampered_vector_fails_for_its_labelled_reason(vector: dict[str, Any]) -> None:
    assert vector["reason"] in REASONS
    with pytest.raises(ReceiptError) as info:
        verify_envelope(base64.b64decode(vector["cose"]), **expectations(vector["verify_with"]))
    assert info.value.reason == vector["reason"]


def test_the_vectors_cover_every_failure_reason() -> None:
    # result_mismatch is about a saved job result, not the receipt: tests/protocol/
    # test_saved_verification.py covers it; log_invalid is about a result's log proof:
    # tests/protocol/test_transparency.py covers it; the quorum reasons are about a saved
    # quorum of receipts: tests/protocol/test_quorum_agreement.py covers them.
    assert {vector["reason"] for vector in VECTORS["tampered"]} == REASONS - {
        "result_mismatch",
        "log_invalid",
        "no_quorum",
        "duplicate_executor",
        "quorum_mismatch",
    }
