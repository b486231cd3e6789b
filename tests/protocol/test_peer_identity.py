"""libp2p peer IDs of Ed25519 keys, computed without libp2p."""

from __future__ import annotations

import nacl.signing
import pytest

from plasm.protocol.errors import PeerIdError
from plasm.protocol.identity import (
    b58decode,
    b58encode,
    peer_id_from_public_key,
    public_key_from_peer_id,
)

# Computed once with py-libp2p 0.8.1:
#   ID.from_pubkey(create_new_key_pair(seed=bytes(range(32))).public_key).to_base58()
SEED = bytes(range(32))
LIBP2P_PUBLIC_KEY = bytes.fromhex(
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
)
LIBP2P_PEER_ID = "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"
# the same for seed bytes(32)
ZERO_SEED_PEER_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
# a real RSA peer ID (sha256 multihash), from the IPFS bootstrap list
RSA_PEER_ID = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"


def test_peer_id_matches_the_libp2p_vector() -> None:
    assert nacl.signing.SigningKey(SEED).verify_key.encode() == LIBP2P_PUBLIC_KEY
    assert peer_id_from_public_key(LIBP2P_PUBLIC_KEY) == LIBP2P_PEER_ID


def test_peer_id_matches_the_libp2p_vector_of_the_zero_seed() -> None:
    key = nacl.signing.SigningKey(bytes(32)).verify_key.encode()
    assert peer_id_from_public_key(key) == ZERO_SEED_PEER_ID


def test_peer_id_matches_libp2p_itself_for_many_keys() -> None:
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    for i in range(20):
        seed = bytes([i]) * 32
        pair = create_new_key_pair(seed=seed)
        raw = nacl.signing.SigningKey(seed).verify_key.encode()
        assert peer_id_from_public_key(raw) == ID.from_pubkey(pair.public_key).to_base58()


def test_public_key_comes_back_out_of_the_peer_id() -> None:
    assert public_key_from_peer_id(LIBP2P_PEER_ID) == LIBP2P_PUBLIC_KEY


def test_public_key_from_peer_id_refuses_an_rsa_peer_id() -> None:
    with pytest.raises(PeerIdError, match="sha256 multihash"):
        public_key_from_peer_id(RSA_PEER_ID)


def test_public_key_from_peer_id_refuses_a_non_ed25519_identity_key() -> None:
    secp256k1 = b"\x00\x25\x08\x02\x12\x21" + b"\x02" * 33  # KeyType 2, 33-byte key
    with pytest.raises(PeerIdError, match="Ed25519"):
        public_key_from_peer_id(b58encode(secp256k1))


def test_public_key_from_peer_id_refuses_another_multihash() -> None:
    with pytest.raises(PeerIdError, match="identity multihash"):
        public_key_from_peer_id(b58encode(b"\x13\x40" + b"\x00" * 64))


@pytest.mark.parametrize("text", ["", "12D3KooW0OIl", "not a peer id"])
def test_public_key_from_peer_id_refuses_non_base58(text: str) -> None:
    with pytest.raises(PeerIdError):
        public_key_from_peer_id(text)


def test_public_key_from_peer_id_refuses_a_truncated_peer_id() -> None:
    with pytest.raises(PeerIdError):
        public_key_from_peer_id(LIBP2P_PEER_ID[:-1])


def test_peer_id_from_public_key_refuses_a_wrong_length() -> None:
    with pytest.raises(ValueError):
        peer_id_from_public_key(b"\x01" * 31)


@pytest.mark.parametrize(
    ("raw", "text"),
    [(b"", ""), (b"\x00", "1"), (b"\x00\x00\x01", "112"), (b"hello world", "StV1DL6CwTryKyV")],
)
def test_base58_known_values(raw: bytes, text: str) -> None:
    assert b58encode(raw) == text
    assert b58decode(text) == raw


def test_base58_round_trips_leading_zeros() -> None:
    for raw in (b"\x00" * 5, b"\x00\x00\xff", bytes(range(40))):
        assert b58decode(b58encode(raw)) == raw
