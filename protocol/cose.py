"""COSE_Sign1 (RFC 9052) as Plasm signs everything: Ed25519, one fixed header profile.

A signed object is the tagged COSE_Sign1 ``18([protected, {}, payload, signature])`` where

* ``protected`` is the byte string of the canonical CBOR map
  ``{1: -8, 3: content_type, 4: kid}``: algorithm EdDSA, the object's content type (which
  says what the payload is: a receipt, a capability record, a tree head), and the key ID,
  the UTF-8 bytes of the signer's peer ID (its Ed25519 public key sits in the peer ID's
  identity multihash, so the kid alone names the key);
* the unprotected header is the empty map;
* ``payload`` is the canonical CBOR body (RFC 8949 core deterministic encoding);
* ``signature`` is Ed25519 over the ``Sig_structure``
  ``["Signature1", protected, h'', payload]``, encoded canonically.

Any COSE library can check these: decode, rebuild the Sig_structure, verify with the key
from the kid. Because the content type is in the signed header, a signature over a receipt
can never pass for a capability record.

Decoding is strict and accepts one encoding only, ours: the tag, shortest-form lengths, the
exact protected map above, an empty unprotected map, a 64-byte signature, nothing after.
Anything else — the same values re-encoded, extra header parameters, an untagged array —
is ``DecodeError``, so two byte strings never verify as the same receipt. The payload's own
canonical form is the caller's to check (it knows the body's schema).
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from plasm.protocol.errors import DecodeError, PeerIdError
from plasm.protocol.identity import public_key_from_peer_id

COSE_SIGN1_TAG = 18
ALG_EDDSA = -8
HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID = 1, 3, 4
SIGNATURE_SIZE = 64

CONTENT_TYPE_RECEIPT = "application/vnd.plasm.receipt+cbor"
CONTENT_TYPE_CAPABILITIES = "application/vnd.plasm.capabilities+cbor"
CONTENT_TYPE_TREE_HEAD = "application/vnd.plasm.tree-head+cbor"

_MAJOR_BYTES, _MAJOR_TEXT, _MAJOR_ARRAY, _MAJOR_MAP, _MAJOR_TAG = 2, 3, 4, 5, 6
_MAX_HEADER_TEXT = 256


@dataclass(frozen=True, slots=True)
class Sign1:
    """A decoded COSE_Sign1 whose form is checked and whose signature is *not* (yet)."""

    protected: bytes  # the protected header's exact bytes, as signed
    payload: bytes
    signature: bytes
    content_type: str
    kid: str  # the signer's peer ID


def sign1(
    payload: bytes, content_type: str, kid: str, signing_key: nacl.signing.SigningKey
) -> bytes:
    """``payload`` signed as a tagged COSE_Sign1 of ``content_type`` by ``kid``'s key."""
    protected = protected_header(content_type, kid)
    signature = signing_key.sign(sig_structure(protected, payload)).signature
    return (
        _head(_MAJOR_TAG, COSE_SIGN1_TAG)
        + _head(_MAJOR_ARRAY, 4)
        + _bytes(protected)
        + _head(_MAJOR_MAP, 0)
        + _bytes(payload)
        + _bytes(signature)
    )


