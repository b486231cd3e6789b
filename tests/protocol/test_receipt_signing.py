"""Receipts: built from a real outcome, signed as COSE_Sign1, verified offline, every tampering
caught, and every other encoding of the same values refused."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
import nacl.signing
import pytest

from plasm.protocol import cbor, cose
from plasm.protocol.errors import ReceiptError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import (
    REASONS,
    Receipt,
    input_sha256,
    sign_receipt,
    verify_envelope,
)
from plasm.runtime.job import JobInput, Outcome

BODY_KEYS = {
    "v", "job_id", "module_sha256", "input_sha256", "stdout_sha256", "stderr_sha256",
    "stdout_len", "stderr_len", "stdout_truncated", "stderr_truncated", "outputs",
    "outputs_truncated", "outcome", "exit_code", "message", "fuel_consumed", "fuel_exact",
    "wall_time_us", "limits", "engine", "profile", "executor", "requester", "nonce",
    "started_at_ms", "finished_at_ms",
}  # fmt: skip


def open_raw(signed: bytes) -> tuple[list[Any], dict[str, Any]]:
    """The four COSE_Sign1 parts and the decoded body."""
    tagged = cbor2.loads(signed)
    assert tagged.tag == 18
    parts = list(tagged.value)
    return parts, cbor.loads(parts[2])


def reassembled(parts: list[Any]) -> bytes:
    protected, unprotected, payload, signature = parts
    return cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), payload, signature]))


def with_body(signed: bytes, body: dict[str, Any]) -> bytes:
    """The receipt with ``body`` re-encoded but the original header and signature kept."""
    parts, _ = open_raw(signed)
    parts[2] = cbor.dumps(body)
    return reassembled(parts)


def resigned(body: dict[str, Any], key: nacl.signing.SigningKey, payload: bytes | None = None
             ) -> bytes:
    kid = peer_id_from_public_key(key.verify_key.encode())
    return cose.sign1(payload or cbor.dumps(body), cose.CONTENT_TYPE_RECEIPT, kid, key)


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
    if isinstance(value, list):
        return [altered(value[0]), *value[1:]]
    raise AssertionError(f"no alteration for {value!r}")


def reason_of(signed: bytes, **expectations: Any) -> str:
    with pytest.raises(ReceiptError) as info:
        verify_envelope(signed, **expectations)
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
        outputs=outcome.output_files,
    )
    assert verified == receipt


def test_the_body_has_exactly_the_documented_keys(envelope: bytes) -> None:
    _, body = open_raw(envelope)
    assert set(body) == BODY_KEYS
    assert body["v"] == 2 and body["profile"] == "wasi-p1-det/1" and body["fuel_exact"] is True
    assert set(body["limits"]) == {
        "fuel", "memory_bytes", "timeout_ms", "max_output_bytes", "max_output_files_bytes",
        "max_output_file_bytes", "max_output_files", "max_input_files_bytes",
    }
    assert set(body["engine"]) == {"name", "version"}
    assert body["outputs"] == [
        {"path": "/output/a.txt", "size": 1, "sha256": hashlib.sha256(b"A").digest()},
        {"path": "/output/dir/b.bin", "size": 2, "sha256": hashlib.sha256(b"\0\1").digest()},
    ]


def test_the_cose_sign1_has_the_documented_headers_and_signature(
    envelope: bytes, signing_key: nacl.signing.SigningKey, executor_id: str
) -> None:
    parts, _ = open_raw(envelope)
    assert cbor2.loads(parts[0]) == {
        1: -8, 3: "application/vnd.plasm.receipt+cbor", 4: executor_id.encode()
    }
    assert parts[1] == {}
    sig_structure = cbor2.dumps(["Signature1", parts[0], b"", parts[2]], canonical=True)
    signing_key.verify_key.verify(sig_structure, parts[3])


def test_the_receipt_records_the_outcome(receipt: Receipt, outcome: Outcome) -> None:
    assert receipt.outcome == outcome.kind
    assert receipt.exit_code == 3
    assert receipt.stdout_sha256 == hashlib.sha256(outcome.stdout).digest()
    assert receipt.stderr_len == len(outcome.stderr)
    assert receipt.fuel_consumed == outcome.fuel_consumed
    assert (receipt.started_at_ms, receipt.finished_at_ms) == (1_700_000_000_000, 1_700_000_000_001)
    assert [o.path for o in receipt.outputs] == ["/output/a.txt", "/output/dir/b.bin"]


def test_input_hash_is_sha256_of_the_documented_cbor_map(job_input: JobInput) -> None:
    def digest(data: bytes) -> dict[str, Any]:
        return {"sha256": hashlib.sha256(data).digest(), "size": len(data)}

    documented = cbor2.dumps(
        {
            "args": ["--upper", "x"],
            "env": {"LANG": "C", "TZ": "UTC"},
            "files": [{"path": "/input/in.txt", **digest(b"input file")}],
            "module_name": "module.wasm",
            "stdin": digest(b"hello"),
            "determinism": {"epoch_ms": 1_700_000_000_000, "seed": None},
        },
        canonical=True,
    )
    assert input_sha256(job_input) == hashlib.sha256(documented).digest()


def test_input_hash_changes_with_each_part_of_the_input(job_input: JobInput) -> None:
    def but(**changes: Any) -> bytes:
        fields = {"stdin": job_input.stdin, "args": job_input.args, "env": job_input.env,
                  "files": job_input.files, **changes}
        return input_sha256(JobInput(**fields))

    hashes = {
        input_sha256(job_input),
        but(stdin=b"other"),
        but(args=("y",)),
        but(env=()),
        but(module_name="other.wasm"),
        but(files=()),
        but(files=(("/input/in.txt", b"input filE"),)),
        but(files=(("/input/other.txt", b"input file"),)),
    }
    assert len(hashes) == 8


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
    body["v"] = 3
    assert reason_of(with_body(envelope, body)) == "bad_signature"


def test_a_flipped_signature_bit_is_a_bad_signature(envelope: bytes) -> None:
    parts, _ = open_raw(envelope)
    parts[3] = bytes([parts[3][0] ^ 1]) + parts[3][1:]
    assert reason_of(reassembled(parts)) == "bad_signature"


def test_another_kid_is_a_key_mismatch(envelope: bytes, requester_id: str) -> None:
    parts, _ = open_raw(envelope)
    parts[0] = cose.protected_header(cose.CONTENT_TYPE_RECEIPT, requester_id)
    assert reason_of(reassembled(parts)) == "key_mismatch"


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


def test_a_validly_signed_body_that_is_not_canonical_cbor_is_refused(
    envelope: bytes, signing_key: nacl.signing.SigningKey
) -> None:
    _, body = open_raw(envelope)
    reordered = cbor2.dumps(dict(sorted(body.items())))  # valid CBOR, not canonical order
    assert reordered != cbor.dumps(body)
    assert reason_of(resigned(body, signing_key, payload=reordered)) == "malformed"
    long_form = b"\xb9\x00\x1a" + cbor.dumps(body)[2:]  # the map head in a longer form
    assert long_form != cbor.dumps(body)
    assert reason_of(resigned(body, signing_key, payload=long_form)) == "malformed"


def test_a_cose_sign1_of_another_content_type_is_refused(
    envelope: bytes, signing_key: nacl.signing.SigningKey, executor_id: str
) -> None:
    _, body = open_raw(envelope)
    other = cose.sign1(cbor.dumps(body), cose.CONTENT_TYPE_CAPABILITIES, executor_id, signing_key)
    assert reason_of(other) == "malformed"


def test_a_version_1_envelope_is_refused_with_a_clear_message(
    signing_key: nacl.signing.SigningKey, envelope: bytes
) -> None:
    _, body = open_raw(envelope)
    v1 = cbor.dumps({"v": 1, "body": cbor.dumps(body), "sig": bytes(64),
                     "key": signing_key.verify_key.encode()})
    with pytest.raises(ReceiptError, match="version 1") as info:
        verify_envelope(v1)
    assert info.value.reason == "unsupported_version"


@pytest.mark.parametrize(
    "change",
    ["drop_field", "extra_field", "wrong_type", "short_hash", "bad_outcome", "engine_shape",
     "bad_profile", "unsorted_outputs", "output_outside"],
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
    elif change == "bad_profile":
        body["profile"] = "anything-goes"
    elif change == "unsorted_outputs":
        body["outputs"] = list(reversed(body["outputs"]))
    elif change == "output_outside":
        body["outputs"][0]["path"] = "/etc/passwd"
    else:
        body["engine"] = {"name": "wasmtime"}
    assert reason_of(resigned(body, signing_key)) == "malformed"


def test_a_validly_signed_body_of_another_version_is_unsupported(
    envelope: bytes, signing_key: nacl.signing.SigningKey
) -> None:
    _, body = open_raw(envelope)
    body["v"] = 1
    assert reason_of(resigned(body, signing_key)) == "unsupported_version"


def _with_part(env: bytes, index: int, value: Any) -> bytes:
    parts, _ = open_raw(env)
    parts[index] = value
    return reassembled(parts)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda env: b"",
        lambda env: b"\xff" * 40,
        lambda env: env + b"\x00",
        lambda env: env[:-1],
        lambda env: env[1:],  # untagged
        lambda env: _with_part(env, 1, {4: b"kid"}),
        lambda env: _with_part(env, 3, b"\x00" * 63),
        lambda env: _with_part(env, 2, b"\xff"),
        lambda env: _with_part(env, 2, cbor.dumps([1])),
    ],
    ids=[
        "empty", "garbage", "trailing", "truncated", "untagged", "unprotected-header",
        "short-sig", "body-not-cbor", "body-not-map",
    ],
)  # fmt: skip
def test_a_broken_cose_sign1_is_malformed(envelope: bytes, mangle: Any) -> None:
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


def test_output_files_must_be_exactly_the_signed_ones(envelope: bytes, outcome: Outcome) -> None:
    files = outcome.output_files
    assert reason_of(envelope, outputs=files[:1]) == "hash_mismatch"  # one missing
    assert reason_of(envelope, outputs=(*files, ("/output/z", b""))) == "hash_mismatch"
    assert reason_of(envelope, outputs=((files[0][0], b"B"), files[1])) == "hash_mismatch"
