"""The on-disk cache of compiled modules: ``<root>/<engine fingerprint>/<sha256>.cwasm``.

A file holds a small header (magic + sha256 of the payload) and the bytes of
``Module.serialize()``. wasmtime only checks that serialized code matches its version and
settings, not that it is intact, and deserializing damaged machine code is unsafe; so a file
whose checksum does not match is treated as absent and rewritten. Files are written to a
temporary name and renamed, so readers never see half a file.

The directory holds at most ``max_bytes`` (file sizes, headers included): an index of the
files, built from the directory at start (oldest modification time first) and kept in a
``BoundedLRU`` weighed in bytes, says which file to delete when a new one would not fit. A
load makes a file the most recent (in the index only: no write per load). Another process
sharing the directory may delete files this one indexed; a missing file is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
from pathlib import Path

from plasm.runtime.lru import BoundedLRU

_MAGIC = b"PLASMCW1"
_DIGEST_LEN = 32
HEADER_BYTES = len(_MAGIC) + _DIGEST_LEN
DEFAULT_MAX_BYTES = 2**30
log = logging.getLogger(__name__)


def engine_fingerprint(engine_version: str, settings: dict[str, object]) -> str:
    """A stable hash of everything that makes compiled code incompatible."""
    identity = {
        "engine": "wasmtime",
        "version": engine_version,
        "machine": platform.machine(),
        "system": platform.system(),
        "settings": settings,
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class DiskCache:
    """Compiled modules on disk under a byte budget; every method may be called from any
    thread."""

    def __init__(self, root: Path, fingerprint: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = root / fingerprint
        self._lock = threading.Lock()
        self._files: BoundedLRU[str, int] = BoundedLRU(max_bytes, weight=_size)
        self._index_existing()

    @property
    def total_bytes(self) -> int:
        return self._files.total_weight

    def path_for(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.cwasm"

    def load(self, sha256: str) -> bytes | None:
        """The serialized module for ``sha256``, or None if absent or damaged."""
        try:
            blob = self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            with self._lock:
                self._files.pop(sha256)
            return None
        except OSError as exc:
            log.warning("cannot read module cache file for %s: %s", sha256, exc)
            return None
        payload = blob[HEADER_BYTES:]
        if (
            blob[: len(_MAGIC)] != _MAGIC
            or blob[len(_MAGIC) : HEADER_BYTES] != hashlib.sha256(payload).digest()
        ):
            log.warning("module cache file for %s is damaged; recompiling it", sha256)
            return None
        with self._lock:
            if not self._files.touch(sha256):
                self._evict(self._files.put(sha256, len(blob)))
        return payload

    def store(self, sha256: str, serialized: bytes) -> None:
        """Write atomically, then delete the least recently used files past the budget; a
        failure only costs a recompile later, so it is logged. A module larger than the
        whole budget is not stored."""
        size = HEADER_BYTES + len(serialized)
        if size > self._files.capacity:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".cwasm")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(_MAGIC + hashlib.sha256(serialized).digest() + serialized)
                os.replace(tmp, self.path_for(sha256))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("cannot write module cache file for %s: %s", sha256, exc)
            return
        with self._lock:
            self._evict(self._files.put(sha256, size), keep=sha256)

    def _evict(self, dropped: list[tuple[str, int]], keep: str | None = None) -> None:
        for sha256, _size in dropped:
            if sha256 != keep:
                try:
                    self.path_for(sha256).unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("cannot delete module cache file for %s: %s", sha256, exc)

    def _index_existing(self) -> None:
        entries = []
        try:
            with os.scandir(self.directory) as listing:
                for entry in listing:
                    if entry.name.endswith(".cwasm") and not entry.name.startswith("."):
                        with contextlib.suppress(FileNotFoundError):
                            stat = entry.stat()
                            entries.append((stat.st_mtime_ns, entry.name[:-6], stat.st_size))
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot list the module cache %s: %s", self.directory, exc)
            return
        with self._lock:
            for _mtime, sha256, size in sorted(entries):
                self._evict(self._files.put(sha256, size))


def _size(size: int) -> int:
    return size
