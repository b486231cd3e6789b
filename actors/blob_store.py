"""Content-addressed blobs on disk: input files, stdin and outputs too big to carry inline.

Theory of operation
-------------------
A blob is named by the sha256 of its bytes and lives in ``<root>/<first two hex>/<sha256>``.
It is written by streaming (``BlobStore.writer``): chunks go to a temporary file in the root
while a hash runs over them, and ``commit`` renames the file into place only when the whole
is in and the hash matches what the writer was promised (if it was promised one). Nothing
holds a whole blob in memory on the way in; ``read_range`` serves it out in pieces. A writer
may also ``seal`` instead: the bytes are whole and hashed in its temporary file, which the
caller copies elsewhere (``POST /v1/modules`` stages a module there for the journal) and
which goes when the writer ends.

Two writers of the same bytes race harmlessly: both renames put identical content at one
name. A reader never sees a partial blob, because partial ones only exist under temporary
names (``.tmp-*``), which ``__init__`` sweeps away after a crash.

Bounds. ``max_blob_bytes`` caps one blob and ``max_bytes`` all of them together; a writer
that would cross either is stopped at the chunk that crosses it (``BlobTooLargeError``,
``BlobStoreFullError``) and leaves nothing behind. Space a writer has taken is reserved
while it writes, so concurrent writers cannot together overshoot ``max_bytes``. A full disk
(ENOSPC, EDQUOT) is ``BlobStoreFullError`` too: the caller answers 507 and nothing is kept.

Garbage collection. ``collect(keep)`` deletes every blob not in ``keep`` (the hashes some job
still needs, from the journal) whose file is older than ``min_age_s``, so a blob uploaded
for a job that has not been submitted yet survives a collection that runs in between.

The store is thread-safe: the accounting is under one lock, file writes are not.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
import time
from collections.abc import Container, Iterator
from pathlib import Path

from plasm.actors.errors import (
    BlobError,
    BlobHashError,
    BlobNotFoundError,
    BlobStoreFullError,
    BlobTooLargeError,
)
from plasm.protocol.formats import is_sha256_hex

__all__ = [
    "BlobError",
    "BlobHashError",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreFullError",
    "BlobTooLargeError",
    "BlobWriter",
]

_TMP_PREFIX = ".tmp-"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class BlobStore:
    def __init__(self, root: Path, max_bytes: int, max_blob_bytes: int) -> None:
        if max_blob_bytes <= 0 or max_bytes <= 0:
            raise ValueError("blob store limits must be positive")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_blob_bytes = max_blob_bytes
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self._stored = 0  # bytes of committed blobs
        self._reserved = 0  # bytes promised to writers still writing
        for entry in self.root.iterdir():
            if entry.name.startswith(_TMP_PREFIX):
                entry.unlink(missing_ok=True)  # a writer a crash interrupted
        for _, size in self._walk():
            self._stored += size

    # -- reading -----------------------------------------------------------------------------

    def path_for(self, sha256: str) -> Path:
        if not is_sha256_hex(sha256):
            raise BlobNotFoundError(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
        return self.root / sha256[:2] / sha256

    def size(self, sha256: str) -> int | None:
        """The blob's size, or None when it is not here."""
        try:
            return self.path_for(sha256).stat().st_size
        except (FileNotFoundError, BlobNotFoundError):
            return None

    def has(self, sha256: str) -> bool:
        return self.size(sha256) is not None

    def read(self, sha256: str) -> bytes:
        """The whole blob (for the sandbox, which needs it whole anyway)."""
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {sha256} here") from None

    def read_range(self, sha256: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end, none past it)."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be non-negative")
        try:
            with open(self.path_for(sha256), "rb") as blob:
                blob.seek(offset)
                return blob.read(length)
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {sha256} here") from None

    def chunks(self, sha256: str, chunk_size: int = 2**20) -> Iterator[bytes]:
        """The blob in pieces of ``chunk_size`` (for streaming it out)."""
        try:
            blob = open(self.path_for(sha256), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {sha256} here") from None
        with blob:
            while piece := blob.read(chunk_size):
                yield piece

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._stored + self._reserved

    # -- writing -----------------------------------------------------------------------------

    def writer(
        self,
        expected_sha256: str | None = None,
        *,
        max_size: int | None = None,
        limit_name: str = "blobs.max_blob_bytes",
    ) -> BlobWriter:
        """A streaming writer; ``expected_sha256``: refuse bytes that hash otherwise.

        ``max_size`` caps this writer instead of ``max_blob_bytes`` (a module being staged
        is held to ``blobs.max_module_bytes``; ``limit_name`` is the key the error names)."""
        if expected_sha256 is not None and not is_sha256_hex(expected_sha256):
            raise BlobHashError(f"{expected_sha256!r} is not a sha256 (64 lowercase hex digits)")
        cap = self.max_blob_bytes if max_size is None else max_size
        return BlobWriter(self, expected_sha256, cap, limit_name)

    def put(self, data: bytes, expected_sha256: str | None = None) -> str:
        """Store ``data`` whole; its sha256."""
        with self.writer(expected_sha256) as writer:
            writer.write(data)
            return writer.commit()

    def _reserve(self, extra: int, blob_total: int, cap: int, limit_name: str) -> None:
        if blob_total > cap:
            raise BlobTooLargeError(
                f"the blob is over this node's limit of {cap} bytes ({limit_name})"
            )
        with self._lock:
            if self._stored + self._reserved + extra > self.max_bytes:
                raise BlobStoreFullError(
                    f"the blob store is full ({self.max_bytes} bytes, blobs.max_bytes); "
                    "blobs no job needs are collected as jobs end, or raise blobs.max_bytes"
                )
            self._reserved += extra

    def _release(self, reserved: int, stored: int) -> None:
        with self._lock:
            self._reserved -= reserved
            self._stored += stored

    # -- garbage collection ------------------------------------------------------------------

    def _walk(self) -> Iterator[tuple[Path, int]]:
        for bucket in self.root.iterdir():
            if not bucket.is_dir() or len(bucket.name) != 2:
                continue
            for blob in bucket.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    yield blob, blob.stat().st_size

    def hashes(self) -> list[str]:
        return sorted(path.name for path, _ in self._walk() if is_sha256_hex(path.name))

    def collect(self, keep: Container[str], min_age_s: float = 3600.0) -> int:
        """Delete blobs not in ``keep`` and older than ``min_age_s``; how many went."""
        cutoff = time.time() - min_age_s
        removed = 0
        for path, size in list(self._walk()):
            if path.name in keep:
                continue
            try:
                if path.stat().st_mtime > cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
            self._release(0, -size)
        return removed


class BlobWriter:
    """One blob being written; use as a context manager (an exception aborts it)."""

    def __init__(
        self, store: BlobStore, expected_sha256: str | None, cap: int, limit_name: str
    ) -> None:
        self._store = store
        self._expected = expected_sha256
        self._cap = cap
        self._limit_name = limit_name
        self._sealed: str | None = None
        self._hash = hashlib.sha256()
        self.size = 0
        self._reserved = 0
        self._done = False
        fd, name = _temp_file(store.root)
        self._path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._done:
            self.abort()

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._done or self._sealed is not None:
            raise BlobError("this blob writer is finished")
        try:
            self._store._reserve(
                len(chunk), self.size + len(chunk), self._cap, self._limit_name
            )
        except BlobError:
            self.abort()
            raise
        self._reserved += len(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.abort()
            if exc.errno in _FULL_ERRNOS:
                raise BlobStoreFullError(
                    f"the disk holding {self._store.root} is full: free space there"
                ) from exc
            raise BlobError(f"cannot write a blob under {self._store.root}: {exc}") from exc
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def path(self) -> Path:
        """The temporary file the bytes go to (complete once ``seal`` returned)."""
        return self._path

    def seal(self) -> str:
        """Finish writing without putting the blob in place; its sha256.

        The bytes stay in ``path`` (still reserved against ``max_bytes``) for the caller to
        copy elsewhere — a module into the journal — and go with ``abort`` or the end of the
        ``with`` block. A hash other than the promised one aborts."""
        if self._done:
            raise BlobError("this blob writer is finished")
        if self._sealed is None:
            digest = self._hash.hexdigest()
            if self._expected is not None and digest != self._expected:
                self.abort()
                raise BlobHashError(
                    f"the bytes hash to {digest}, not the promised {self._expected}"
                )
            try:
                self._file.close()
            except OSError as exc:
                self.abort()
                if exc.errno in _FULL_ERRNOS:
                    raise BlobStoreFullError(
                        f"the disk holding {self._store.root} is full"
                    ) from exc
                raise BlobError(f"cannot write a blob under {self._store.root}: {exc}") from exc
            self._sealed = digest
        return self._sealed

    def commit(self) -> str:
        """Put the blob in place; its sha256. A hash other than the promised one aborts."""
        digest = self.seal()
        final = self._store.path_for(digest)
        try:
            existed = final.exists()
            final.parent.mkdir(exist_ok=True)
            os.replace(self._path, final)
        except OSError as exc:
            self.abort()
            if exc.errno in _FULL_ERRNOS:
                raise BlobStoreFullError(f"the disk holding {self._store.root} is full") from exc
            raise BlobError(f"cannot store a blob under {self._store.root}: {exc}") from exc
        self._done = True
        # A blob that was already here is counted once: its second copy replaced the first.
        self._store._release(self._reserved, 0 if existed else self.size)
        return digest

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            self._file.close()
        self._path.unlink(missing_ok=True)
        self._store._release(self._reserved, 0)


def _temp_file(root: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=_TMP_PREFIX, dir=root)
