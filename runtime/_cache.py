"""The on-disk cache of compiled modules: ``<root>/<engine fingerprint>/<sha256>.cwasm``.

A file holds a small header (magic + sha256 of the payload) and the bytes of
``Module.serialize()``. wasmtime only checks that serialized code matches its version and
settings, not that it is intact, and deserializing damaged machine code is unsafe; so a file
whose checksum does not match is treated as absent and rewritten. Files are written to a
temporary name and renamed, so readers never see half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
from pathlib import Path

_MAGIC = b"PLASMCW1"
_DIGEST_LEN = 32
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
    def __init__(self, root: Path, fingerprint: str) -> None:
        self.directory = root / fingerprint

    def path_for(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.cwasm"

    def load(self, sha256: str) -> bytes | None:
        """The serialized module for ``sha256``, or None if absent or damaged."""
        try:
            blob = self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read module cache file for %s: %s", sha256, exc)
            return None
        header = len(_MAGIC) + _DIGEST_LEN
        payload = blob[header:]
        if (
            blob[: len(_MAGIC)] != _MAGIC
            or blob[len(_MAGIC) : header] != hashlib.sha256(payload).digest()
        ):
            log.warning("module cache file for %s is damaged; recompiling it", sha256)
            return None
        return payload

    def store(self, sha256: str, serialized: bytes) -> None:
        """Write atomically; a failure only costs a recompile later, so it is logged."""
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
