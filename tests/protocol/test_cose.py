"""COSE_Sign1 as Plasm writes it, checked by an independent COSE library (pycose)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cbor2
import nacl.signing
import pytest
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import CoseMessage, Sign1Message

from plasm.protocol import cose
from plasm.protocol.errors import DecodeError
from plasm.protocol.identity import peer_id_from_public_key

pytestmark = pytest.mark.timeout(30)

KEY = nacl.signing.SigningKey(bytes(range(32)))
PEER = peer_id_from_public_key(KEY.verify_key.encode())
PAYLOAD = cbor2.dumps({"a": 1, "b": "two"}, canonical=True)


def pycose_decode(data: bytes) -> Sign1Message:
    """pycose's own decoding, minus its ``isinstance(value, list)`` check.

    pycose 1.1 predates cbor2 6, which decodes a tag's array as a tuple and a map inside it as
    a frozendict; everything after that (headers, Sig_structure, Ed25519) is pycose's.
    """
    tagged = cbor2.loads(data)
    assert isinstance(tagged, cbor2.CBORTag) and tagged.tag == 18
    protected, unprotected, payload, signature = tagged.value
    parts = [protected, dict(unprotected), payload, signature]
    message = CoseMessage._COSE_MSG_ID[tagged.tag].from_cose_obj(parts, True)
    assert isinstance(message, Sign1Message)
    return message


def _signed(payload: bytes = PAYLOAD, content_type: str = cose.CONTENT_TYPE_RECEIPT) -> bytes:
    return cose.sign1(payload, content_type, PEER, KEY)


def test_pycose_verifies_what_we_sign_and_reads_our_headers() -> None:
    message = pycose_decode(_signed())
    message.key = OKPKey(crv=Ed25519, x=KEY.verify_key.encode())
    assert message.verify_signature()
    assert message.payload == PAYLOAD
    protected = cbor2.loads(message.phdr_encoded)
    assert protected == {1: -8, 3: cose.CONTENT_TYPE_RECEIPT, 4: PEER.encode()}
    assert message.uhdr == {}


def test_we_verify_what_pycose_signs_with_our_header_profile() -> None:
    from pycose.headers import KID, Algorithm, ContentType

    message = Sign1Message(
        phdr={Algorithm: -8, ContentType: cose.CONTENT_TYPE_RECEIPT, KID: PEER.encode()},
        payload=PAYLOAD,
    )
    message.key = OKPKey(crv=Ed25519, d=bytes(KEY), x=KEY.verify_key.encode())
    encoded = message.encode(tag=True)
    decoded = cose.decode_sign1(encoded, max_size=4096)
    assert cose.verify_sign1(decoded)
    assert (decoded.kid, decoded.payload) == (PEER, PAYLOAD)
    assert encoded == _signed()  # Ed25519 is deterministic: the same bytes


def test_the_protected_header_and_sig_structure_are_canonical_cbor() -> None:
    protected = cose.protected_header(cose.CONTENT_TYPE_RECEIPT, PEER)
    assert protected == cbor2.dumps(
        {1: -8, 3: cose.CONTENT_TYPE_RECEIPT, 4: PEER.encode()}, canonical=True
    )
    assert cose.sig_structure(protected, PAYLOAD) == cbor2.dumps(
        ["Signature1", protected, b"", PAYLOAD], canonical=True
    )


def test_a_signature_checks_against_the_kid_and_no_other_key() -> None:
    decoded = cose.decode_sign1(_signed(), max_size=4096)
    assert cose.verify_sign1(decoded)
    other = nacl.signing.SigningKey(bytes(32)).verify_key.encode()
    assert not cose.verify_sign1(decoded, other)


def test_a_changed_payload_or_content_type_fails_the_signature() -> None:
    good = _signed()
    tampered = good.replace(b"two", b"twx")
    assert tampered != good
    assert not cose.verify_sign1(cose.decode_sign1(tampered, max_size=4096))
    swapped = good.replace(b"receipt", b"tree-hd")  # same length, other type
    assert not cose.verify_sign1(cose.decode_sign1(swapped, max_size=4096))


def _reencoded(**changes: object) -> bytes:
    parts = cbor2.loads(_signed()).value
    protected = cbor2.loads(parts[0])
    fields = {
        "protected": parts[0],
        "unprotected": parts[1],
        "payload": parts[2],
        "signature": parts[3],
        "tag": True,
        **changes,
    }
    if "protected_map" in changes:
        fields["protected"] = cbor2.dumps(changes["protected_map"])
    del protected
    array = [fields["protected"], fields["unprotected"], fields["payload"], fields["signature"]]
    return cbor2.dumps(cbor2.CBORTag(18, array) if fields["tag"] else array)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (lambda: _reencoded(tag=False), "tag 18"),
        (lambda: _reencoded(unprotected={4: b"x"}), "unprotected"),
        (
            lambda: _reencoded(
                protected_map={3: cose.CONTENT_TYPE_RECEIPT, 1: -8, 4: PEER.encode()}
            ),
            "alg",
        ),
        (
            lambda: _reencoded(
                protected_map={1: -8, 3: cose.CONTENT_TYPE_RECEIPT, 4: PEER.encode(), 5: b"iv"}
            ),
            "map",
        ),
        (
            lambda: _reencoded(
                protected_map={1: -7, 3: cose.CONTENT_TYPE_RECEIPT, 4: PEER.encode()}
            ),
            "EdDSA",
        ),
        (lambda: _reencoded(signature=b"\0" * 63), "64 bytes"),
        (lambda: _signed() + b"\0", "trailing"),
        (lambda: _signed()[:-1], "too early"),
        # the payload's length in a longer form than needed: same values, other bytes
        (
            lambda: _signed().replace(
                bytes([0x40 | len(PAYLOAD)]) + PAYLOAD, bytes([0x58, len(PAYLOAD)]) + PAYLOAD
            ),
            "shortest",
        ),
    ],
    ids=[
        "untagged",
        "unprotected",
        "key-order",
        "extra-header",
        "other-alg",
        "short-sig",
        "trailing",
        "truncated",
        "long-form-length",
    ],
)
def test_every_other_encoding_is_refused(data, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        cose.decode_sign1(data(), max_size=4096)


def test_the_size_cap_and_the_content_type_are_checked_first() -> None:
    with pytest.raises(DecodeError, match="cap"):
        cose.decode_sign1(_signed(), max_size=10)
    with pytest.raises(DecodeError, match="expected"):
        cose.decode_sign1(_signed(), max_size=4096, content_type=cose.CONTENT_TYPE_TREE_HEAD)


def test_a_kid_that_is_no_peer_id_is_a_decode_error() -> None:
    forged = cose.sign1(PAYLOAD, cose.CONTENT_TYPE_RECEIPT, "not-a-peer", KEY)
    with pytest.raises(DecodeError, match="kid"):
        cose.verify_sign1(cose.decode_sign1(forged, max_size=4096))


def test_pycose_verifies_a_receipt_a_real_sandbox_run_produced() -> None:
    from plasm.protocol.identity import public_key_from_peer_id
    from plasm.protocol.receipt import build_receipt, sign_receipt
    from plasm.runtime.job import JobInput, Limits
    from plasm.runtime.sandbox import Sandbox

    hello = (Path(__file__).resolve().parents[2] / "wasm-examples" / "hello.wasm").read_bytes()
    job_input = JobInput(stdin=b"pycose", module_name="hello.wasm")
    with Sandbox() as sandbox:
        outcome = sandbox.run(hello, job_input, Limits())
    receipt = build_receipt(
        job_id="0" * 32, module_sha256=hashlib.sha256(hello).hexdigest(), job_input=job_input,
        limits=Limits(), outcome=outcome, engine_name="wasmtime", engine_version="x",
        executor=PEER, requester=PEER, nonce=bytes(16),
    )
    message = pycose_decode(sign_receipt(receipt, KEY))
    kid = cbor2.loads(message.phdr_encoded)[4].decode()
    message.key = OKPKey(crv=Ed25519, x=public_key_from_peer_id(kid))
    assert kid == PEER and message.verify_signature()
    assert outcome.stdout == b"esocyp\n"
    assert cbor2.loads(message.payload)["stdout_sha256"] == hashlib.sha256(outcome.stdout).digest()
