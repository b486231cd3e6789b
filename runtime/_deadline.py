"""Wall-clock timeout and cancellation through wasmtime's epoch interruption.

Theory of operation: one daemon thread (``EpochTicker``) bumps the engine's epoch every tick.
Each job's store gets an epoch deadline of one tick and a deadline callback
(``watch_store``). When wasm running in that store sees the epoch pass its deadline, wasmtime
calls ``_on_epoch_deadline`` on the job's own thread. The callback either stops the job, with
the reason written into the job's ``Watch`` (its ``CancelToken`` was cancelled, or its
wall-clock deadline passed), or extends the deadline by one more tick (and, the first time,
widens a pinned thread to every CPU: ``Watch.spread``, see runtime/cpus.py). So a store is only
ever touched by the thread running it; other threads cancel by setting a flag, and a job stops
within about one tick of either event. A job that ends within one tick never calls back.

Stopping returns an error from the callback, which wasmtime raises as a ``WasmtimeError``
(not a ``Trap`` with ``TrapCode.INTERRUPT``); the sandbox reads ``Watch.reason`` to tell a
timeout from a cancellation, never the error text.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from typing import Any

import wasmtime

from plasm.runtime import _wasmtime_private as private
from plasm.runtime._cancel import CancelToken

TIMEOUT = "timeout"
CANCELLED = "cancelled"


class Watch:
    """The deadline state of one running job, read and written only on the job's thread
    (except the CancelToken flag)."""

    __slots__ = ("cancel", "deadline_ns", "reason", "saved_cpus", "spread_to")

    def __init__(
        self,
        deadline_ns: int,
        cancel: CancelToken | None,
        spread_to: frozenset[int] | None = None,
    ) -> None:
        self.deadline_ns = deadline_ns  # time.monotonic_ns() when the job must stop
        self.cancel = cancel
        self.reason: str | None = None
        # A guest still running at a tick widens its thread to these CPUs (runtime/cpus.py).
        self.spread_to = spread_to
        self.saved_cpus: set[int] | None = None

    def spread(self) -> None:
        """Widen the job's thread to ``spread_to``, once (never raises: it runs inside
        wasmtime's callback, and a refusal only costs parallelism)."""
        if self.spread_to is None:
            return
        spread_to, self.spread_to = self.spread_to, None
        try:
            saved = os.sched_getaffinity(0)
            if saved != spread_to:
                os.sched_setaffinity(0, spread_to)
                self.saved_cpus = saved
        except OSError:
            pass

    def restore_cpus(self) -> None:
        """Give the job's thread back the CPUs it had before ``spread``."""
        if self.saved_cpus is not None:
            saved, self.saved_cpus = self.saved_cpus, None
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, saved)

    def expired(self) -> str | None:
        """Why the job must stop now, or None to let it run on."""
        if self.cancel is not None and self.cancel.cancelled:
            return CANCELLED
        if time.monotonic_ns() >= self.deadline_ns:
            return TIMEOUT
        return None


_WATCHES: dict[int, Watch] = {}
_WATCH_IDS = itertools.count(1)
_UPDATE_DEADLINE_CONTINUE = 0


def _on_epoch_deadline(_context: Any, data: int | None, delta: Any, kind: Any) -> int | None:
    watch = _WATCHES.get(data or 0)
    reason = watch.expired() if watch is not None else None
    if watch is None or reason is None:
        if watch is not None:
            watch.spread()
        delta[0] = 1
        kind[0] = _UPDATE_DEADLINE_CONTINUE
        return None  # NULL: no error, go on
    watch.reason = reason
    return private.new_error(f"job stopped: {reason}")  # a wasmtime_error_t *


def _forget(data: int | None) -> None:
    _WATCHES.pop(data or 0, None)


# Module-level so the C function pointers outlive every store that holds them.
_CALLBACK = private.DeadlineCallback(_on_epoch_deadline)
_FINALIZER = private.Finalizer(_forget)


def watch_store(store: wasmtime.Store, watch: Watch) -> None:
    """Arm ``store`` so that ``watch`` decides, every tick, whether its job goes on."""
    watch_id = next(_WATCH_IDS)
    _WATCHES[watch_id] = watch
    store.set_epoch_deadline(1)
    # The finalizer runs when the store is dropped and forgets the watch.
    private.set_epoch_deadline_callback(store, _CALLBACK, watch_id, _FINALIZER)


class EpochTicker:
    """The one thread that advances an engine's epoch every ``tick_s`` seconds."""

    def __init__(self, engine: wasmtime.Engine, tick_s: float) -> None:
        self._engine = engine
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="plasm-epoch-ticker", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            self._engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
