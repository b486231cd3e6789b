"""What both sides of the negotiator use: the clock and module lookups."""

from __future__ import annotations

import logging
import time
from typing import Any

import pykka

from plasm.actors._mailbox import ask
from plasm.actors.errors import ActorLayerError
from plasm.actors.messages import GetModule, ModuleFound
from plasm.runtime.lru import BoundedLRU, weighed_in_bytes

log = logging.getLogger("plasm.actors.negotiator")

LOOKUP_TIMEOUT_S = 5.0
# In bytes, not entries: a module may be 256 MiB (blobs.max_module_bytes).
MODULE_CACHE_BYTES = 512 * 2**20


class NegotiatorError(ActorLayerError):
    """The negotiator could not take a remote job (for example an invalid placement)."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ModuleLookup:
    """Module bytes by hash: an LRU cache (bounded in bytes) in front of the node's module
    store.

    `store` (the journal, or in tests an ingress) answers `GetModule` from its own state
    and never asks back, so the blocking ask on a cache miss cannot deadlock.
    """

    def __init__(
        self, store: pykka.ActorRef[Any] | None, cache_bytes: int = MODULE_CACHE_BYTES
    ) -> None:
        self._store = store
        self._cache: BoundedLRU[str, bytes] = BoundedLRU(cache_bytes, weight=weighed_in_bytes)

    def get(self, sha256: str) -> bytes | None:
        cached = self._cache.get(sha256)
        if cached is not None:
            return cached
        if self._store is None:
            return None
        try:
            found = ask(self._store, GetModule(module_sha256=sha256), timeout=LOOKUP_TIMEOUT_S)
        except Exception as exc:
            log.warning("module lookup of %s failed: %s", sha256, exc)
            return None
        if not isinstance(found, ModuleFound) or found.data is None:
            return None
        self.remember(sha256, found.data)
        return found.data

    def remember(self, sha256: str, data: bytes) -> None:
        self._cache.put(sha256, data)
