"""Signed envelopes: ``{"v": 1, "body": bytes, "sig": 64 bytes, "key": 32 bytes}``.

The signature is Ed25519 over ``domain + body`` where ``domain`` names what the body is
(``b"plasm/receipt/v1\\x00"``, ``b"plasm/capabilities/v1\\x00"``), so a signature made for one
kind of document can never be replayed as another. The body is kept as the exact bytes that
were signed; a verifier checks those bytes and only then decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from plasm.protocol import cbor
from plasm.protocol.errors import DecodeError

ENVELOPE_VERSION = 1
SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32
_KEYS = {"v", "body", "sig", "key"}


@dataclass(frozen=True, slots=True)
class Envelope:
    body: bytes
    signature: bytes
    public_key: bytes


def seal(domain: bytes, body: bytes, signing_key: nacl.signing.SigningKey) -> bytes:
    """Sign ``body`` under ``domain`` and wrap it in an envelope."""
    signature = signing_key.sign(domain + body).signature
    return cbor.dumps(
        {
            "v": ENVELOPE_VERSION,
            "body": body,
            "sig": signature,
            "key": signing_key.verify_key.encode(),
        }
    )


def open_envelope(data: bytes, *, max_size: int) -> Envelope:
    """Decode an envelope strictly and check its shape; ``DecodeError`` otherwise.

    The signature is *not* checked here: see ``signature_is_valid``.
    """
    raw = cbor.loads(data, max_size=max_size, max_depth=2)
    if not isinstance(raw, dict) or set(raw) != _KEYS:
        raise DecodeError(f"an envelope is a map with exactly the keys {sorted(_KEYS)}")
    if type(raw["v"]) is not int or raw["v"] != ENVELOPE_VERSION:
        raise DecodeError(f"unsupported envelope version {raw['v']!r}; expected 1")
    body, signature, key = raw["body"], raw["sig"], raw["key"]
    if not isinstance(body, bytes):
        raise DecodeError("envelope body must be a byte string")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise DecodeError(f"envelope sig must be {SIGNATURE_SIZE} bytes")
    if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_SIZE:
        raise DecodeError(f"envelope key must be {PUBLIC_KEY_SIZE} bytes")
    return Envelope(body=body, signature=signature, public_key=key)


def signature_is_valid(domain: bytes, envelope: Envelope) -> bool:
    """Whether ``envelope.signature`` signs exactly ``domain + envelope.body``."""
    try:
        nacl.signing.VerifyKey(envelope.public_key).verify(
            domain + envelope.body, envelope.signature
        )
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True
