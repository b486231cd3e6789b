"""The disk cache of compiled code: a byte budget, least recently used files go first."""

from __future__ import annotations

import os
from pathlib import Path

from plasm.runtime._cache import HEADER_BYTES, DiskCache

FINGERPRINT = "f" * 32


def payload(tag: str, size: int = 100) -> bytes:
    return tag.encode() * size


def names(cache: DiskCache) -> set[str]:
    return {path.stem for path in cache.directory.glob("*.cwasm")}


def budget_for(entries: int, size: int = 100) -> int:
    return entries * (size + HEADER_BYTES)


def test_storing_past_the_budget_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, FINGERPRINT, max_bytes=budget_for(2))
    cache.store("a", payload("a"))
    cache.store("b", payload("b"))
    assert cache.load("a") == payload("a")  # now a is more recent than b
    cache.store("c", payload("c"))
    assert names(cache) == {"a", "c"}
    assert cache.load("b") is None
    assert cache.total_bytes == budget_for(2)


def test_an_entry_larger_than_the_budget_is_not_stored(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, FINGERPRINT, max_bytes=budget_for(1))
    cache.store("a", payload("a"))
    cache.store("big", payload("b", 1000))
    assert names(cache) == {"a"}


def test_a_new_cache_counts_the_files_already_there_oldest_first(tmp_path: Path) -> None:
    first = DiskCache(tmp_path, FINGERPRINT, max_bytes=budget_for(3))
    for index, tag in enumerate("abc"):
        first.store(tag, payload(tag))
        os.utime(first.path_for(tag), (1_000_000 + index, 1_000_000 + index))
    second = DiskCache(tmp_path, FINGERPRINT, max_bytes=budget_for(2))
    assert second.total_bytes == budget_for(2)  # over budget at start: trimmed
    assert names(second) == {"b", "c"}


def test_a_file_removed_behind_its_back_is_a_miss_and_frees_its_bytes(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, FINGERPRINT, max_bytes=budget_for(2))
    cache.store("a", payload("a"))
    cache.path_for("a").unlink()
    assert cache.load("a") is None
    assert cache.total_bytes == 0
