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


def ensure_state_dir(state_dir: Path) -> None:
    """Make the state dir (mode 0700) if it is missing; one clear error if it cannot be."""
    if state_dir.exists() and not state_dir.is_dir():
        raise KeyStoreError(f"state dir {state_dir} is not a directory; pass a directory")
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyStoreError(f"cannot make the state dir {state_dir}: {exc.strerror}") from exc


def tighten_state_dir(state_dir: Path) -> None:
    """Take group and other access away from the state dir and everything in it.

    The journal, the module cache and the lock are the daemon's alone; a state dir left
    0755 (an old install, a copy, a loose umask) would let any local user read every job's
    input. Sockets keep their mode (the API socket may live here and be shared on purpose)
    and symlinks are not followed. The node key is not touched: one others could read is
    refused by ``load_key``, because it may already have leaked.
    """
    key = key_path(state_dir)
    _tighten(state_dir, state_dir)
    for root, dirs, files in os.walk(state_dir):
        for name in dirs + files:
            path = Path(root, name)
            if path != key:
                _tighten(path, state_dir)


def _tighten(path: Path, state_dir: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return  # gone meanwhile (a cache file evicted, a stale socket)
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) or not mode & 0o077:
        return
    try:
        os.chmod(path, stat.S_IMODE(mode) & 0o700)
    except OSError as exc:
        raise KeyStoreError(
            f"{path} has mode {stat.S_IMODE(mode):04o} and cannot be made private "
            f"({exc.strerror}); the state dir must be the daemon user's alone: run "
            f"`chown -R $(id -un) {state_dir} && chmod -R go-rwx {state_dir}` as its owner"
        ) from exc


def create_key(state_dir: Path) -> NodeIdentity:
    """Write a new random seed; refuses to replace an existing key.

    The seed goes to a temporary file that is then hard-linked into place, so a
    concurrent reader sees no key or the whole key, never a short one.
    """
    path = key_path(state_dir)
    ensure_state_dir(state_dir)
    if path.exists() or path.is_symlink():
        raise _exists(path)
    seed = os.urandom(SEED_SIZE)
    tmp = state_dir / f".{KEY_FILE_NAME}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(seed)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)
    except FileExistsError as exc:
        raise _exists(path) from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot write the node key {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return NodeIdentity.from_seed(seed, path)


def _exists(path: Path) -> KeyStoreError:
    return KeyStoreError(
        f"{path} already exists; a node key is an identity, so it is never overwritten "
        "(move it away first if you really want a new identity)"
    )


def no_identity(state_dir: Path) -> KeyStoreError:
    return KeyStoreError(
        f"no node identity in {state_dir}; make one with `plasmd keygen --state-dir {state_dir}`"
    )


def load_key(state_dir: Path) -> NodeIdentity:
    """The existing node key; never makes one (nor the state dir)."""
    path = key_path(state_dir)
    if state_dir.exists() and not state_dir.is_dir():
        raise KeyStoreError(f"state dir {state_dir} is not a directory; pass a directory")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise no_identity(state_dir) from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot read the node key {path}: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise KeyStoreError(
            f"{path} is not a file (it is a {_kind(mode)}); move it away and run "
            f"`plasmd keygen --state-dir {state_dir}`, or restore the key file there"
        )
    with os.fdopen(fd, "rb") as key_file:
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


def _kind(mode: int) -> str:
    return "directory" if stat.S_ISDIR(mode) else "special file"


def check_private(path: Path, what: str) -> None:
    """Refuse a secret file that group or others may read (the key, the API token)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyStoreError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(
            f"{path} has mode {stat.S_IMODE(mode):04o}; the {what} must be readable by its "
            f"owner only: run `chmod 600 {path}`"
        )


def load_or_create_key(state_dir: Path) -> NodeIdentity:
    """The node key, made on first use (with the state dir)."""
    ensure_state_dir(state_dir)
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
