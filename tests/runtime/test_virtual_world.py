"""The virtual clocks and random stream a deterministic job sees (runtime/_clock.py)."""

from __future__ import annotations

import hashlib

import pytest

from plasm.runtime._clock import (
    CLOCK_MONOTONIC,
    CLOCK_REALTIME,
    DEFAULT_EPOCH_NS,
    TICK_NS,
    VirtualWorld,
)

pytestmark = pytest.mark.timeout(30)


def test_clocks_advance_one_tick_per_reading_from_the_epoch() -> None:
    world = VirtualWorld(b"seed")
    assert world.now(CLOCK_REALTIME) == DEFAULT_EPOCH_NS + TICK_NS
    assert world.now(CLOCK_MONOTONIC) == 2 * TICK_NS
    assert world.now(CLOCK_REALTIME) == DEFAULT_EPOCH_NS + 3 * TICK_NS
    assert world.now(99) is None and world.readings == 3


def test_the_random_stream_depends_only_on_the_seed_not_on_how_it_is_read() -> None:
    whole = VirtualWorld(b"seed").random(100)
    pieces = VirtualWorld(b"seed")
    assert b"".join(pieces.random(n) for n in (1, 31, 0, 33, 35)) == whole
    assert whole[:32] == hashlib.sha256(b"seed" + bytes(8)).digest()
    assert VirtualWorld(b"other").random(100) != whole
