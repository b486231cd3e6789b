"""Verified reuse in protocol/: the job description, its key, and signed memo records."""

from __future__ import annotations

import dataclasses
import hashlib

import nacl.signing
import pytest

from plasm.protocol import cbor, cose
from plasm.protocol.receipt import build_receipt, sign_receipt
from plasm.protocol.reuse import (
    CONTENT_TYPE_MEMO,
    ReuseError,
    check_receipt_matches,
    describe,
    description_of_receipt,
    memo_payload,
    sign_memo,
    verify_memo,
)
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from tests.protocol.conftest import MODULE, NONCE, peer_id_of

MODULE_HEX = hashlib.sha256(MODULE).hexdigest()


def _receipt(executor: str, job_input: JobInput, limits: Limits, outcome: Outcome, job_id: str,
             requester: str):
    return build_receipt(job_id, MODULE_HEX, job_input, limits, outcome, "wasmtime", "50.0.1",
                         executor, requester, NONCE)


def test_description_ignores_the_run_and_covers_the_job(
    job_input: JobInput, limits: Limits, outcome: Outcome, job_id: str, executor_id: str,
    requester_id: str,
) -> None:
    key = describe(MODULE_HEX, job_input, limits).key()
    receipt = _receipt(executor_id, job_input, limits, outcome, job_id, requester_id)
    assert description_of_receipt(receipt).key() == key
    other_run = dataclasses.replace(receipt, job_id="0" * 32, nonce=bytes(16),
                                    requester=executor_id, started_at_ms=5, wall_time_us=9)
    assert description_of_receipt(other_run).key() == key
    changed = [
        describe(MODULE_HEX, dataclasses.replace(job_input, stdin=b"other"), limits),
        describe(MODULE_HEX, dataclasses.replace(job_input, files=(("/input/in.txt", b"x"),)),
                 limits),
        describe(MODULE_HEX, dataclasses.replace(job_input, args=("y",)), limits),
        describe(MODULE_HEX, dataclasses.replace(job_input, seed=b"\x01"), limits),
        describe(MODULE_HEX, job_input, dataclasses.replace(limits, fuel=limits.fuel + 1)),
        describe("00" * 32, job_input, limits),
    ]
    assert len({d.key() for d in changed} | {key}) == len(changed) + 1


def test_a_nondeterministic_job_is_not_reusable(job_input: JobInput, limits: Limits) -> None:
    with pytest.raises(ReuseError) as caught:
        describe(MODULE_HEX, dataclasses.replace(job_input, deterministic=False), limits)
    assert caught.value.reason == "not_reusable"


def test_receipt_must_match_field_by_field(
    job_input: JobInput, limits: Limits, outcome: Outcome, job_id: str, executor_id: str,
    requester_id: str,
) -> None:
    receipt = _receipt(executor_id, job_input, limits, outcome, job_id, requester_id)
    check_receipt_matches(receipt, describe(MODULE_HEX, job_input, limits))
    for wanted in (
        describe(MODULE_HEX, job_input, dataclasses.replace(limits, timeout_ms=9)),
        describe(MODULE_HEX, dataclasses.replace(job_input, stdin=b"x"), limits),
    ):
        with pytest.raises(ReuseError) as caught:
            check_receipt_matches(receipt, wanted)
        assert caught.value.reason == "description_mismatch"


@pytest.mark.parametrize("kind", [OutcomeKind.TIMEOUT, OutcomeKind.CANCELLED])
def test_a_run_that_was_stopped_is_not_reusable(
    kind: OutcomeKind, job_input: JobInput, limits: Limits, outcome: Outcome, job_id: str,
    executor_id: str, requester_id: str,
) -> None:
    stopped = dataclasses.replace(outcome, kind=kind, exit_code=None)
    receipt = _receipt(executor_id, job_input, limits, stopped, job_id, requester_id)
    with pytest.raises(ReuseError) as caught:
        check_receipt_matches(receipt, describe(MODULE_HEX, job_input, limits))
    assert caught.value.reason == "not_reusable"


@pytest.fixture
def memo_parts(signing_key, job_input, limits, outcome, job_id, executor_id, requester_id):
    receipt = _receipt(executor_id, job_input, limits, outcome, job_id, requester_id)
    envelope = sign_receipt(receipt, signing_key)
    key = describe(MODULE_HEX, job_input, limits).key()
    return key, envelope, outcome


def test_a_memo_record_round_trips(memo_parts, signing_key, executor_id) -> None:
    key, envelope, outcome = memo_parts
    record = sign_memo(memo_payload(key, envelope, outcome.stdout, outcome.stderr,
                                    outcome.output_files), signing_key)
    memo = verify_memo(record, key)
    assert memo.envelope == envelope and memo.publisher == executor_id
    assert memo.outputs == outcome.output_files and memo.stdout == outcome.stdout


