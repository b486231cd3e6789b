"""The determinism profile: virtual clocks and a seeded random stream, seen by a real C
program (wasm-examples/clock_random.c) and by the arithmetic underneath (runtime/_clock.py)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest

from plasm.runtime._clock import CLOCK_MONOTONIC, CLOCK_REALTIME, TICK_NS, VirtualWorld
from plasm.runtime.job import DEFAULT_EPOCH_MS, JobInput, Outcome, OutcomeKind

RunExample = Callable[..., Outcome]

pytestmark = pytest.mark.timeout(60)

EPOCH_NS = DEFAULT_EPOCH_MS * 1_000_000


def test_clocks_advance_one_tick_per_reading_from_the_epoch() -> None:
    world = VirtualWorld(b"seed", EPOCH_NS)
    assert world.now(CLOCK_REALTIME) == EPOCH_NS + TICK_NS
    assert world.now(CLOCK_MONOTONIC) == 2 * TICK_NS
    assert world.now(CLOCK_REALTIME) == EPOCH_NS + 3 * TICK_NS
    assert world.now(99) is None and world.readings == 3


def test_the_random_stream_depends_only_on_the_seed_not_on_how_it_is_read() -> None:
    whole = VirtualWorld(b"seed", 0).random(100)
    pieces = VirtualWorld(b"seed", 0)
    assert b"".join(pieces.random(n) for n in (1, 31, 0, 33, 35)) == whole
    assert whole[:32] == hashlib.sha256(b"seed" + bytes(8)).digest()
    assert VirtualWorld(b"other", 0).random(100) != whole


def _readings(stdout: bytes) -> tuple[str, str, str]:
    text = stdout.decode()
    found = re.fullmatch(r"time (\S+)\nmonotonic step (\d+) ns\nrandom ([0-9a-f]{32})\n", text)
    assert found, text
    return found.group(1), found.group(2), found.group(3)


def test_a_program_reading_clock_and_random_prints_the_same_every_run(
    run_example: RunExample,
) -> None:
    first = run_example("clock_random")
    second = run_example("clock_random")
    assert first.kind == OutcomeKind.OK, first
    assert first.stdout == second.stdout
    wall, step, _ = _readings(first.stdout)
    assert wall == "1700000000.000001000" and step == str(TICK_NS)


def test_the_seed_and_the_epoch_are_the_jobs_to_choose(run_example: RunExample) -> None:
    default = _readings(run_example("clock_random").stdout)
    seeded = _readings(run_example("clock_random", seed=b"\x01").stdout)
    assert seeded[2] != default[2] and seeded[0] == default[0]
    assert _readings(run_example("clock_random", seed=b"\x01").stdout) == seeded
    later = _readings(run_example("clock_random", epoch_ms=2_000_000_000_000).stdout)
    assert later[0] == "2000000000.000001000"
    # Without a seed the stream is seeded by the input's hash: another input, other bytes.
    assert _readings(run_example("clock_random", args=("x",)).stdout)[2] != default[2]


def test_determinism_off_gives_the_hosts_clock_and_randomness(run_example: RunExample) -> None:
    import time

    runs = [_readings(run_example("clock_random", deterministic=False).stdout) for _ in range(2)]
    assert runs[0][2] != runs[1][2]
    assert abs(float(runs[0][0]) - time.time()) < 600


def test_floats_and_nans_come_out_the_same_every_run(run_example: RunExample) -> None:
    outcomes = [run_example("floats", args=("2000",)) for _ in range(2)]
    assert outcomes[0].kind == OutcomeKind.OK, outcomes[0]
    assert outcomes[0].stdout == outcomes[1].stdout
    assert b"nan bits 7ff8000000000000 7ff8000000000000" in outcomes[0].stdout


def test_the_input_hash_covers_the_determinism_settings() -> None:
    hashes = {
        JobInput().sha256(),
        JobInput(deterministic=False).sha256(),
        JobInput(seed=b"\x00").sha256(),
        JobInput(epoch_ms=0).sha256(),
    }
    assert len(hashes) == 4
    assert JobInput().random_seed() == JobInput().sha256()
    assert JobInput(seed=b"s").random_seed() == b"s"


def test_clock_floats_turns_clock_and_random_into_the_same_floats_every_run(
    run_example: RunExample,
) -> None:
    """wasm-examples/clock_floats.c, the cross-architecture job: its float work is seeded by
    the clocks and random_get, so it is the same only because they are."""
    runs = [run_example("clock_floats", args=("500",)) for _ in range(2)]
    assert runs[0].kind == OutcomeKind.OK, runs[0]
    assert runs[0].stdout == runs[1].stdout
    lines = runs[0].stdout.decode().splitlines()
    assert lines[0] == f"clock {EPOCH_NS + TICK_NS} ns, monotonic step {TICK_NS} ns"
    assert lines[2] == "steps 500"
    assert lines[-1] == "nan bits 7ff8000000000000 7ff8000000000000 7fc00000"
    seeded = run_example("clock_floats", args=("500",), seed=b"\x01").stdout.decode()
    assert seeded.splitlines()[1] != lines[1]  # other random bytes,
    assert seeded.splitlines()[3] != lines[3]  # so another chaotic orbit
    off = [run_example("clock_floats", args=("500",), deterministic=False).stdout
           for _ in range(2)]
    assert off[0] != off[1] and off[0] != runs[0].stdout


def test_stackbomb_exhausts_the_call_stack(run_example: RunExample) -> None:
    first, second = run_example("stackbomb"), run_example("stackbomb")
    assert first.kind == OutcomeKind.TRAP, first
    assert "call stack exhausted" in (first.message or "")
    assert first.fuel_consumed == second.fuel_consumed > 0  # on one architecture
