"""A bounded mapping that forgets its least recently used entry: the one LRU of the project.

Pure (no threads, no locks): each user is an actor or holds its own lock. Used by the
negotiator's warm-peer map, the executor's known pairs and, weighed in bytes, the ingress and
negotiator module caches and the sandbox's compiled-code caches (memory and disk).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def _one(_value: object) -> int:
    return 1


ENTRY_BYTES = 4096  # what one entry of a byte-weighed cache costs besides its value


def weighed_in_bytes(value: bytes) -> int:
    """A bytes value's weight in a cache bounded in bytes (the module caches): its length
    plus ``ENTRY_BYTES``, so that a great many tiny values are bounded too."""
    return len(value) + ENTRY_BYTES


class BoundedLRU(Generic[K, V]):
    """At most ``capacity`` entries; ``get`` and ``put`` make an entry the most recent.

    With ``weight`` (e.g. ``len``) the capacity bounds the sum of the entries' weights
    instead of their count; an entry heavier than the whole capacity is not stored.
    """

    __slots__ = ("_capacity", "_entries", "_weight", "_weights", "total_weight")

    def __init__(self, capacity: int, weight: Callable[[V], int] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"an LRU needs a capacity of at least 1, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._weight = weight or _one
        self._weights: dict[K, int] = {}
        self.total_weight = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recent), or None."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def peek(self, key: K) -> V | None:
        """The value for ``key`` without making it more recent, or None."""
        return self._entries.get(key)

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Store (or replace) ``key``; the least recent entries beyond capacity are dropped
        and returned, oldest first (with ``value`` itself if it alone is over capacity)."""
        self.pop(key)
        weight = self._weight(value)
        if weight > self._capacity:
            return [(key, value)]
        self._entries[key] = value
        self._weights[key] = weight
        self.total_weight += weight
        dropped: list[tuple[K, V]] = []
        while self.total_weight > self._capacity:
            old_key, old_value = self._entries.popitem(last=False)
            self.total_weight -= self._weights.pop(old_key)
            dropped.append((old_key, old_value))
        return dropped

    def pop(self, key: K) -> V | None:
        """Remove ``key``; its value, or None if absent."""
        if key not in self._entries:
            return None
        self.total_weight -= self._weights.pop(key)
        return self._entries.pop(key)

    def setdefault(self, key: K, make: Callable[[], V]) -> V:
        """The value for ``key`` (now the most recent), stored from ``make()`` if absent."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def touch(self, key: K) -> bool:
        """Make ``key`` the most recent without reading it; False if absent."""
        if key not in self._entries:
            return False
        self._entries.move_to_end(key)
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)