def test_forged_memo_records_are_refused(
    memo_parts, signing_key: nacl.signing.SigningKey, other_key: nacl.signing.SigningKey,
    executor_id: str,
) -> None:
    key, envelope, outcome = memo_parts
    payload = memo_payload(key, envelope, outcome.stdout, outcome.stderr, outcome.output_files)
    record = sign_memo(payload, signing_key)

    def reason(bad: bytes, expected: bytes | None = key) -> str:
        with pytest.raises(ReuseError) as caught:
            verify_memo(bad, expected)
        return caught.value.reason

    # unsigned: the bare payload, or a record whose signature bytes were changed
    assert reason(payload) == "malformed"
    assert reason(record[:-1] + bytes([record[-1] ^ 1])) == "bad_signature"
    # signed by the right node, but filed under another job's key
    wrong_key = memo_payload(hashlib.sha256(b"x").digest(), envelope, outcome.stdout,
                             outcome.stderr, outcome.output_files)
    assert reason(cose.sign1(wrong_key, CONTENT_TYPE_MEMO, executor_id, signing_key),
                  None) == "key_mismatch"
    # a valid record asked for under another key
    assert reason(record, hashlib.sha256(b"y").digest()) == "key_mismatch"
    # output bytes that are not the receipt's
    lying = memo_payload(key, envelope, b"other", outcome.stderr, outcome.output_files)
    assert reason(cose.sign1(lying, CONTENT_TYPE_MEMO, executor_id, signing_key)) == "hash_mismatch"
    # a node signs only memos that check
    with pytest.raises(ReuseError):
        sign_memo(lying, signing_key)
    # the payload as another node would sign it: the receipt still decides
    assert verify_memo(cose.sign1(payload, CONTENT_TYPE_MEMO, peer_id_of(other_key), other_key),
                       key).publisher == peer_id_of(other_key)
    # a capability-typed signature never passes for a memo
    assert reason(cose.sign1(payload, cose.CONTENT_TYPE_CAPABILITIES, executor_id,
                             signing_key)) == "malformed"
    # not the documented map
    assert reason(cose.sign1(cbor.dumps({"v": 1}), CONTENT_TYPE_MEMO, executor_id,
                             signing_key)) == "malformed"



def test_the_manifest_takes_reuse() -> None:
    from plasm.protocol.errors import ManifestError
    from plasm.protocol.manifest import parse_manifest

    assert parse_manifest({"module_sha256": MODULE_HEX}).reuse == "off"
    assert parse_manifest({"module_sha256": MODULE_HEX, "reuse": "network"}).reuse == "network"
    for bad in ({"reuse": "always"}, {"reuse": "local", "determinism": "off"}):
        with pytest.raises(ManifestError) as caught:
            parse_manifest({"module_sha256": MODULE_HEX, **bad})
        assert caught.value.path == "$.reuse"


def test_the_memo_key_of_a_receipt_is_its_jobs_and_none_when_not_reusable(
    memo_parts, job_input: JobInput, limits: Limits, outcome: Outcome, job_id: str,
    executor_id: str, requester_id: str, signing_key: nacl.signing.SigningKey,
) -> None:
    from plasm.protocol.reuse import memo_key_of, memo_key_of_verified

    key, envelope, _ = memo_parts
    assert memo_key_of_verified(envelope) == key
    stopped = _receipt(executor_id, job_input, limits,
                       dataclasses.replace(outcome, kind=OutcomeKind.TIMEOUT, exit_code=None),
                       job_id, requester_id)
    assert memo_key_of(stopped) is None
    nondet = _receipt(executor_id, dataclasses.replace(job_input, deterministic=False), limits,
                      outcome, job_id, requester_id)
    assert memo_key_of(nondet) is None
    assert memo_key_of_verified(b"not a receipt") is None


def test_a_memo_over_the_size_cap_is_not_signed(
    signing_key, job_input: JobInput, limits: Limits, outcome: Outcome, job_id: str,
    executor_id: str, requester_id: str,
) -> None:
    from plasm.protocol.reuse import MAX_MEMO_SIZE

    loud = dataclasses.replace(outcome, stdout=b"x" * MAX_MEMO_SIZE)
    envelope = sign_receipt(_receipt(executor_id, job_input, limits, loud, job_id, requester_id),
                            signing_key)
    key = describe(MODULE_HEX, job_input, limits).key()
    payload = memo_payload(key, envelope, loud.stdout, loud.stderr, loud.output_files)
    with pytest.raises(ValueError, match="over"):
        sign_memo(payload, signing_key)


def test_the_memo_key_is_the_sha256_of_the_canonical_description(job_input: JobInput) -> None:
    for limits in (Limits(), Limits(fuel=1, memory_bytes=2**16, timeout_ms=1),
                   Limits(max_output_files=2**40)):
        for profile in ("wasi-p1-det/1", "wasi-p1-nondet/1"):
            d = dataclasses.replace(describe(MODULE_HEX, job_input, limits), profile=profile)
            assert d.key() == hashlib.sha256(d.to_cbor()).digest()
            assert cbor.loads(d.to_cbor())["limits"] == limits.to_json()
