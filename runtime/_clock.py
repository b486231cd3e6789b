"""Deterministic time and randomness for a job: WASI ``clock_*`` and ``random_get``.

Under the determinism profile a guest must see the same clock readings and the same random
bytes on every node, or two honest executors give two different results. So the sandbox
shadows wasmtime's WASI clocks and ``random_get`` with the functions below:

* **Clocks are virtual.** ``realtime`` starts at the job's epoch (a fixed default, or what
  the manifest sets) and ``monotonic`` at 0; both advance by ``TICK_NS`` at every reading, so
  they are strictly increasing and depend only on how many times the guest looked. The
  CPU-time clocks read as ``monotonic``. Resolution is ``TICK_NS`` for every clock.
* **Randomness is a stream seeded from the job**: SHA-256 in counter mode over the seed
  (``SHA-256(seed || counter)``, 32 bytes per block), so the n-th random byte a guest reads
  is the same everywhere. It is not secret from anyone who knows the seed — which, for a
  job whose receipt anyone may re-check, is the point. A job that needs secrets or wall
  time asks for ``determinism: off``: then wasmtime's own WASI functions answer (OS clocks,
  OS randomness) and the receipt says so. The same functions serve it, reading the host's
  clocks and ``os.urandom`` when the thread has no virtual world.

As ``fd_write`` in ``_wasi``, the functions find their job's state through a thread-local
(``virtual_world``), and never raise: an error is a WASI errno.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import wasmtime

TICK_NS = 1_000  # one microsecond per reading
DEFAULT_EPOCH_NS = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z, the default wall clock
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME = 0, 1, 2, 3
RANDOM_CALL_MAX = 1 << 20  # bytes per random_get call; a larger ask is EINVAL

WASI_EFAULT = 21
WASI_EINVAL = 28
_U32 = 0xFFFF_FFFF
_U64_LE = struct.Struct("<Q")


class VirtualWorld:
    """One job's clock readings and random stream."""

    __slots__ = ("_block", "_counter", "_seed", "epoch_ns", "readings")

    def __init__(self, seed: bytes, epoch_ns: int = DEFAULT_EPOCH_NS) -> None:
        self._seed = bytes(seed)
        self.epoch_ns = epoch_ns
        self.readings = 0
        self._counter = 0
        self._block = b""

    def now(self, clock_id: int) -> int | None:
        """The next reading of ``clock_id`` in ns, or None for an unknown clock."""
        if clock_id not in (
            CLOCK_REALTIME,
            CLOCK_MONOTONIC,
            CLOCK_PROCESS_CPUTIME,
            CLOCK_THREAD_CPUTIME,
        ):
            return None
        self.readings += 1
        elapsed = self.readings * TICK_NS
        return self.epoch_ns + elapsed if clock_id == CLOCK_REALTIME else elapsed

    def random(self, length: int) -> bytes:
        """The next ``length`` bytes of the job's stream."""
        out = bytearray()
        while len(out) < length:
            if not self._block:
                self._block = hashlib.sha256(
                    self._seed + self._counter.to_bytes(8, "little")
                ).digest()
                self._counter += 1
            take = min(length - len(out), len(self._block))
            out += self._block[:take]
            self._block = self._block[take:]
        return bytes(out)


_current = threading.local()


@contextmanager
def virtual_world(world: VirtualWorld | None) -> Iterator[None]:
    """Answer this thread's guest clock and random calls from ``world``."""
    _current.world = world
    try:
        yield
    finally:
        _current.world = None


def _guest_memory(caller: wasmtime.Caller) -> tuple[int, int] | None:
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        return None
    return ctypes.addressof(memory.data_ptr(caller).contents), memory.data_len(caller)


_HOST_CLOCKS = {
    CLOCK_REALTIME: time.time_ns,
    CLOCK_MONOTONIC: time.monotonic_ns,
    CLOCK_PROCESS_CPUTIME: time.process_time_ns,
    CLOCK_THREAD_CPUTIME: time.thread_time_ns,
}


def clock_time_get(caller: wasmtime.Caller, clock_id: int, _precision: int, out: int) -> int:
    world = getattr(_current, "world", None)
    clock_id &= _U32
    if world is not None:
        reading = world.now(clock_id)
    else:
        host_clock = _HOST_CLOCKS.get(clock_id)
        reading = None if host_clock is None else host_clock()
    if reading is None:
        return WASI_EINVAL
    return _store_u64(caller, out, reading)


def clock_res_get(caller: wasmtime.Caller, clock_id: int, out: int) -> int:
    if clock_id & _U32 not in _HOST_CLOCKS:
        return WASI_EINVAL
    world = getattr(_current, "world", None)
    return _store_u64(caller, out, TICK_NS if world is not None else 1)


def random_get(caller: wasmtime.Caller, buf: int, length: int) -> int:
    world = getattr(_current, "world", None)
    buf, length = buf & _U32, length & _U32
    if length > RANDOM_CALL_MAX:
        return WASI_EINVAL
    memory = _guest_memory(caller)
    if memory is None or buf + length > memory[1]:
        return WASI_EFAULT
    data = world.random(length) if world is not None else os.urandom(length)
    ctypes.memmove(memory[0] + buf, data, length)
    return 0


def _store_u64(caller: wasmtime.Caller, address: int, value: int) -> int:
    memory = _guest_memory(caller)
    address &= _U32
    if memory is None or address + _U64_LE.size > memory[1]:
        return WASI_EFAULT
    ctypes.memmove(memory[0] + address, _U64_LE.pack(value), _U64_LE.size)
    return 0


def define_virtual_world(linker: wasmtime.Linker) -> None:
    """Shadow WASI's clocks and ``random_get`` (after ``define_wasi``, shadowing on)."""
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    for name, params, func in (
        ("clock_time_get", [i32, i64, i32], clock_time_get),
        ("clock_res_get", [i32, i32], clock_res_get),
        ("random_get", [i32, i32], random_get),
    ):
        linker.define_func(
            "wasi_snapshot_preview1",
            name,
            wasmtime.FuncType(params, [i32]),
            func,
            access_caller=True,
        )
