"""Compiling modules in worker processes: a small pool, limits, one compile per module.

Theory of operation. wasmtime compiles a module in one uninterruptible call that fuel and
epochs do not reach, and a hostile module can make that call take minutes and GiBs. So the
sandbox never compiles in its own process: ``CompilePool`` keeps ``workers`` child processes
(runtime/_compile_worker.py, started with ``subprocess`` — exec, never a bare fork of this
multi-threaded process) warm, each served by one thread of the pool that owns it. A caller
(``compile``) queues the module, or joins the compile already in flight for the same sha256,
then waits, polling its CancelToken and its own deadline every few ms. The pool thread sends
the module to its worker and reads the answer, polling too: past ``max_compile_ms`` of the
compile, or when every caller has left (cancelled or out of time), or when the pool closes,
it SIGKILLs the worker and starts a fresh one. The kernel enforces the rest inside the
worker (address space, CPU seconds). A compile that went over a limit, or killed its worker,
is a ``CompileLimitError``; the sandbox remembers those so they are not compiled again.

Only a pool thread touches its worker's pipes and process; callers and ``close`` only set
flags (``close`` also kills the processes, so shutdown does not wait for a poll tick).
This module does not import wasmtime: the workers do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from plasm.runtime import _compile_worker as wire
from plasm.runtime._cancel import CancelToken
from plasm.runtime.errors import (
    CompileCancelledError,
    CompileDeadlineError,
    CompileLimitError,
    InvalidModuleError,
    SandboxError,
)

log = logging.getLogger(__name__)

_POLL_S = 0.02  # how often a waiting caller and a pool thread look at their flags
_START_TIMEOUT_S = 30.0  # a worker that is not ready by then is broken
_CLOSE_JOIN_S = 5.0
# A worker whose memory stays above this after a compile exits and is replaced, so that one
# big compile does not leave a process of hundreds of MiB idle.
_RETIRE_RSS_BYTES = 256 * 2**20
_CHUNK = 2**20


@dataclass(frozen=True, slots=True)
class CompileSettings:
    """How modules are compiled and how much compiled code is kept (the int fields are
    positive; config keys ``executor.compile_workers``, ``executor.max_compile_ms``,
    ``executor.max_compile_memory_bytes``, ``executor.module_cache_memory_bytes``,
    ``executor.module_cache_disk_bytes``).

    ``warm``: start every worker with the pool, and again as soon as one dies, so that no
    compile waits for a Python + wasmtime start (~0.1-0.3 s). False: start a worker when a
    module needs compiling (``plasmd execute-job``, which runs one job and mostly loads its
    module from the disk cache).
    """

    workers: int = 2  # compiles at once, each in its own warm process
    max_compile_ms: int = 5_000  # wall time of one compile; CPU time: this rounded up + 1 s
    max_compile_memory_bytes: int = 2**30  # address space of a worker (RLIMIT_AS)
    memory_cache_bytes: int = 256 * 2**20  # compiled code kept in memory (LRU)
    disk_cache_bytes: int = 2**30  # compiled code kept on disk (LRU)
    warm: bool = True

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "warm":
                if type(value) is not bool:
                    raise ValueError(f"warm must be True or False, got {value!r}")
            elif type(value) is not int or value < 1:
                raise ValueError(f"{item.name} must be a positive integer, got {value!r}")

    @property
    def cpu_seconds(self) -> int:
        """RLIMIT_CPU budget of one compile: a worker compiles on one thread, so CPU time
        is at most wall time; this is the backstop if the wall-time kill never comes."""
        return -(-self.max_compile_ms // 1000) + 1


class _Compile:
    """One module being compiled, and the callers waiting for it."""

    __slots__ = ("abandoned", "done", "error", "serialized", "sha256", "waiters", "wasm")

    def __init__(self, sha256: str, wasm: bytes) -> None:
        self.sha256 = sha256
        self.wasm = wasm
        self.waiters = 0
        self.abandoned = False  # every waiter left: stop compiling
        self.done = threading.Event()
        self.serialized = b""
        # (class, message): each waiter raises its own instance.
        self.error: tuple[type[SandboxError], str] | None = None


class CompilePool:
    """``workers`` warm compile processes; see the module docstring."""

    def __init__(
        self,
        settings: CompileSettings,
        config_settings: dict[str, Any],
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.settings = settings
        self._worker_settings = {
            "config": config_settings,
            "memory_bytes": settings.max_compile_memory_bytes,
            "cpu_seconds": settings.cpu_seconds,
            "retire_rss_bytes": _RETIRE_RSS_BYTES,
            "parent_pid": os.getpid(),
            "cpus": sorted(cpus) if cpus else None,
        }
        self._cond = threading.Condition()
        self._queue: deque[_Compile] = deque()
        self._inflight: dict[str, _Compile] = {}
        self._workers: list[_Worker | None] = [None] * settings.workers
        self._closed = False
        self._warned = False
        self.compiles_started = 0
        self._threads = [
            threading.Thread(target=self._serve, args=(i,), name=f"plasm-compile-{i}", daemon=True)
            for i in range(settings.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def worker_pids(self) -> tuple[int, ...]:
        with self._cond:
            return tuple(w.pid for w in self._workers if w is not None and w.alive)

    # -- callers ---------------------------------------------------------------------------

    def compile(
        self, sha256: str, wasm: bytes, cancel: CancelToken | None, deadline_ns: int
    ) -> bytes:
        """``Module.serialize()`` of ``wasm``, compiled in a worker; raises
        ``InvalidModuleError``, ``CompileLimitError``, ``CompileCancelledError`` (``cancel``
        was cancelled, or the pool closed) or ``CompileDeadlineError`` (``deadline_ns``,
        on the monotonic clock, passed)."""
        with self._cond:
            if self._closed:
                raise CompileCancelledError("the sandbox is closed; nothing was compiled")
            job = self._inflight.get(sha256)
            if job is None:
                job = self._inflight[sha256] = _Compile(sha256, wasm)
                self._queue.append(job)
                self._cond.notify()
            job.waiters += 1
        try:
            while not job.done.is_set():
                if cancel is not None and cancel.cancelled:
                    raise CompileCancelledError("the job was cancelled while its module compiled")
                left_s = (deadline_ns - time.monotonic_ns()) / 1e9
                if left_s <= 0:
                    raise CompileDeadlineError("the job's time ran out while its module compiled")
                job.done.wait(min(_POLL_S, left_s))
        except BaseException:
            self._leave(job)
            raise
        if job.error is not None:
            error_class, message = job.error
            raise error_class(message)
        return job.serialized

    def _leave(self, job: _Compile) -> None:
        with self._cond:
            job.waiters -= 1
            if job.waiters > 0 or job.done.is_set():
                return
            job.abandoned = True  # its pool thread kills the worker at its next poll
            if self._inflight.get(job.sha256) is job:
                del self._inflight[job.sha256]
            with contextlib.suppress(ValueError):
                self._queue.remove(job)

    def close(self) -> None:
        """Kill every worker (a compile in progress too) and stop the pool's threads."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            workers = [w for w in self._workers if w is not None]
            queued, self._queue = list(self._queue), deque()
            self._cond.notify_all()
        for worker in workers:
            worker.send_kill()  # its pool thread sees the pipe close, reaps it and returns
        for job in queued:
            self._finish(job, error=(CompileCancelledError, "the sandbox closed"))
        deadline = time.monotonic() + _CLOSE_JOIN_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- pool threads ----------------------------------------------------------------------

    def _serve(self, index: int) -> None:
        worker: _Worker | None = None
        warm = self.settings.warm
        try:
            while True:
                if warm and (worker is None or not worker.alive):
                    worker = self._start_worker(index)
                    if worker is None:
                        return
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    job = self._queue.popleft()
                    self.compiles_started += 1
                if worker is None or not worker.alive:
                    worker = self._start_worker(index)
                    if worker is None:
                        self._finish(job, error=(CompileCancelledError, "the sandbox closed"))
                        return
                try:
                    self._run(worker, job)
                except Exception as exc:  # a bug here must not leave the job's callers waiting
                    log.exception("compile pool thread failed")
                    worker.kill()
                    self._finish(job, error=(SandboxError, f"the compile pool failed: {exc}"))
        finally:
            if worker is not None:
                worker.kill()

    def _start_worker(self, index: int) -> _Worker | None:
        """A fresh worker for pool thread ``index``; None once the pool is closed."""
        while True:
            with self._cond:
                if self._closed:
                    return None
            try:
                worker = _Worker.start(self._worker_settings)
            except OSError as exc:  # out of processes or fds: try again soon
                log.error("cannot start a compile worker: %s", exc)
                with self._cond:
                    self._cond.wait(1.0)
                continue
            with self._cond:
                self._workers[index] = worker
                if not self._closed:
                    return worker
            worker.kill()
            return None

    def _run(self, worker: _Worker, job: _Compile) -> None:
        def stopped() -> bool:
            return job.abandoned or self._closed

        settings = self.settings
        answer: _Answer | _WorkerBroken
        try:
            answer = worker.compile(job.wasm, settings.max_compile_ms, stopped, self._warn)
        except _WorkerBroken as exc:
            worker.kill()
            answer = exc
        if stopped():  # whatever the worker did, nobody waits for it (or we killed it)
            answer = _Stopped()
        if isinstance(answer, bytes | bytearray):
            self._finish(job, serialized=bytes(answer))
        elif isinstance(answer, _Refused):
            self._finish(job, error=(InvalidModuleError, answer.text))
        elif isinstance(answer, _Stopped):
            self._finish(job, error=(CompileCancelledError, "the compile was stopped"))
        elif isinstance(answer, _WorkerBroken):
            log.error("compile worker failed: %s", answer)
            self._finish(job, error=(SandboxError, f"the compile worker failed: {answer}"))
        else:
            self._finish(job, error=(CompileLimitError, _limit_message(answer, settings)))

    def _finish(
        self,
        job: _Compile,
        serialized: bytes = b"",
        error: tuple[type[SandboxError], str] | None = None,
    ) -> None:
        with self._cond:
            if self._inflight.get(job.sha256) is job:
                del self._inflight[job.sha256]
            job.serialized, job.error = serialized, error
            job.wasm = b""
            job.done.set()

    def _warn(self, problems: list[str]) -> None:
        if problems and not self._warned:
            self._warned = True
            log.warning(
                "compile workers run without some limits (the kernel refused them): %s",
                "; ".join(problems),
                extra={"event": "compile_limits_refused"},
            )


