"""What a job is given and what it gives back: plain, frozen dataclasses.

This module imports nothing heavy (no wasmtime, no threads) because ``plasm.protocol`` encodes
these types in messages and receipts. ``plasm.runtime.sandbox`` turns a ``JobInput`` and
``Limits`` into an ``Outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any


class OutcomeKind(StrEnum):
    """How a job ended; each failure class has its own kind and is recorded in the receipt."""

    OK = "ok"  # _start returned, or proc_exit(0)
    EXIT = "exit"  # proc_exit with a non-zero code (Outcome.exit_code)
    TRAP = "trap"  # a wasm trap other than the ones below (Outcome.message)
    OUT_OF_FUEL = "out_of_fuel"  # Limits.fuel used up
    TIMEOUT = "timeout"  # Limits.timeout_ms of wall time passed
    MEMORY_LIMIT = "memory_limit"  # Limits.memory_bytes refused instantiation or growth
    INVALID_MODULE = "invalid_module"  # not a runnable WASI command module
    COMPILE_LIMIT = "compile_limit"  # compiling it went over a node's compile limit
    CANCELLED = "cancelled"  # CancelToken.cancel() was called


_MAX_LIMIT = 2**63 - 1  # fits a signed 64-bit integer (wasmtime fuel, CBOR, JSON readers)


def _require_positive_int(owner: str, name: str, value: object) -> None:
    if type(value) is not int or not 0 < value <= _MAX_LIMIT:
        raise ValueError(f"{owner}.{name} must be an integer from 1 to 2**63-1, got {value!r}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one job; every field is an int in 1..2**63-1 (else ``ValueError``)."""

    fuel: int = 1_000_000_000
    memory_bytes: int = 64 * 2**20
    timeout_ms: int = 10_000
    max_output_bytes: int = 2**20  # cap for stdout and for stderr, each

    def __post_init__(self) -> None:
        for name in LIMIT_FIELDS:
            _require_positive_int("limits", name, getattr(self, name))

    def exceeds(self, other: Limits) -> str | None:
        """The first field above ``other``'s, as a message naming both values; else None."""
        for name in LIMIT_FIELDS:
            asked, allowed = getattr(self, name), getattr(other, name)
            if asked > allowed:
                return f"limits.{name} = {asked} is above this node's maximum {allowed}"
        return None

    def to_json(self) -> dict[str, int]:
        """The JSON form (manifests, API answers, journaled manifests): field name -> int."""
        return {name: getattr(self, name) for name in LIMIT_FIELDS}

    @classmethod
    def from_json(cls, given: dict[str, Any], defaults: Limits | None = None) -> Limits:
        """``defaults`` (else ``Limits()``) with the fields ``given`` sets; ``ValueError`` for
        an unknown field or a value out of range."""
        unknown = sorted(set(given) - set(LIMIT_FIELDS))
        if unknown:
            known = ", ".join(LIMIT_FIELDS)
            raise ValueError(f"unknown limit {unknown[0]!r}; the limits are {known}")
        return replace(defaults if defaults is not None else cls(), **given)


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Limits))

# The most a node lets one job ask for unless its configuration says otherwise.
DEFAULT_MAX_LIMITS = Limits(
    fuel=100_000_000_000, memory_bytes=2**30, timeout_ms=300_000, max_output_bytes=16 * 2**20
)


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{what} must not contain a NUL character: {value!r}")


@dataclass(frozen=True, slots=True)
class JobInput:
    """What the guest sees: stdin bytes, ``argv[1:]``, environment, and ``argv[0]``.

    ``args`` and ``env`` given as lists are stored as tuples. ``env`` must be sorted by key with
    unique keys (one canonical form, so equal inputs hash equally in receipts); keys must not
    contain ``=``; no string may contain NUL.
    """

    stdin: bytes = b""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    module_name: str = "module.wasm"

    def __post_init__(self) -> None:
        if not isinstance(self.stdin, bytes):
            raise ValueError(f"job_input.stdin must be bytes, got {type(self.stdin).__name__}")
        args = tuple(self.args)
        env = tuple(tuple(pair) for pair in self.env)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "env", env)
        _check_text("job_input.module_name", self.module_name)
        for arg in args:
            _check_text("job_input.args[]", arg)
        previous: str | None = None
        for pair in env:
            if len(pair) != 2:
                raise ValueError(f"job_input.env entries must be (key, value) pairs, got {pair!r}")
            key, value = pair
            _check_text("job_input.env key", key)
            _check_text("job_input.env value", value)
            if not key or "=" in key:
                raise ValueError(f"job_input.env key must be non-empty without '=', got {key!r}")
            if previous is not None and key <= previous:
                raise ValueError(
                    "job_input.env must be sorted by key with unique keys; "
                    "build it with tuple(sorted(mapping.items()))"
                )
            previous = key


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one job, as recorded in its receipt.

    ``fuel_consumed`` is deterministic for the same module, input and limits when the job ends
    by itself (ok, exit, trap, out_of_fuel, memory_limit). For timeout and cancelled it is the
    fuel wasmtime had accounted when the job was interrupted: a lower bound, possibly 0.
    """

    kind: OutcomeKind
    exit_code: int | None  # set for EXIT (non-zero); OK means exit 0 or return from _start
    message: str | None  # trap / invalid_module / memory_limit detail, else None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    fuel_consumed: int
    wall_time_us: int
    started_at_ms: int  # unix ms
    finished_at_ms: int

    @classmethod
    def not_run(cls, kind: OutcomeKind, message: str, now_ms: int) -> Outcome:
        """The outcome of a job that never started (for example its module did not match)."""
        return cls(
            kind=kind,
            exit_code=None,
            message=message,
            stdout=b"",
            stderr=b"",
            stdout_truncated=False,
            stderr_truncated=False,
            fuel_consumed=0,
            wall_time_us=0,
            started_at_ms=now_ms,
            finished_at_ms=now_ms,
        )
