"""Receipts: built from a real outcome, signed, verified offline, and every tampering caught."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
import nacl.signing
import pytest

from plasm.protocol import cbor
from plasm.protocol.errors import ReceiptError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import (
    REASONS,
    RECEIPT_DOMAIN,
    Receipt,
    input_sha256,
    sign_receipt,
    verify_envelope,
)
from plasm.protocol.signed import seal
from plasm.runtime.job import JobInput, Outcome

BODY_KEYS = {
    "v", "job_id", "module_sha256", "input_sha256", "stdout_sha256", "stderr_sha256",
    "stdout_len", "stderr_len", "stdout_truncated", "stderr_truncated", "outcome",
    "exit_code", "message", "fuel_consumed", "wall_time_us", "limits", "engine",
    "executor", "requester", "nonce", "started_at_ms", "finished_at_ms",
}  # fmt: skip


def open_raw(envelope: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    outer = cbor.loads(envelope)
    return outer, cbor.loads(outer["body"])


def with_body(envelope: bytes, body: dict[str, Any]) -> bytes:
    """The envelope with ``body`` re-encoded but the original signature and key kept."""
    outer, _ = open_raw(envelope)
    return cbor.dumps({**outer, "body": cbor.dumps(body)})


def resigned(body: dict[str, Any], key: nacl.signing.SigningKey) -> bytes:
    return seal(RECEIPT_DOMAIN, cbor.dumps(body), key)


THIRD_PEER_ID = peer_id_from_public_key(nacl.signing.SigningKey(b"\x07" * 32).verify_key.encode())


def altered(value: Any) -> Any:
    """A different value of the same kind (a valid peer ID becomes another valid peer ID)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    if isinstance(value, str):
        if value.startswith("12D3KooW"):
            return THIRD_PEER_ID
        return value[:-1] + ("0" if value[-1] != "0" else "1")
    if value is None:
        return 0
    if isinstance(value, dict):
        first = sorted(value)[0]
        return {**value, first: altered(value[first])}
    raise AssertionError(f"no alteration for {value!r}")


def reason_of(envelope: bytes, **expectations: Any) -> str:
    with pytest.raises(ReceiptError) as info:
        verify_envelope(envelope, **expectations)
    assert info.value.reason in REASONS
    return info.value.reason


def test_a_signed_receipt_verifies_and_gives_back_the_receipt(
    envelope: bytes, receipt: Receipt, outcome: Outcome, job_input: JobInput, nonce: bytes
) -> None:
    verified = verify_envelope(
        envelope,
        expected_executor=receipt.executor,
        expected_nonce=nonce,
        expected_job_id=receipt.job_id,
        expected_module_sha256=receipt.module_sha256.hex(),
        job_input=job_input,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
    )
    assert verified == receipt


def test_the_body_has_exactly_the_documented_keys(envelope: bytes) -> None:
    _, body = open_raw(envelope)
    assert set(body) == BODY_KEYS
    assert set(body["limits"]) == {
        "fuel", "memory_bytes", "timeout_ms", "max_output_bytes", "max_output_files_bytes",
        "max_output_file_bytes", "max_output_files", "max_input_files_bytes",
    }
    assert set(body["engine"]) == {"name", "version"}


def test_the_envelope_has_the_documented_shape(
    envelope: bytes, signing_key: nacl.signing.SigningKey
) -> None:
    outer, _ = open_raw(envelope)
    assert set(outer) == {"v", "body", "sig", "key"}
    assert outer["v"] == 1
    assert outer["key"] == signing_key.verify_key.encode()
    signing_key.verify_key.verify(b"plasm/receipt/v1\x00" + outer["body"], outer["sig"])


def test_the_receipt_records_the_outcome(receipt: Receipt, outcome: Outcome) -> None:
    assert receipt.outcome == outcome.kind
    assert receipt.exit_code == 3
    assert receipt.stdout_sha256 == hashlib.sha256(outcome.stdout).digest()
    assert receipt.stderr_len == len(outcome.stderr)
    assert receipt.fuel_consumed == outcome.fuel_consumed
    assert (receipt.started_at_ms, receipt.finished_at_ms) == (1_700_000_000_000, 1_700_000_000_001)


