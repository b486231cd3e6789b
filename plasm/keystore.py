"""The node key: one 32-byte Ed25519 seed in the state dir.

The same seed is the libp2p identity and the receipt-signing key, so a peer ID names
the key that signs that peer's receipts. The file holds the raw seed, mode 0600; a key
file that group or others may read is refused rather than silently used, because a
leaked seed lets anyone forge this node's receipts.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from plasm.errors import PlasmError
from plasm.protocol.identity import peer_id_from_public_key

KEY_FILE_NAME = "node.key"
SEED_SIZE = 32


class KeyStoreError(PlasmError):
    """The node key file is missing, unreadable, malformed or too widely readable."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    signing_key: SigningKey
    public_key: bytes
    peer_id: str
    path: Path

    @classmethod
    def from_seed(cls, seed: bytes, path: Path) -> NodeIdentity:
        key = SigningKey(seed)
        public = bytes(key.verify_key)
        return cls(key, public, peer_id_from_public_key(public), path)


def key_path(state_dir: Path) -> Path:
    return state_dir / KEY_FILE_NAME


def create_key(state_dir: Path) -> NodeIdentity:
    """Write a new random seed; refuses to replace an existing key."""
    path = key_path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    seed = os.urandom(SEED_SIZE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyStoreError(
            f"{path} already exists; a node key is an identity, so it is never overwritten "
            "(move it away first if you really want a new identity)"
        ) from exc
    with os.fdopen(fd, "wb") as out:
        out.write(seed)
        out.flush()
        os.fsync(out.fileno())
    return NodeIdentity.from_seed(seed, path)


def load_key(state_dir: Path) -> NodeIdentity:
    path = key_path(state_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise KeyStoreError(f"no node key at {path}; run `plasmd keygen` to make one") from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot read the node key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as key_file:
        mode = os.fstat(key_file.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"{path} has mode {stat.S_IMODE(mode):04o}; a node key must be readable by "
                f"its owner only: run `chmod 600 {path}`"
            )
        seed = key_file.read(SEED_SIZE + 1)
    if len(seed) != SEED_SIZE:
        raise KeyStoreError(
            f"{path} holds {len(seed)} bytes, not a {SEED_SIZE}-byte Ed25519 seed; "
            "restore the right file or move it away and run `plasmd keygen`"
        )
    return NodeIdentity.from_seed(seed, path)


def load_or_create_key(state_dir: Path) -> NodeIdentity:
    """The node key, made on first use."""
    try:
        return load_key(state_dir)
    except KeyStoreError:
        if key_path(state_dir).exists() or key_path(state_dir).is_symlink():
            raise
    try:
        return create_key(state_dir)
    except KeyStoreError:
        # Another process made it between our two looks: use theirs.
        return load_key(state_dir)