# -- one worker process -----------------------------------------------------------------------


class _WorkerBroken(Exception):
    """The worker did not behave (died before it was ready, broke the frame format)."""


@dataclass(frozen=True, slots=True)
class _Refused:
    text: str  # wasmtime's error


@dataclass(frozen=True, slots=True)
class _Stopped:
    pass


@dataclass(frozen=True, slots=True)
class _TooSlow:
    pass


@dataclass(frozen=True, slots=True)
class _Died:
    returncode: int


_Answer = bytes | bytearray | _Refused | _Stopped | _TooSlow | _Died


class _Worker:
    """A compile worker process, driven by its one pool thread."""

    def __init__(self, proc: subprocess.Popen[bytes], max_answer: int) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._max_answer = max_answer  # the worker cannot hold more than its memory limit
        self.pid = proc.pid
        self._to = proc.stdin.fileno()
        self._from = proc.stdout.fileno()
        os.set_blocking(self._to, False)
        self._ready = False
        self._killed = False

    @classmethod
    def start(cls, settings: dict[str, Any]) -> _Worker:
        command = [sys.executable, "-P", "-m", "plasm.runtime._compile_worker"]
        env = {**os.environ, "RUST_BACKTRACE": "0"}  # one line, not a backtrace, on abort
        proc = subprocess.Popen(
            [*command, json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # an abort's one line goes to the daemon's log
            env=env,
            close_fds=True,
        )
        return cls(proc, settings["memory_bytes"])

    @property
    def alive(self) -> bool:
        return not self._killed and self._proc.poll() is None

    def send_kill(self) -> None:
        """SIGKILL the process; from any thread (its pipes stay its pool thread's)."""
        self._killed = True
        with contextlib.suppress(OSError):
            self._proc.kill()

    def kill(self) -> None:
        """SIGKILL, reap and close the pipes; by its pool thread, more than once."""
        self.send_kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        for pipe in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()

    def compile(
        self,
        wasm: bytes,
        max_ms: int,
        stopped: Callable[[], bool],
        warn: Callable[[list[str]], None],
    ) -> _Answer:
        """Compile ``wasm`` within ``max_ms`` unless ``stopped()``; kills the worker on any
        answer but a compiled or refused module. Raises _WorkerBroken."""
        if not self._ready:
            self._wait_ready(stopped, warn)
        deadline = time.monotonic() + max_ms / 1000
        try:
            self._write(wire.HEADER.pack(wire.COMPILE, len(wasm)), deadline, stopped)
            self._write(wasm, deadline, stopped)
            kind, payload = self._read_frame(deadline, stopped)
            retiring = self._read_exactly(1, deadline, stopped) == wire.RETIRING
        except _Interrupted as why:
            self.kill()
            return why.answer
        if retiring:
            self.kill()  # it is exiting anyway; reap it now
        if kind == wire.COMPILED:
            return payload
        if kind == wire.REFUSED:
            return _Refused(bytes(payload).decode(errors="replace"))
        raise _WorkerBroken(f"it sent a frame of unknown kind {kind!r}")

    def _wait_ready(self, stopped: Callable[[], bool], warn: Callable[[list[str]], None]) -> None:
        try:
            kind, payload = self._read_frame(time.monotonic() + _START_TIMEOUT_S, stopped)
        except _Interrupted as why:
            self.kill()
            if isinstance(why.answer, _Stopped):
                raise _WorkerBroken("it was stopped before it was ready") from None
            raise _WorkerBroken(f"it did not get ready ({why.answer!r})") from None
        if kind != wire.READY:
            raise _WorkerBroken(f"it sent {kind!r} instead of its ready frame")
        warn(json.loads(payload))
        self._ready = True

    def _read_frame(
        self, deadline: float, stopped: Callable[[], bool]
    ) -> tuple[bytes, bytes | bytearray]:
        header = self._read_exactly(wire.HEADER.size, deadline, stopped)
        kind, length = wire.HEADER.unpack(header)
        if length > self._max_answer:
            raise _WorkerBroken(f"it announced a {length}-byte answer")
        return kind, self._read_exactly(length, deadline, stopped)

    def _read_exactly(self, count: int, deadline: float, stopped: Callable[[], bool]) -> bytearray:
        buffer = bytearray(count)
        view = memoryview(buffer)
        got = 0
        poller = select.poll()
        poller.register(self._from, select.POLLIN)
        while got < count:
            self._wait(poller, deadline, stopped)
            chunk = os.readv(self._from, [view[got : got + _CHUNK]])
            if chunk == 0:
                raise _Interrupted(self._died())
            got += chunk
        return buffer

    def _write(self, data: bytes, deadline: float, stopped: Callable[[], bool]) -> None:
        view = memoryview(data)
        sent = 0
        poller = select.poll()
        poller.register(self._to, select.POLLOUT)
        while sent < len(data):
            self._wait(poller, deadline, stopped)
            try:
                sent += os.write(self._to, view[sent : sent + _CHUNK])
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise _Interrupted(self._died()) from None

    def _wait(self, poller: select.poll, deadline: float, stopped: Callable[[], bool]) -> None:
        """Until the fd is ready; raises _Interrupted when stopped or past the deadline."""
        while True:
            if stopped():
                raise _Interrupted(_Stopped())
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Interrupted(_TooSlow())
            if poller.poll(min(_POLL_S, left) * 1000):
                return

    def _died(self) -> _Died:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        returncode = self._proc.returncode
        self.kill()
        return _Died(returncode if returncode is not None else -signal.SIGKILL)


class _Interrupted(Exception):
    def __init__(self, answer: _Answer) -> None:
        super().__init__(answer)
        self.answer = answer


def _limit_message(answer: _Answer, settings: CompileSettings) -> str:
    memory = (
        f"compiling the module needed more than the {settings.max_compile_memory_bytes}-byte "
        f"compile memory limit (executor.max_compile_memory_bytes)"
    )
    if isinstance(answer, _TooSlow):
        return (
            f"compiling the module took longer than {settings.max_compile_ms} ms "
            f"(executor.max_compile_ms)"
        )
    if isinstance(answer, _Died):
        code = answer.returncode
        if code == -signal.SIGXCPU:
            return (
                f"compiling the module used more than {settings.cpu_seconds} s of CPU time "
                f"(executor.max_compile_ms)"
            )
        # SIGABRT: Rust's allocation failure; SIGKILL not from us: the kernel's OOM killer.
        if code in (-signal.SIGABRT, -signal.SIGKILL, wire.EXIT_NO_MEMORY):
            return memory
        return f"the compile worker died compiling the module (exit status {code})"
    return f"the compile ended unexpectedly ({answer!r})"