def test_input_hash_is_sha256_of_the_documented_cbor_map(job_input: JobInput) -> None:
    documented = cbor2.dumps(
        {
            "args": ["--upper", "x"],
            "env": {"LANG": "C", "TZ": "UTC"},
            "module_name": "module.wasm",
            "stdin": b"hello",
        },
        canonical=True,
    )
    assert input_sha256(job_input) == hashlib.sha256(documented).digest()


def test_input_hash_changes_with_each_part_of_the_input(job_input: JobInput) -> None:
    hashes = {
        input_sha256(job_input),
        input_sha256(JobInput(stdin=b"other", args=job_input.args, env=job_input.env)),
        input_sha256(JobInput(stdin=job_input.stdin, args=("y",), env=job_input.env)),
        input_sha256(JobInput(stdin=job_input.stdin, args=job_input.args, env=())),
        input_sha256(
            JobInput(
                stdin=job_input.stdin,
                args=job_input.args,
                env=job_input.env,
                module_name="other.wasm",
            )
        ),
    }
    assert len(hashes) == 5


def test_sign_receipt_refuses_a_key_that_is_not_the_executors(
    receipt: Receipt, other_key: nacl.signing.SigningKey
) -> None:
    with pytest.raises(ValueError, match="refusing to sign"):
        sign_receipt(receipt, other_key)


@pytest.mark.parametrize("key", sorted(BODY_KEYS - {"executor", "v"}))
def test_altering_any_body_field_breaks_the_signature(envelope: bytes, key: str) -> None:
    _, body = open_raw(envelope)
    body[key] = altered(body[key])
    assert body[key] != open_raw(envelope)[1][key]
    assert reason_of(with_body(envelope, body)) == "bad_signature"


def test_altering_the_executor_is_a_key_mismatch(envelope: bytes, requester_id: str) -> None:
    _, body = open_raw(envelope)
    body["executor"] = requester_id
    assert reason_of(with_body(envelope, body)) == "key_mismatch"


def test_altering_the_version_is_caught(envelope: bytes) -> None:
    _, body = open_raw(envelope)
    body["v"] = 2
    assert reason_of(with_body(envelope, body)) == "bad_signature"


def test_a_flipped_signature_bit_is_a_bad_signature(envelope: bytes) -> None:
    outer, _ = open_raw(envelope)
    outer["sig"] = bytes([outer["sig"][0] ^ 1]) + outer["sig"][1:]
    assert reason_of(cbor.dumps(outer)) == "bad_signature"


def test_a_flipped_key_bit_is_a_key_mismatch(envelope: bytes) -> None:
    outer, _ = open_raw(envelope)
    outer["key"] = outer["key"][:-1] + bytes([outer["key"][-1] ^ 1])
    assert reason_of(cbor.dumps(outer)) == "key_mismatch"


def test_another_valid_key_is_a_key_mismatch(
    envelope: bytes, other_key: nacl.signing.SigningKey
) -> None:
    outer, _ = open_raw(envelope)
    outer["key"] = other_key.verify_key.encode()
    assert reason_of(cbor.dumps(outer)) == "key_mismatch"


def test_a_body_resigned_by_another_key_is_a_key_mismatch(
    envelope: bytes, other_key: nacl.signing.SigningKey
) -> None:
    _, body = open_raw(envelope)
    body["exit_code"] = 0
    assert reason_of(resigned(body, other_key)) == "key_mismatch"


def test_a_forger_signing_as_itself_fails_the_executor_expectation(
    envelope: bytes, receipt: Receipt, other_key: nacl.signing.SigningKey
) -> None:
    _, body = open_raw(envelope)
    body["executor"] = peer_id_from_public_key(other_key.verify_key.encode())
    forged = resigned(body, other_key)
    assert verify_envelope(forged).executor == body["executor"]  # self-consistent...
    assert reason_of(forged, expected_executor=receipt.executor) == "executor_mismatch"


def test_verification_checks_the_exact_signed_bytes_not_a_re_encoding(
    envelope: bytes, signing_key: nacl.signing.SigningKey
) -> None:
    _, body = open_raw(envelope)
    reordered = cbor2.dumps(dict(sorted(body.items())))  # valid CBOR, not canonical order
    assert reordered != cbor.dumps(body)
    signed_reordered = seal(RECEIPT_DOMAIN, reordered, signing_key)
    assert verify_envelope(signed_reordered) == verify_envelope(envelope)
    outer, _ = open_raw(envelope)
    swapped = cbor.dumps({**outer, "body": reordered})  # same content, other bytes
    assert reason_of(swapped) == "bad_signature"


