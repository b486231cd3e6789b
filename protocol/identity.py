"""libp2p peer IDs for Ed25519 keys, without libp2p.

A libp2p peer ID of an Ed25519 key is the *identity* multihash (code 0x00, length 0x24) of the
protobuf ``PublicKey{Type: Ed25519 (1), Data: <32 raw bytes>}`` (``08 01 12 20 <key>``),
written in base58btc: always 38 bytes, always ``12D3KooW...``. The key is inside the ID, so a
receipt signed by a key can be tied to a peer ID offline, with no lookup.
"""

from __future__ import annotations

import functools

from plasm.protocol.errors import PeerIdError

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: i for i, char in enumerate(_ALPHABET)}

# identity multihash (0x00), 36 bytes follow; protobuf field 1 varint 1 (Ed25519);
# protobuf field 2, 32 bytes (the key)
_ED25519_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
_PEER_ID_SIZE = len(_ED25519_PREFIX) + 32
_SHA256_MULTIHASH = bytes([0x12, 0x20])


def b58encode(data: bytes) -> str:
    """base58btc (Bitcoin alphabet); each leading zero byte becomes a leading ``1``."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(_ALPHABET[rest])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Inverse of ``b58encode``; ``ValueError`` on a character outside the alphabet."""
    number = 0
    for char in text:
        try:
            number = number * 58 + _INDEX[char]
        except KeyError:
            raise ValueError(f"{char!r} is not a base58btc character") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


@functools.lru_cache(maxsize=1024)  # a node meets few keys, and checks each on every receipt
def peer_id_from_public_key(public_key: bytes) -> str:
    """The libp2p peer ID (``12D3KooW...``) of a raw 32-byte Ed25519 public key."""
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise ValueError("an Ed25519 public key is exactly 32 raw bytes")
    return b58encode(_ED25519_PREFIX + public_key)


def public_key_from_peer_id(peer_id: str) -> bytes:
    """The raw 32-byte Ed25519 public key inside ``peer_id``; ``PeerIdError`` if there is none."""
    if not isinstance(peer_id, str) or not peer_id:
        raise PeerIdError("a peer ID is a non-empty base58btc string such as 12D3KooW...")
    try:
        raw = b58decode(peer_id)
    except ValueError as exc:
        raise PeerIdError(f"peer ID {peer_id!r} is not base58btc: {exc}") from exc
    if raw[:2] == _SHA256_MULTIHASH:
        raise PeerIdError(
            f"peer ID {peer_id!r} is a sha256 multihash (an RSA or other large key); "
            "plasm peers use Ed25519 keys whose peer IDs start with 12D3KooW"
        )
    if raw[:1] != b"\x00":
        raise PeerIdError(f"peer ID {peer_id!r} is not an identity multihash")
    if len(raw) != _PEER_ID_SIZE or not raw.startswith(_ED25519_PREFIX):
        raise PeerIdError(
            f"peer ID {peer_id!r} does not hold an Ed25519 public key; "
            "plasm peers use Ed25519 keys whose peer IDs start with 12D3KooW"
        )
    return raw[len(_ED25519_PREFIX) :]
