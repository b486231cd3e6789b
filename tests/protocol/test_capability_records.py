"""Signed capability records: only the peer they describe can have written them."""

from __future__ import annotations

import dataclasses

import nacl.signing
import pytest

from plasm.protocol import cose
from plasm.protocol.capabilities import sign_capabilities, verify_capabilities
from plasm.protocol.errors import CapabilitiesError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import Capabilities, ModuleRequest, encode_message
from plasm.runtime.job import Limits


@pytest.fixture
def caps(executor_id: str) -> Capabilities:
    return Capabilities(
        peer_id=executor_id,
        arch="x86_64",
        os="linux",
        cpus=4,
        memory_bytes=8 * 2**30,
        runtimes=("wasi_snapshot_preview1",),
        engine_name="wasmtime",
        engine_version="50.0.1",
        max_limits=Limits(fuel=10**10),
        free_slots=3,
        addresses=("/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"),
        expires_at_ms=1_700_000_060_000,
    )


def reason_of(record: bytes, **kwargs: int) -> str:
    with pytest.raises(CapabilitiesError) as info:
        verify_capabilities(record, **kwargs)
    return info.value.reason


def test_a_signed_record_verifies_to_the_same_capabilities(
    caps: Capabilities, signing_key: nacl.signing.SigningKey
) -> None:
    assert verify_capabilities(sign_capabilities(caps, signing_key)) == caps


def test_a_record_is_accepted_before_it_expires(
    caps: Capabilities, signing_key: nacl.signing.SigningKey
) -> None:
    record = sign_capabilities(caps, signing_key)
    assert verify_capabilities(record, now_ms=caps.expires_at_ms - 1) == caps


def test_an_expired_record_is_refused(
    caps: Capabilities, signing_key: nacl.signing.SigningKey
) -> None:
    record = sign_capabilities(caps, signing_key)
    assert reason_of(record, now_ms=caps.expires_at_ms) == "expired"


def test_signing_another_peers_capabilities_is_refused(
    caps: Capabilities, other_key: nacl.signing.SigningKey
) -> None:
    with pytest.raises(ValueError, match="refusing to sign"):
        sign_capabilities(caps, other_key)


def test_a_record_about_another_peer_is_a_key_mismatch(
    caps: Capabilities, other_key: nacl.signing.SigningKey
) -> None:
    other = peer_id_from_public_key(other_key.verify_key.encode())
    record = cose.sign1(encode_message(caps), cose.CONTENT_TYPE_CAPABILITIES, other, other_key)
    assert reason_of(record) == "key_mismatch"


def test_an_altered_record_is_a_bad_signature(
    caps: Capabilities, signing_key: nacl.signing.SigningKey
) -> None:
    record = sign_capabilities(caps, signing_key)
    payload = encode_message(caps)
    altered = encode_message(dataclasses.replace(caps, free_slots=caps.free_slots ^ 1))
    assert len(altered) == len(payload) and altered != payload
    assert reason_of(record.replace(payload, altered)) == "bad_signature"


def test_a_receipt_signature_cannot_pass_as_a_record(
    caps: Capabilities, signing_key: nacl.signing.SigningKey
) -> None:
    record = cose.sign1(encode_message(caps), cose.CONTENT_TYPE_RECEIPT, caps.peer_id, signing_key)
    assert reason_of(record) == "malformed"  # its signed content type says receipt


def test_a_signed_record_holding_another_message_is_malformed(
    signing_key: nacl.signing.SigningKey,
) -> None:
    peer = peer_id_from_public_key(signing_key.verify_key.encode())
    message = encode_message(ModuleRequest("ab" * 32))
    record = cose.sign1(message, cose.CONTENT_TYPE_CAPABILITIES, peer, signing_key)
    assert reason_of(record) == "malformed"


@pytest.mark.parametrize("record", [b"", b"\xa0", b"\xff" * 10])
def test_garbage_is_malformed(record: bytes) -> None:
    assert reason_of(record) == "malformed"