def test_a_signature_from_another_domain_is_refused(
    envelope: bytes, signing_key: nacl.signing.SigningKey
) -> None:
    _, body = open_raw(envelope)
    other_domain = seal(b"plasm/capabilities/v1\x00", cbor.dumps(body), signing_key)
    assert reason_of(other_domain) == "bad_signature"


@pytest.mark.parametrize(
    "change",
    ["drop_field", "extra_field", "wrong_type", "short_hash", "bad_outcome", "engine_shape"],
)
def test_a_validly_signed_body_of_the_wrong_shape_is_malformed(
    envelope: bytes, signing_key: nacl.signing.SigningKey, change: str
) -> None:
    _, body = open_raw(envelope)
    if change == "drop_field":
        del body["fuel_consumed"]
    elif change == "extra_field":
        body["bonus"] = 1
    elif change == "wrong_type":
        body["stdout_len"] = "6"
    elif change == "short_hash":
        body["stdout_sha256"] = body["stdout_sha256"][:31]
    elif change == "bad_outcome":
        body["outcome"] = "victory"
    else:
        body["engine"] = {"name": "wasmtime"}
    assert reason_of(resigned(body, signing_key)) == "malformed"


def test_a_validly_signed_body_of_another_version_is_unsupported(
    envelope: bytes, signing_key: nacl.signing.SigningKey
) -> None:
    _, body = open_raw(envelope)
    body["v"] = 2
    assert reason_of(resigned(body, signing_key)) == "unsupported_version"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda env: b"",
        lambda env: b"\xff" * 40,
        lambda env: env + b"\x00",
        lambda env: env[:-1],
        lambda env: cbor.dumps({**cbor.loads(env), "extra": 1}),
        lambda env: cbor.dumps({**cbor.loads(env), "v": 2}),
        lambda env: cbor.dumps({**cbor.loads(env), "sig": b"\x00" * 63}),
        lambda env: cbor.dumps({**cbor.loads(env), "key": b"\x00" * 33}),
        lambda env: cbor.dumps({**cbor.loads(env), "body": b"\xff"}),
        lambda env: cbor.dumps({**cbor.loads(env), "body": cbor.dumps([1])}),
    ],
    ids=[
        "empty", "garbage", "trailing", "truncated", "extra-key", "envelope-v2",
        "short-sig", "long-key", "body-not-cbor", "body-not-map",
    ],
)  # fmt: skip
def test_a_broken_envelope_is_malformed(envelope: bytes, mangle: Any) -> None:
    assert reason_of(mangle(envelope)) == "malformed"


def test_a_wrong_nonce_fails_the_nonce_expectation(envelope: bytes) -> None:
    assert reason_of(envelope, expected_nonce=b"\x00" * 16) == "nonce_mismatch"


def test_a_wrong_job_id_fails_the_job_expectation(envelope: bytes) -> None:
    assert reason_of(envelope, expected_job_id="f" * 32) == "job_id_mismatch"


def test_another_module_fails_the_module_expectation(envelope: bytes) -> None:
    assert reason_of(envelope, expected_module_sha256="0" * 64) == "hash_mismatch"
    assert reason_of(envelope, expected_module_sha256=b"\x00" * 32) == "hash_mismatch"


def test_another_input_fails_the_input_expectation(envelope: bytes) -> None:
    assert reason_of(envelope, job_input=JobInput(stdin=b"hellO")) == "hash_mismatch"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_other_output_bytes_fail_the_hash_expectation(
    envelope: bytes, outcome: Outcome, stream: str
) -> None:
    real: bytes = getattr(outcome, stream)
    assert reason_of(envelope, **{stream: real[:-1]}) == "hash_mismatch"
    assert reason_of(envelope, **{stream: real + b"!"}) == "hash_mismatch"
    assert reason_of(envelope, **{stream: bytes([real[0] ^ 1]) + real[1:]}) == "hash_mismatch"
