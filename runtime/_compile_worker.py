"""A compile worker: a child process that compiles modules under hard limits.

Theory of operation. ``python -m plasm.runtime._compile_worker SETTINGS_JSON`` is started by
the daemon's ``CompilePool`` (runtime/_compiler.py) with pipes on stdin and stdout. It
arranges to die with its parent, builds a compile-only wasmtime Engine from the daemon's own
Config settings (without the pooling allocator, which only matters to instances and would
reserve tens of GiB of address space; and compiling on one thread, so a worker is at most
one CPU), compiles a tiny module once so the first real compile pays no lazy start-up, sets
its limits, and says it is ready. Then, per request: it reads a module, raises its CPU limit
to what it has used plus one compile's budget, compiles, and answers with
``Module.serialize()`` or with wasmtime's error. The limits are the kernel's:

- ``RLIMIT_AS`` (address space): an allocation past it fails, and wasmtime (Rust) aborts
  the process (SIGABRT; "memory allocation of N bytes failed" on stderr).
- ``RLIMIT_CPU``: past the budget the kernel sends SIGXCPU, which ends the process.
- ``RLIMIT_CORE`` 0: none of those deaths writes a core file.

Wall time is the parent's to enforce: it SIGKILLs a worker whose compile takes too long.
The code compiled here is never run here; only the daemon loads it, with
``Module.deserialize`` (it accepts code of an engine with the same settings and version).

Frames, both ways: one byte of kind, then an 8-byte big-endian length, then that many bytes.
To the worker: ``C`` + module. From it: ``R`` + JSON list of problems (limits the kernel
refused) once at start; per request ``K`` (compiled) or ``E`` (wasmtime refused the module,
UTF-8 text), each answer followed by one byte ``1`` when the worker exits after it (its
memory grew past ``retire_rss_bytes``) else ``0``.

This module imports nothing heavy at its top: the daemon imports its frame constants.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct(">cQ")
READY = b"R"
COMPILE = b"C"
COMPILED = b"K"
REFUSED = b"E"
RETIRING = b"1"
STAYING = b"0"
# Exit status of a worker that ran out of Python memory (a MemoryError, not a Rust abort).
EXIT_NO_MEMORY = 3
_PR_SET_PDEATHSIG = 1
# (module (func (export "_start"))): compiled once at start, before the limits.
_WARM_UP = (
    b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00"
    b"\x07\x0a\x01\x06_start\x00\x00\x0a\x04\x01\x02\x00\x0b"
)


def main(argv: list[str]) -> int:
    settings = json.loads(argv[1])
    # Ctrl-C on a terminal and systemd's SIGTERM to the whole unit are the daemon's to
    # handle: it kills its workers when it stops (a worker that died of them mid-compile
    # would look like a module that crashed its compiler).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(settings["parent_pid"])
    if settings.get("cpus"):
        with contextlib.suppress(OSError):  # a refusal only costs parallelism
            os.sched_setaffinity(0, settings["cpus"])
    engine = _engine(settings["config"])
    import wasmtime

    wasmtime.Module(engine, _WARM_UP)
    problems = _set_limits(settings["memory_bytes"])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    _send(stdout, READY, json.dumps(problems).encode())
    while True:
        request = _receive(stdin)
        if request is None:
            return 0  # the daemon closed the pipe: it is done with this worker
        _raise_cpu_limit(settings["cpu_seconds"])
        payload: bytes | bytearray
        try:
            kind, payload = COMPILED, wasmtime.Module(engine, request).serialize()
        except wasmtime.WasmtimeError as exc:
            kind, payload = REFUSED, str(exc).encode(errors="replace")
        except MemoryError:
            return EXIT_NO_MEMORY
        del request
        retiring = _rss_bytes() > settings["retire_rss_bytes"]
        _send(stdout, kind, payload, RETIRING if retiring else STAYING)
        del payload
        if retiring:
            return 0


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when the daemon dies, even mid-compile (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # without it, RLIMIT_CPU still ends an orphaned compile
    if os.getppid() != parent_pid:
        sys.exit(0)  # the parent died before prctl took effect


def _engine(config_settings: dict[str, Any]) -> Any:
    import wasmtime

    config = wasmtime.Config()
    for name, value in config_settings.items():
        setattr(config, name, value)
    # Changes how, not what, wasmtime compiles: the code is the same (Module.deserialize
    # in the daemon accepts it; tests/runtime/test_compile_limits.py runs it).
    config.parallel_compilation = False
    return wasmtime.Engine(config)


def _set_limits(memory_bytes: int) -> list[str]:
    """Set the fixed limits; what the kernel refused (a hardened unit may filter setrlimit)."""
    problems = []
    for name, limit, value in (
        ("RLIMIT_CORE", resource.RLIMIT_CORE, 0),
        ("RLIMIT_AS", resource.RLIMIT_AS, memory_bytes),
    ):
        try:
            resource.setrlimit(limit, (value, value))
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
    return problems


def _raise_cpu_limit(cpu_seconds: int) -> None:
    """Allow ``cpu_seconds`` more CPU time than used so far (the soft limit only, so it can
    be raised again for the next compile)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    # A refusal was reported at start (setrlimit refused altogether).
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CPU, (used + cpu_seconds, resource.RLIM_INFINITY))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _send(out: BinaryIO, kind: bytes, payload: bytes | bytearray, trailer: bytes = b"") -> None:
    out.write(HEADER.pack(kind, len(payload)))
    out.write(payload)
    out.write(trailer)
    out.flush()


def _receive(source: BinaryIO) -> bytes | None:
    header = source.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    kind, length = HEADER.unpack(header)
    body = source.read(length)
    if kind != COMPILE or len(body) < length:
        return None
    return body


if __name__ == "__main__":
    sys.exit(main(sys.argv))
