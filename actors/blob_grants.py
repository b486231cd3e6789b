"""Which peer may fetch which blob from this node over ``/plasm/blob/1.0.0``, and its bytes.

Theory of operation. A node serves a blob to a peer only when it has a reason to: the
module and input parts of a job it sent that peer (the requester grants them before it
sends the ``JobRequest``), or the output files of a job that peer asked it to run (the
executor grants them when it answers with the ``JobResult``). The negotiator grants; the
network actor's blob server asks ``lookup(peer, sha256)`` for every request and answers
``not_found`` to anything not granted, the same as for a blob it does not have.

A grant holds the bytes (the job's input and outputs are in memory already, as
``JobInput`` and ``Outcome`` hold them) and ends at ``expires_at`` or when the job it
belongs to is revoked. The bytes are shared per sha256, and all of them together are
bounded by ``max_bytes``: past it the grants closest to expiry go first, so a node that
served many jobs does not keep their outputs forever. Thread-safe: the negotiator's
thread grants, the trio thread looks up, a callback thread grants outputs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BlobGrants"]

DEFAULT_MAX_BYTES = 2 * 2**30


@dataclass(slots=True)
class _Blob:
    data: bytes
    grants: set[tuple[str, str]] = field(default_factory=set)  # (peer, job id)


@dataclass(slots=True)
class _Grant:
    expires_at: float
    shas: set[str] = field(default_factory=set)


class BlobGrants:
    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._blobs: dict[str, _Blob] = {}
        self._grants: dict[tuple[str, str], _Grant] = {}  # (peer, job id) -> grant
        self._bytes = 0

    def grant(self, peer: str, job_id: str, blobs: dict[str, bytes], ttl_s: float) -> None:
        """Let ``peer`` fetch these blobs (sha256 hex -> bytes) for ``ttl_s`` seconds."""
        with self._lock:
            key = (peer, job_id)
            grant = self._grants.setdefault(key, _Grant(self._clock() + ttl_s))
            grant.expires_at = max(grant.expires_at, self._clock() + ttl_s)
            for sha, data in blobs.items():
                blob = self._blobs.get(sha)
                if blob is None:
                    blob = self._blobs[sha] = _Blob(data)
                    self._bytes += len(data)
                blob.grants.add(key)
                grant.shas.add(sha)
            self._expire_locked()

    def revoke(self, peer: str, job_id: str) -> None:
        with self._lock:
            self._drop_locked((peer, job_id))

    def lookup(self, peer: str, sha256: str) -> bytes | None:
        """The blob's bytes if ``peer`` holds an unexpired grant for it, else None."""
        with self._lock:
            self._expire_locked()
            blob = self._blobs.get(sha256)
            if blob is None or not any(p == peer for p, _ in blob.grants):
                return None
            return blob.data

    @property
    def held_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _expire_locked(self) -> None:
        now = self._clock()
        for key in [k for k, g in self._grants.items() if g.expires_at <= now]:
            self._drop_locked(key)
        while self._bytes > self._max_bytes and self._grants:
            soonest = min(self._grants, key=lambda k: self._grants[k].expires_at)
            self._drop_locked(soonest)

    def _drop_locked(self, key: tuple[str, str]) -> None:
        grant = self._grants.pop(key, None)
        if grant is None:
            return
        for sha in grant.shas:
            blob = self._blobs.get(sha)
            if blob is None:
                continue
            blob.grants.discard(key)
            if not blob.grants:
                del self._blobs[sha]
                self._bytes -= len(blob.data)
