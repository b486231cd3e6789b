"""A bounded mapping that forgets its least recently used entry: the one LRU of the project.

Pure (no threads, no locks): each user is an actor or holds its own lock. Used by the ingress
and negotiator module caches, the negotiator's warm-peer map and the executor's known pairs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """At most ``capacity`` entries; ``get`` and ``put`` make an entry the most recent."""

    __slots__ = ("_capacity", "_entries")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"an LRU needs a capacity of at least 1, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recent), or None."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def peek(self, key: K) -> V | None:
        """The value for ``key`` without making it more recent, or None."""
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        """Store (or replace) ``key``; the least recent entries beyond capacity are dropped."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

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
