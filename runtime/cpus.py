"""Where a node's threads run: its Python work on one CPU, long guest code on any.

Why. CPython runs the Python code of one thread at a time (the GIL), so spreading a node's
Python threads over several CPUs buys no parallelism. It does make every hand-off between two
actors a wake-up on another CPU (an inter-processor interrupt; on a VM, a trip through the
hypervisor), and it lets threads on different CPUs bounce the GIL at each of the dozens of
ctypes calls a wasmtime job makes. Measured on the 2-vCPU CI machine (FINDINGS.md: about one
effective core): a pykka round trip is ~200 µs across CPUs and ~40 µs on one; two threads
running hello.wasm jobs together finish them at half the rate of one thread, and at the same
rate as one thread once both are on one CPU.

The pinned threads also run under ``SCHED_BATCH``: a woken thread then does not preempt the
one running, so a job's hand-offs (ingress, executor, signer) run back to back instead of
interleaving at every wake-up. Measured: hello.wasm with 8 jobs in flight, 1.22-1.26x the
plain-call floor without it, 1.11-1.17x with it; one job at a time, 1.55x -> 1.47x. No
privilege is needed, and a thread under a real-time policy is left as it is.

What runs without the GIL is guest code. So a job whose guest runs past one epoch tick
(runtime/_deadline.py) widens its own thread to every allowed CPU for the rest of its run, and
the sandbox puts the thread back afterwards: long jobs still run in parallel.

``CpuPlan.choose("auto")`` picks the CPU the calling thread is on (the scheduler just put it on
a quiet one); a number picks that CPU; ``"off"`` leaves the scheduler alone, and so does a
process allowed only one CPU. Threads inherit the affinity of the thread that starts them, so
``pinned()`` around starting a node's actors pins all of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

AFFINITY_MODES = ("auto", "off")


@dataclass(frozen=True, slots=True)
class CpuPlan:
    home: int | None  # the CPU the node's Python threads share; None: no pinning
    allowed: frozenset[int]  # every CPU this process may use (where long guest runs go)

    @classmethod
    def choose(cls, affinity: str | int) -> CpuPlan:
        """The plan for ``affinity``: "auto", "off", or a CPU number (ValueError if not allowed)."""
        allowed = frozenset(os.sched_getaffinity(0))
        if isinstance(affinity, int) and not isinstance(affinity, bool):
            if affinity not in allowed:
                raise ValueError(
                    f"cpu_affinity = {affinity}: this process may only use CPUs {sorted(allowed)}"
                )
            return cls(affinity, allowed)
        if affinity not in AFFINITY_MODES:
            raise ValueError(
                f'cpu_affinity must be "auto", "off" or a CPU number, not {affinity!r}'
            )
        if affinity == "off" or len(allowed) < 2:
            return cls(None, allowed)
        current = _current_cpu()
        return cls(current if current in allowed else min(allowed), allowed)

    @property
    def spread_cpus(self) -> frozenset[int] | None:
        """Where a long guest run may go, or None when nothing is pinned."""
        return self.allowed if self.home is not None else None

    def pin_here(self) -> None:
        """Pin the calling thread (and the threads it starts later) to the home CPU, under
        SCHED_BATCH."""
        if self.home is not None:
            os.sched_setaffinity(0, {self.home})
            _set_policy(os.SCHED_BATCH)

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Pin the calling thread for the block, so that threads started in it inherit the
        home CPU and SCHED_BATCH; the calling thread gets its own back afterwards."""
        if self.home is None:
            yield
            return
        saved_cpus, saved_policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
        self.pin_here()
        try:
            yield
        finally:
            os.sched_setaffinity(0, saved_cpus)
            _set_policy(saved_policy)


def _set_policy(policy: int) -> None:
    """Switch the calling thread between the normal policies (never from a real-time one)."""
    if os.sched_getscheduler(0) in (os.SCHED_OTHER, os.SCHED_BATCH):
        os.sched_setscheduler(0, policy, os.sched_param(0))


def _current_cpu() -> int | None:
    """The CPU the calling thread last ran on (field 39 of /proc/thread-self/stat)."""
    try:
        with open("/proc/thread-self/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    fields = text[text.rindex(b")") + 2 :].split()
    return int(fields[36])
