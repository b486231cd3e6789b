"""Fixtures of the protocol tests: fixed keys, a real outcome, a built and signed receipt."""

from __future__ import annotations

import hashlib

import nacl.signing
import pytest

from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import Receipt, build_receipt, sign_receipt
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind

MODULE = b"\x00asm\x01\x00\x00\x00"  # the smallest valid wasm module
JOB_ID = "018c2b6f3a40" + "5e1f0c9d8b7a6f5e4d3c"
NONCE = bytes(range(16))


def peer_id_of(key: nacl.signing.SigningKey) -> str:
    return peer_id_from_public_key(key.verify_key.encode())


@pytest.fixture
def signing_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes(range(32)))


@pytest.fixture
def other_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(b"another peer").digest())


@pytest.fixture
def executor_id(signing_key: nacl.signing.SigningKey) -> str:
    return peer_id_of(signing_key)


@pytest.fixture
def requester_id(other_key: nacl.signing.SigningKey) -> str:
    return peer_id_of(other_key)


@pytest.fixture
def job_input() -> JobInput:
    return JobInput(
        stdin=b"hello",
        args=("--upper", "x"),
        env=(("LANG", "C"), ("TZ", "UTC")),
        files=(("/input/in.txt", b"input file"),),
    )


@pytest.fixture
def limits() -> Limits:
    return Limits(fuel=5_000_000, memory_bytes=16 * 2**20, timeout_ms=2_000, max_output_bytes=4096)


@pytest.fixture
def outcome() -> Outcome:
    return Outcome(
        kind=OutcomeKind.EXIT,
        exit_code=3,
        message=None,
        stdout=b"olleh\n",
        stderr="warn\u00e9\n".encode(),
        stdout_truncated=False,
        stderr_truncated=False,
        fuel_consumed=1234,
        wall_time_us=410,
        started_at_ms=1_700_000_000_000,
        finished_at_ms=1_700_000_000_001,
        output_files=(("/output/a.txt", b"A"), ("/output/dir/b.bin", b"\x00\x01")),
    )


@pytest.fixture
def job_id() -> str:
    return JOB_ID


@pytest.fixture
def nonce() -> bytes:
    return NONCE


@pytest.fixture
def module() -> bytes:
    return MODULE


@pytest.fixture
def module_sha256() -> str:
    return hashlib.sha256(MODULE).hexdigest()


@pytest.fixture
def receipt(
    job_input: JobInput,
    limits: Limits,
    outcome: Outcome,
    module_sha256: str,
    executor_id: str,
    requester_id: str,
) -> Receipt:
    return build_receipt(
        job_id=JOB_ID,
        module_sha256=module_sha256,
        job_input=job_input,
        limits=limits,
        outcome=outcome,
        engine_name="wasmtime",
        engine_version="50.0.1",
        executor=executor_id,
        requester=requester_id,
        nonce=NONCE,
    )


@pytest.fixture
def envelope(receipt: Receipt, signing_key: nacl.signing.SigningKey) -> bytes:
    return sign_receipt(receipt, signing_key)
