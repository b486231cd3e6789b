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

``CpuPlan.choose("auto")`` CLAIMS a CPU, so that two nodes on one machine never share one: it
takes an exclusive, non-blocking ``flock`` on ``cpu<N>.lock`` in the claim directory
(``claim_dir``: ``$PLASM_CPU_CLAIM_DIR``, else ``/run/plasm-cpus`` where this process may
write it, else ``<temp dir>/plasm-cpus-<uid>``), held until the process exits (the lock goes
with the file descriptor, so a crash releases it too). Among the unclaimed allowed CPUs it
takes the one the fewest threads on the machine are pinned to alone, ties going to the CPU
the calling thread is on. When every allowed CPU is claimed it runs unpinned, with one
warning. A number picks that CPU and claims nothing; ``"off"`` leaves the scheduler alone (no
/proc scan), and so does a process allowed only one CPU. Threads inherit the affinity of the
thread that starts them, so ``pinned()`` around starting a node's actors pins all of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

AFFINITY_MODES = ("auto", "off")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CpuPlan:
    home: int | None  # the CPU the node's Python threads share; None: no pinning
    allowed: frozenset[int]  # every CPU this process may use (where long guest runs go)
    # The claim on ``home`` ("auto" only); holding it keeps other nodes off that CPU.
    claim: CpuClaim | None = field(default=None, compare=False, repr=False)

    @classmethod
    def choose(cls, affinity: str | int, claims: Path | None = None) -> CpuPlan:
        """The plan for ``affinity``: "auto", "off", or a CPU number (ValueError if not
        allowed). "auto" claims its CPU in ``claims`` (default: ``claim_dir()``)."""
        allowed = check_affinity(affinity)
        if isinstance(affinity, int):
            return cls(affinity, allowed)
        if affinity == "off" or len(allowed) < 2:
            return cls(None, allowed)
        directory = claims if claims is not None else claim_dir()
        pinned = _threads_pinned_alone()
        current = _current_cpu()
        for home in sorted(allowed, key=lambda cpu: (pinned.get(cpu, 0), cpu != current, cpu)):
            claim = CpuClaim.take(directory, home) if directory is not None else None
            if claim is not None:
                return cls(home, allowed, claim)
        log.warning(
            "every CPU this process may use (%s) is claimed by another plasm node (%s); "
            "running the node's threads unpinned",
            sorted(allowed),
            directory if directory is not None else "no claim directory is writable",
            extra={"event": "cpu_affinity_all_claimed"},
        )
        return cls(None, allowed)

    @property
    def spread_cpus(self) -> frozenset[int] | None:
        """Where a long guest run may go, or None when nothing is pinned."""
        return self.allowed if self.home is not None else None

    def pin_here(self) -> bool:
        """Pin the calling thread (and the threads it starts later) to the home CPU, under
        SCHED_BATCH. False, with a warning, where the system refuses (a seccomp filter, a
        container): the node then runs unpinned, as with "off"."""
        if self.home is None:
            return False
        try:
            os.sched_setaffinity(0, {self.home})
        except OSError as exc:
            log.warning(
                "cannot pin the node's threads to CPU %d (%s); running them unpinned",
                self.home,
                exc,
                extra={"event": "cpu_affinity_refused"},
            )
            return False
        _set_policy(os.SCHED_BATCH)
        return True

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Pin the calling thread for the block, so that threads started in it inherit the
        home CPU and SCHED_BATCH; the calling thread gets its own back afterwards."""
        if self.home is None:
            yield
            return
        saved_cpus, saved_policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
        pinned = self.pin_here()
        try:
            yield
        finally:
            if pinned:
                os.sched_setaffinity(0, saved_cpus)
                _set_policy(saved_policy)


class CpuClaim:
    """An exclusive ``flock`` on ``<directory>/cpu<N>.lock``, held while the fd is open."""

    __slots__ = ("cpu", "fd", "path")

    def __init__(self, cpu: int, fd: int, path: Path) -> None:
        self.cpu, self.fd, self.path = cpu, fd, path

    @classmethod
    def take(cls, directory: Path, cpu: int) -> CpuClaim | None:
        """Claim ``cpu``, or None when another holder has it (or the lock cannot be made)."""
        path = directory / f"cpu{cpu}.lock"
        try:
            # Read-only and without O_CREAT when it exists: in a sticky shared directory
            # (fs.protected_regular), O_CREAT on another user's file is refused.
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
            except OSError:
                return None
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return cls(cpu, fd, path)

    def release(self) -> None:
        """Give the CPU back (exiting does it as well)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __del__(self) -> None:
        self.release()


CLAIM_DIR_ENV = "PLASM_CPU_CLAIM_DIR"
_RUN_CLAIM_DIR = Path("/run/plasm-cpus")


def claim_dir() -> Path | None:
    """Where "auto" claims CPUs: ``$PLASM_CPU_CLAIM_DIR``, else ``/run/plasm-cpus`` (made
    mode 1777 like /tmp, so nodes of every user see each other), else a per-user
    ``plasm-cpus-<uid>`` in the temp dir; None when none can be made."""
    configured = os.environ.get(CLAIM_DIR_ENV)
    candidates = [Path(configured)] if configured else [_RUN_CLAIM_DIR]
    if not configured:
        candidates.append(Path(tempfile.gettempdir()) / f"plasm-cpus-{os.getuid()}")
    for directory in candidates:
        shared = directory == _RUN_CLAIM_DIR
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            if shared and directory.stat().st_uid == os.getuid():
                os.chmod(directory, 0o1777)
        except OSError:
            continue
        if os.access(directory, os.W_OK | os.X_OK):
            return directory
    return None


def check_affinity(affinity: object) -> frozenset[int]:
    """Raise ValueError unless ``affinity`` is "auto", "off" or a CPU this process may use;
    return the CPUs it may use. Cheap: it chooses nothing (config checks call it)."""
    allowed = frozenset(os.sched_getaffinity(0))
    if isinstance(affinity, int) and not isinstance(affinity, bool):
        if affinity not in allowed:
            raise ValueError(
                f"cpu_affinity = {affinity}: this process may only use CPUs {sorted(allowed)}"
            )
    elif affinity not in AFFINITY_MODES:
        raise ValueError(f'cpu_affinity must be "auto", "off" or a CPU number, not {affinity!r}')
    return allowed


def _set_policy(policy: int) -> None:
    """Switch the calling thread between the normal policies (never from a real-time one);
    a refusal leaves the policy as it is."""
    with contextlib.suppress(OSError):
        if os.sched_getscheduler(0) in (os.SCHED_OTHER, os.SCHED_BATCH):
            os.sched_setscheduler(0, policy, os.sched_param(0))


_SCAN_TASKS_MAX = 20_000


def _threads_pinned_alone() -> dict[int, int]:
    """CPU -> how many user threads on this machine may run on that CPU only (as far as we
    can see; kernel threads, pinned to every CPU alike, are skipped)."""
    counts: dict[int, int] = {}
    seen = 0
    try:
        processes = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return counts
    for pid in processes:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if not cmdline.read(1):
                    continue  # a kernel thread
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone, or not ours to see
        for tid in tasks:
            seen += 1
            if seen > _SCAN_TASKS_MAX:
                return counts
            try:
                cpus = os.sched_getaffinity(int(tid))
            except OSError:
                continue
            if len(cpus) == 1:
                cpu = next(iter(cpus))
                counts[cpu] = counts.get(cpu, 0) + 1
    return counts


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
