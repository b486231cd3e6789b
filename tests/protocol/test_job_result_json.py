"""The JSON forms (receipt, job result) of real executions, checked against the schemas."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest

from plasm.protocol.errors import ReceiptError
from plasm.protocol.receipt import (
    Receipt,
    build_receipt,
    envelope_from_json,
    receipt_to_json,
    sign_receipt,
    verify_envelope,
)
from plasm.protocol.result import job_result_to_json
from plasm.protocol.schemas import load_schema, validator
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from plasm.runtime.sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "wasm-examples"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    yield box
    box.close()


def run_and_sign(
    sandbox: Sandbox,
    name: str,
    stdin: bytes,
    signing_key: nacl.signing.SigningKey,
    job_id: str,
    nonce: bytes,
) -> tuple[Outcome, str, str, bytes]:
    wasm = (EXAMPLES / f"{name}.wasm").read_bytes()
    job_input, limits = JobInput(stdin=stdin), Limits(timeout_ms=5_000)
    outcome = sandbox.run(wasm, job_input, limits)
    executor = str(
        __import__("plasm.protocol.identity", fromlist=["x"]).peer_id_from_public_key(
            signing_key.verify_key.encode()
        )
    )
    module_sha256 = hashlib.sha256(wasm).hexdigest()
    receipt = build_receipt(
        job_id, module_sha256, job_input, limits, outcome,
        sandbox.engine_name, sandbox.engine_version, executor, executor, nonce,
    )  # fmt: skip
    return outcome, module_sha256, executor, sign_receipt(receipt, signing_key)


@pytest.mark.parametrize(
    ("name", "stdin", "kind"),
    [("hello", b"", OutcomeKind.OK), ("hello", b"abc\n", OutcomeKind.OK), ("exit3", b"", "exit")],
)
def test_the_job_result_of_a_real_run_matches_its_schema(
    sandbox: Sandbox,
    signing_key: nacl.signing.SigningKey,
    job_id: str,
    nonce: bytes,
    name: str,
    stdin: bytes,
    kind: str,
) -> None:
    outcome, module_sha256, executor, envelope = run_and_sign(
        sandbox, name, stdin, signing_key, job_id, nonce
    )
    assert outcome.kind == kind
    result = job_result_to_json(job_id, "done", outcome, module_sha256, executor, envelope)
    validator("job-result").validate(result)
    assert base64.b64decode(result["stdout"]) == outcome.stdout
    assert result["stdout_text"] == outcome.stdout.decode()
    assert result["outcome"] == {
        "kind": str(kind),
        "exit_code": outcome.exit_code,
        "message": outcome.message,
    }
    assert verify_envelope(envelope_from_json(result["receipt"]), stdout=outcome.stdout)


def test_hello_world_has_the_documented_output(
    sandbox: Sandbox, signing_key: nacl.signing.SigningKey, job_id: str, nonce: bytes
) -> None:
    outcome, *_ = run_and_sign(sandbox, "hello", b"", signing_key, job_id, nonce)
    assert outcome.stdout == b"Hello, World!\n"


def test_a_job_result_refuses_output_its_receipt_does_not_sign(
    sandbox: Sandbox, signing_key: nacl.signing.SigningKey, job_id: str, nonce: bytes
) -> None:
    outcome, module_sha256, executor, envelope = run_and_sign(
        sandbox, "hello", b"", signing_key, job_id, nonce
    )
    lying = dataclasses.replace(outcome, stdout=b"Bye\n")
    with pytest.raises(ReceiptError, match="hash_mismatch"):
        job_result_to_json(job_id, "done", lying, module_sha256, executor, envelope)


def test_invalid_utf8_output_gets_replacement_characters_in_text_only(
    outcome: Outcome,
    receipt: Receipt,
    signing_key: nacl.signing.SigningKey,
    job_input: JobInput,
    limits: Limits,
) -> None:
    binary = dataclasses.replace(outcome, stdout=b"\xffok\n")
    signed = sign_receipt(
        build_receipt(
            receipt.job_id, receipt.module_sha256.hex(), job_input, limits, binary,
            "wasmtime", "50.0.1", receipt.executor, receipt.requester, receipt.nonce,
        ),
        signing_key,
    )  # fmt: skip
    result = job_result_to_json(
        receipt.job_id, "done", binary, receipt.module_sha256.hex(), receipt.executor, signed
    )
    assert result["stdout_text"] == "\ufffdok\n"
    assert base64.b64decode(result["stdout"]) == b"\xffok\n"
    assert result["stderr_text"] == "warn\u00e9\n"
    validator("job-result").validate(result)


def test_the_receipt_json_matches_its_schema_and_the_envelope(
    envelope: bytes, executor_id: str, nonce: bytes
) -> None:
    as_json = receipt_to_json(envelope)
    validator("receipt").validate(as_json)
    assert set(as_json) == {"cose", "executor", "body"}
    assert envelope_from_json(as_json) == envelope
    assert as_json["executor"] == executor_id == as_json["body"]["executor"]
    assert as_json["body"]["nonce"] == nonce.hex()


def test_receipt_json_refuses_a_forged_envelope(envelope: bytes) -> None:
    forged = bytearray(envelope)
    forged[-3] ^= 1
    with pytest.raises(ReceiptError):
        receipt_to_json(bytes(forged))


@pytest.mark.parametrize("obj", [{}, {"cose": 3}, {"cose": "not base64!"}, []])
def test_envelope_from_json_refuses_a_broken_object(obj: object) -> None:
    with pytest.raises(ReceiptError, match="malformed"):
        envelope_from_json(obj)


def test_a_version_1_receipt_json_is_refused_saying_so() -> None:
    with pytest.raises(ReceiptError, match="version 1") as info:
        envelope_from_json({"envelope": "oQ==", "body": {}})
    assert info.value.reason == "unsupported_version"


@pytest.mark.parametrize("name", ["manifest", "receipt", "job-result"])
def test_every_schema_is_valid_2020_12_with_an_id_under_plasm_dev(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://plasm.dev/schemas/{name}.schema.json"
    validator(name)  # check_schema runs inside