def protected_header(content_type: str, kid: str) -> bytes:
    """The canonical CBOR of ``{1: -8, 3: content_type, 4: kid bytes}``."""
    return (
        _head(_MAJOR_MAP, 3)
        + bytes([HEADER_ALG, 0x20 | (-1 - ALG_EDDSA)])
        + bytes([HEADER_CONTENT_TYPE])
        + _text(content_type)
        + bytes([HEADER_KID])
        + _bytes(kid.encode())
    )


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The canonical CBOR of ``["Signature1", protected, h'', payload]`` (RFC 9052 §4.4)."""
    return (
        _head(_MAJOR_ARRAY, 4)
        + _text("Signature1")
        + _bytes(protected)
        + _bytes(b"")
        + _bytes(payload)
    )


def decode_sign1(data: bytes, *, max_size: int, content_type: str | None = None) -> Sign1:
    """Decode a COSE_Sign1 in Plasm's one accepted encoding; ``DecodeError`` otherwise.

    ``content_type``: also refuse one of another type. The signature is not checked here:
    see ``verify_sign1``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected COSE bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise DecodeError(f"COSE_Sign1 of {len(data)} bytes exceeds the {max_size}-byte cap")
    reader = _Reader(data)
    if data[:1] != bytes([_MAJOR_TAG << 5 | COSE_SIGN1_TAG]) or reader.head(_MAJOR_TAG) != 18:
        raise DecodeError("not a COSE_Sign1: expected CBOR tag 18")
    if reader.head(_MAJOR_ARRAY) != 4:
        raise DecodeError("a COSE_Sign1 is an array of 4 items")
    protected = reader.byte_string("protected header")
    if reader.head(_MAJOR_MAP) != 0:
        raise DecodeError("the unprotected header must be empty")
    payload = reader.byte_string("payload")
    signature = reader.byte_string("signature")
    if len(signature) != SIGNATURE_SIZE:
        raise DecodeError(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes, not {len(signature)}")
    reader.end("COSE_Sign1")
    found_type, kid = _read_protected(protected)
    if content_type is not None and found_type != content_type:
        raise DecodeError(f"content type {found_type!r}, expected {content_type!r}")
    return Sign1(protected, payload, signature, found_type, kid)


def signer_key(sign1_: Sign1) -> bytes:
    """The Ed25519 public key named by the kid; ``DecodeError`` when it names none."""
    try:
        return public_key_from_peer_id(sign1_.kid)
    except PeerIdError as exc:
        raise DecodeError(f"the kid is not an Ed25519 peer ID: {exc}") from exc


def verify_sign1(sign1_: Sign1, public_key: bytes | None = None) -> bool:
    """Whether the signature is valid, by ``public_key`` (default: the kid's key)."""
    key = signer_key(sign1_) if public_key is None else public_key
    try:
        nacl.signing.VerifyKey(key).verify(
            sig_structure(sign1_.protected, sign1_.payload), sign1_.signature
        )
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def _read_protected(protected: bytes) -> tuple[str, str]:
    reader = _Reader(protected)
    if reader.head(_MAJOR_MAP) != 3:
        raise DecodeError("the protected header must be the map {1: alg, 3: content type, 4: kid}")
    if reader.raw(2) != bytes([HEADER_ALG, 0x20 | (-1 - ALG_EDDSA)]):
        raise DecodeError("the protected header must start with alg (1): EdDSA (-8)")
    if reader.raw(1) != bytes([HEADER_CONTENT_TYPE]):
        raise DecodeError("the protected header's second key must be content type (3)")
    content_type = reader.text_string("content type")
    if reader.raw(1) != bytes([HEADER_KID]):
        raise DecodeError("the protected header's third key must be kid (4)")
    kid_bytes = reader.byte_string("kid", limit=_MAX_HEADER_TEXT)
    reader.end("protected header")
    try:
        kid = kid_bytes.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise DecodeError("the kid must be the UTF-8 bytes of a peer ID") from exc
    return content_type, kid


class _Reader:
    """Reads CBOR heads in shortest form only (RFC 8949 §4.2.1); any other is DecodeError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def raw(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise DecodeError("COSE bytes end too early")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def head(self, major: int) -> int:
        initial = self.raw(1)[0]
        if initial >> 5 != major:
            raise DecodeError(f"expected CBOR major type {major}, found {initial >> 5}")
        info = initial & 0x1F
        if info < 24:
            return info
        if info > 27:
            raise DecodeError("indefinite or reserved CBOR lengths are refused")
        size = 1 << (info - 24)
        value = int.from_bytes(self.raw(size), "big")
        if value < (24 if size == 1 else 1 << (8 * size // 2)):
            raise DecodeError("a CBOR length is not in its shortest form")
        return value

    def byte_string(self, what: str, limit: int | None = None) -> bytes:
        length = self.head(_MAJOR_BYTES)
        if limit is not None and length > limit:
            raise DecodeError(f"the {what} is over {limit} bytes")
        return self.raw(length)

    def text_string(self, what: str) -> str:
        length = self.head(_MAJOR_TEXT)
        if length > _MAX_HEADER_TEXT:
            raise DecodeError(f"the {what} is over {_MAX_HEADER_TEXT} bytes")
        try:
            return self.raw(length).decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"the {what} is not UTF-8") from exc

    def end(self, what: str) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes after the {what}")


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError(f"CBOR length {value} does not fit in 64 bits")


def _bytes(value: bytes) -> bytes:
    return _head(_MAJOR_BYTES, len(value)) + value


def _text(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return _head(_MAJOR_TEXT, len(encoded)) + encoded
