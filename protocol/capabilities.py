"""Signed capability records: a peer's ``Capabilities`` message, signed with its own key.

The record is a COSE_Sign1 (``plasm.protocol.cose``) of content type
``application/vnd.plasm.capabilities+cbor`` whose payload is the encoded ``Capabilities``
message and whose kid is the peer's ID. Whoever fetched it (from the DHT, from mDNS, from a
third peer) can check that the peer it describes wrote it: the kid's key signed it, and the
kid is ``caps.peer_id``.
"""

from __future__ import annotations

import nacl.signing

from plasm.protocol import cose
from plasm.protocol.errors import CapabilitiesError, DecodeError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import Capabilities, decode_message, encode_message

MAX_RECORD_SIZE = 64 * 2**10


def sign_capabilities(caps: Capabilities, signing_key: nacl.signing.SigningKey) -> bytes:
    """The signed record of ``caps``; the key must be the one of ``caps.peer_id``."""
    key_peer_id = peer_id_from_public_key(signing_key.verify_key.encode())
    if key_peer_id != caps.peer_id:
        raise ValueError(
            f"refusing to sign capabilities of {caps.peer_id} with the key of {key_peer_id}"
        )
    return cose.sign1(
        encode_message(caps), cose.CONTENT_TYPE_CAPABILITIES, caps.peer_id, signing_key
    )


def verify_capabilities(record: bytes, *, now_ms: int | None = None) -> Capabilities:
    """The ``Capabilities`` in ``record`` if its own peer signed it (and, given ``now_ms``, it
    has not expired); ``CapabilitiesError`` with a ``reason`` otherwise."""
    try:
        signed = cose.decode_sign1(
            record, max_size=MAX_RECORD_SIZE, content_type=cose.CONTENT_TYPE_CAPABILITIES
        )
        valid = cose.verify_sign1(signed)
    except DecodeError as exc:
        raise CapabilitiesError("malformed", f"the record cannot be decoded: {exc}") from exc
    if not valid:
        raise CapabilitiesError("bad_signature", "the signature does not match the record")
    try:
        caps = decode_message(signed.payload, max_size=MAX_RECORD_SIZE)
    except DecodeError as exc:
        raise CapabilitiesError("malformed", f"the record body is not valid: {exc}") from exc
    if not isinstance(caps, Capabilities):
        raise CapabilitiesError("malformed", f"the record holds a {type(caps).__name__}")
    signer = signed.kid
    if signer != caps.peer_id:
        raise CapabilitiesError(
            "key_mismatch", f"the record describes {caps.peer_id} but {signer} signed it"
        )
    if now_ms is not None and caps.expires_at_ms <= now_ms:
        raise CapabilitiesError("expired", f"the record expired at {caps.expires_at_ms} ms")
    return caps
