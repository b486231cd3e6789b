"""Signed capability records: a peer's ``Capabilities`` message, signed with its own key.

The record is a signed envelope (``plasm.protocol.signed``) whose body is the encoded
``Capabilities`` message, under the domain ``b"plasm/capabilities/v1\\x00"``. Whoever fetched
it (from the DHT, from mDNS, from a third peer) can check that the peer it describes wrote it:
the envelope key must be the key inside ``caps.peer_id``.
"""

from __future__ import annotations

import nacl.signing

from plasm.protocol.errors import CapabilitiesError, DecodeError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import Capabilities, decode_message, encode_message
from plasm.protocol.signed import open_envelope, seal, signature_is_valid

CAPABILITIES_DOMAIN = b"plasm/capabilities/v1\x00"
MAX_RECORD_SIZE = 64 * 2**10


def sign_capabilities(caps: Capabilities, signing_key: nacl.signing.SigningKey) -> bytes:
    """The signed record of ``caps``; the key must be the one of ``caps.peer_id``."""
    key_peer_id = peer_id_from_public_key(signing_key.verify_key.encode())
    if key_peer_id != caps.peer_id:
        raise ValueError(
            f"refusing to sign capabilities of {caps.peer_id} with the key of {key_peer_id}"
        )
    return seal(CAPABILITIES_DOMAIN, encode_message(caps), signing_key)


def verify_capabilities(record: bytes, *, now_ms: int | None = None) -> Capabilities:
    """The ``Capabilities`` in ``record`` if its own peer signed it (and, given ``now_ms``, it
    has not expired); ``CapabilitiesError`` with a ``reason`` otherwise."""
    try:
        opened = open_envelope(record, max_size=MAX_RECORD_SIZE)
    except DecodeError as exc:
        raise CapabilitiesError("malformed", f"the record cannot be decoded: {exc}") from exc
    if not signature_is_valid(CAPABILITIES_DOMAIN, opened):
        raise CapabilitiesError("bad_signature", "the signature does not match the record")
    try:
        caps = decode_message(opened.body, max_size=MAX_RECORD_SIZE)
    except DecodeError as exc:
        raise CapabilitiesError("malformed", f"the record body is not valid: {exc}") from exc
    if not isinstance(caps, Capabilities):
        raise CapabilitiesError("malformed", f"the record holds a {type(caps).__name__}")
    signer = peer_id_from_public_key(opened.public_key)
    if signer != caps.peer_id:
        raise CapabilitiesError(
            "key_mismatch", f"the record describes {caps.peer_id} but {signer} signed it"
        )
    if now_ms is not None and caps.expires_at_ms <= now_ms:
        raise CapabilitiesError("expired", f"the record expired at {caps.expires_at_ms} ms")
    return caps
