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
  time asks for ``determinism: off``: then the same host functions read the host's clocks
  and ``os.urandom`` (``host_now``, ``host_random``), and the receipt says so.

The host functions themselves (``clock_time_get``, ``clock_res_get``, ``random_get``) live
with the other WASI calls in ``_wasi``; this module is their arithmetic.
"""

from __future__ import annotations

import hashlib
import os
import time

TICK_NS = 1_000  # one microsecond per reading
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME = 0, 1, 2, 3
RANDOM_CALL_MAX = 1 << 20  # bytes per random_get call; a larger ask is EINVAL


class VirtualWorld:
    """One job's clock readings and random stream."""

    __slots__ = ("_block", "_counter", "_seed", "epoch_ns", "readings")

    def __init__(self, seed: bytes, epoch_ns: int) -> None:
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


def host_now(clock_id: int) -> int | None:
    """The host's reading of ``clock_id`` in ns (``determinism: off``), or None."""
    clock = _HOST_CLOCKS.get(clock_id)
    return None if clock is None else clock()


def host_random(length: int) -> bytes:
    return os.urandom(length)


_HOST_CLOCKS = {
    CLOCK_REALTIME: time.time_ns,
    CLOCK_MONOTONIC: time.monotonic_ns,
    CLOCK_PROCESS_CPUTIME: time.process_time_ns,
    CLOCK_THREAD_CPUTIME: time.thread_time_ns,
}
