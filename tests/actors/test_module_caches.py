"""The module caches are bounded in bytes, not entries: a module may be 256 MiB."""

from __future__ import annotations

from plasm.actors.negotiator import ModuleLookup
from plasm.runtime.lru import ENTRY_BYTES, weighed_in_bytes

MIB = 2**20


def test_the_lookup_forgets_the_oldest_module_once_their_bytes_pass_its_budget() -> None:
    lookup = ModuleLookup(None, cache_bytes=10 * MIB)
    for name in "abc":
        lookup.remember(name, bytes(4 * MIB))  # 12 MiB together
    assert lookup.get("a") is None
    assert lookup.get("b") is not None and lookup.get("c") is not None


def test_tiny_modules_are_bounded_too() -> None:
    lookup = ModuleLookup(None, cache_bytes=10 * ENTRY_BYTES)
    for n in range(20):
        lookup.remember(str(n), b"\x00asm")
    assert sum(lookup.get(str(n)) is not None for n in range(20)) == 10 * ENTRY_BYTES // (
        weighed_in_bytes(b"\x00asm"))


def test_the_default_budget_holds_a_module_of_the_default_maximum_size() -> None:
    # A module heavier than the whole budget is never cached: read from the journal per job.
    lookup = ModuleLookup(None)
    lookup.remember("max", bytes(256 * MIB))  # blobs.max_module_bytes by default
    assert lookup.get("max") is not None
