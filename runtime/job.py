"""What a job is given and what it gives back: plain, frozen dataclasses.

This module imports nothing heavy (no wasmtime, no threads) because ``plasm.protocol`` encodes
these types in messages and receipts. ``plasm.runtime.sandbox`` turns a ``JobInput`` and
``Limits`` into an ``Outcome``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

import cbor2


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
    # The virtual filesystem (runtime/_vfs.py). Output quotas are enforced as the guest
    # writes: the total bytes of every file under /output (EDQUOT past it), the bytes of one
    # file (EFBIG), and how many files and directories /output may hold (ENOSPC).
    max_output_files_bytes: int = 16 * 2**20
    max_output_file_bytes: int = 16 * 2**20
    max_output_files: int = 64
    # The total bytes of JobInput.files, checked before the job runs (``admits``).
    max_input_files_bytes: int = 16 * 2**20

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

    def admits(self, job_input: JobInput) -> str | None:
        """Why ``job_input`` is too big for these limits (its input files' total bytes), as a
        message; else None. ``Sandbox.run`` refuses such a job with ``ValueError``."""
        total = sum(len(data) for _, data in job_input.files)
        if total > self.max_input_files_bytes:
            return (
                f"job_input.files hold {total} bytes, above limits.max_input_files_bytes = "
                f"{self.max_input_files_bytes}"
            )
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
    fuel=100_000_000_000,
    memory_bytes=2**30,
    timeout_ms=300_000,
    max_output_bytes=16 * 2**20,
    max_output_files_bytes=256 * 2**20,
    max_output_file_bytes=256 * 2**20,
    max_output_files=4096,
    max_input_files_bytes=256 * 2**20,
)

# Input file paths (JobInput.files): how many, and how long a name and a whole path may be
# (NAME_MAX and PATH_MAX of the guest's libc). Output paths obey the same lengths.
MAX_INPUT_FILES = 1024
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
OUTPUT_DIR = "/output"
# The determinism profile's wall clock starts here unless the job says otherwise
# (2023-11-14T22:13:20Z); a seed is at most 64 bytes; epochs stop at year 9999.
DEFAULT_EPOCH_MS = 1_700_000_000_000
MAX_SEED_BYTES = 64
MAX_EPOCH_MS = 253_402_300_799_999


def _check_input_path(path: object) -> str:
    """``path`` if it is a valid input file path; else ValueError saying why."""
    if not isinstance(path, str):
        raise ValueError(f"job_input.files paths must be str, got {type(path).__name__}")
    what = f"job_input.files path {path!r}"
    if "\x00" in path:
        raise ValueError(f"{what} must not contain a NUL character")
    if not path.startswith("/") or path == "/":
        raise ValueError(f"{what} must be an absolute file path such as /input/data.txt")
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        raise ValueError(f"{what} is longer than {MAX_PATH_BYTES} bytes")
    for part in path[1:].split("/"):
        if part in ("", ".", ".."):
            raise ValueError(
                f"{what} must be normalised: no empty, '.' or '..' component, no trailing '/'"
            )
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise ValueError(f"{what} has a component longer than {MAX_NAME_BYTES} bytes")
    try:
        encoded.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not valid UTF-8 (lone surrogate)") from None
    if path == OUTPUT_DIR or path.startswith(OUTPUT_DIR + "/"):
        raise ValueError(f"{what} is under {OUTPUT_DIR}, which holds the job's outputs only")
    return path


def _check_files(files: object) -> tuple[tuple[str, bytes], ...]:
    pairs = tuple(tuple(pair) for pair in files)  # type: ignore[attr-defined]
    if len(pairs) > MAX_INPUT_FILES:
        raise ValueError(f"job_input.files has {len(pairs)} files, at most {MAX_INPUT_FILES}")
    checked: list[tuple[str, bytes]] = []
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"job_input.files entries must be (path, bytes) pairs, got {pair!r}")
        path, data = pair
        if not isinstance(data, bytes):
            raise ValueError(
                f"job_input.files data of {path!r} must be bytes, got {type(data).__name__}"
            )
        checked.append((_check_input_path(path), data))
    checked.sort()
    paths = {path for path, _ in checked}
    for index, (path, _) in enumerate(checked):
        if index and checked[index - 1][0] == path:
            raise ValueError(f"job_input.files names {path!r} twice")
        parent = path.rpartition("/")[0]
        while parent:
            if parent in paths:
                raise ValueError(
                    f"job_input.files names {parent!r} as a file and as a directory of {path!r}"
                )
            parent = parent.rpartition("/")[0]
    return tuple(checked)


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{what} must not contain a NUL character: {value!r}")


@dataclass(frozen=True, slots=True)
class JobInput:
    """What the guest sees: stdin bytes, ``argv[1:]``, environment, ``argv[0]`` and files.

    ``files``: ``(path, bytes)`` pairs the guest can read (not write) at those absolute
    paths in its virtual filesystem (runtime/_vfs.py); stored sorted by path. A path must be
    absolute and normalised (no empty, ``.`` or ``..`` component, no trailing ``/``), UTF-8
    without NUL, at most ``MAX_PATH_BYTES`` long with components of at most
    ``MAX_NAME_BYTES``, not ``/output`` or under it, named once, and not the directory of
    another file; at most ``MAX_INPUT_FILES`` of them. Their directories exist read-only.
    Anything else is a ``ValueError`` naming the path. Their total size is bounded by
    ``Limits.max_input_files_bytes`` (``Limits.admits``).

    ``args`` and ``env`` given as lists are stored as tuples. ``env`` must be sorted by key with
    unique keys (one canonical form, so equal inputs hash equally in receipts); keys must not
    contain ``=``; no string may contain NUL.

    ``deterministic`` (the determinism profile, runtime/_clock.py): the guest's clocks are
    virtual, starting at ``epoch_ms`` (unix ms) and advancing one tick per reading, and its
    random bytes a stream seeded by ``seed`` (None: derived from the input's hash, see
    ``protocol.receipt.input_sha256``). False: the host's clocks and randomness.
    """

    stdin: bytes = b""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    module_name: str = "module.wasm"
    files: tuple[tuple[str, bytes], ...] = ()
    deterministic: bool = True
    seed: bytes | None = None
    epoch_ms: int = DEFAULT_EPOCH_MS

    def __post_init__(self) -> None:
        if type(self.deterministic) is not bool:
            raise ValueError("job_input.deterministic must be a bool")
        if self.seed is not None and (
            not isinstance(self.seed, bytes) or not 1 <= len(self.seed) <= MAX_SEED_BYTES
        ):
            raise ValueError(f"job_input.seed must be 1 to {MAX_SEED_BYTES} bytes, or None")
        if type(self.epoch_ms) is not int or not 0 <= self.epoch_ms <= MAX_EPOCH_MS:
            raise ValueError(f"job_input.epoch_ms must be an integer from 0 to {MAX_EPOCH_MS}")
        if self.files:
            object.__setattr__(self, "files", _check_files(self.files))
        elif not isinstance(self.files, tuple):
            object.__setattr__(self, "files", ())
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

    def sha256(self) -> bytes:
        """The input's hash, as receipts bind it (``protocol.receipt.input_sha256`` documents
        the canonical CBOR map it covers)."""
        return hashlib.sha256(
            cbor2.dumps(
                {
                    "args": list(self.args),
                    "env": dict(self.env),
                    "files": [{"path": path, **_digest(data)} for path, data in self.files],
                    "module_name": self.module_name,
                    "stdin": _digest(self.stdin),
                    "determinism": (
                        {"epoch_ms": self.epoch_ms, "seed": self.seed}
                        if self.deterministic
                        else None
                    ),
                },
                canonical=True,
            )
        ).digest()

    def random_seed(self) -> bytes:
        """What seeds the guest's random stream: ``seed``, else the input's own hash."""
        return self.seed if self.seed is not None else self.sha256()


def _digest(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).digest(), "size": len(data)}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one job, as recorded in its receipt.

    ``fuel_consumed`` is deterministic for the same module, input and limits when the job ends
    by itself (ok, exit, trap, out_of_fuel, memory_limit). For timeout and cancelled it is the
    fuel wasmtime had accounted when the job was interrupted: a lower bound, possibly 0.

    ``output_files``: every regular file under ``/output`` when the job ended, as
    ``(path, bytes)`` sorted by path (``/output/a/b.txt``; nested directories allowed, empty
    ones not listed), whatever the outcome kind. ``outputs_truncated``: the guest hit an
    output quota (``Limits.max_output_files_bytes``, ``max_output_file_bytes`` or
    ``max_output_files``) and saw EDQUOT, EFBIG, ENOSPC or a short write.
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
    output_files: tuple[tuple[str, bytes], ...] = ()
    outputs_truncated: bool = False

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
