"""The wasmtime sandbox: one engine, a module cache, and one fresh store per job.

Theory of operation: a ``Sandbox`` owns one wasmtime ``Engine`` (fuel and epoch interruption
on), one shared ``Linker`` with WASI preview1, and a cache of ``CompiledModule`` (each holding
an ``InstancePre``, so a job skips import resolution) keyed by the sha256 of the module bytes,
kept in memory and, with a ``cache_dir``, serialized on disk (see ``_cache``), both bounded in
bytes (least recently used first out). A module that is in neither cache is compiled in a
worker process under CPU, memory and wall-time limits (``_compiler``) and loaded here with
``Module.deserialize``; a module refused there (``compile_limit`` or invalid) is remembered
by sha256 and refused at once next time. ``run`` builds a new ``Store`` per job with the
job's fuel, memory/table/instance limits, WASI context (``_wasi``: argv and env, and our own
stdin, output capture and virtual filesystem of ``_vfs``) and an epoch watch for timeout and
cancellation (``_deadline``), calls ``_start``, and maps whatever happened to one
``OutcomeKind``. Guest behaviour never raises.

Many threads may call ``run`` and ``compile`` on one Sandbox at once: a Store never leaves the
thread that runs it, the caches are behind one lock held for dictionary operations only, and
compiles of different modules run side by side (as many as there are workers) while callers
of one module share its one compile.

Memory-limit rule: wasmtime-py offers no hook that reports a refused ``memory.grow``. A job
counts as ``memory_limit`` when instantiation fails because the module's initial memory is
above the limit, or when it traps or exits non-zero while an exported memory is within one
page of the limit (so one more page would have been refused). A guest that asks for many pages
at once far below the limit and fails is reported as the trap or exit it produced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import wasmtime

from plasm.runtime import _wasmtime_private as private
from plasm.runtime._cache import DiskCache, engine_fingerprint
from plasm.runtime._cancel import CancelToken
from plasm.runtime._clock import VirtualWorld
from plasm.runtime._compiler import CompilePool, CompileSettings
from plasm.runtime._deadline import CANCELLED, EpochTicker, Watch, watch_store
from plasm.runtime._vfs import Fds
from plasm.runtime._wasi import OutputCapture, define_overrides, serving, wasi_config
from plasm.runtime.errors import (
    CompileCancelledError,
    CompileDeadlineError,
    CompileLimitError,
    InvalidModuleError,
    SandboxError,
)
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from plasm.runtime.lru import BoundedLRU

__all__ = ["CancelToken", "CompileSettings", "CompiledModule", "Sandbox"]

log = logging.getLogger(__name__)

# Settings of wasmtime.Config, set as its attributes (all change compiled code).
_CONFIG_SETTINGS: dict[str, object] = {
    "consume_fuel": True,
    "epoch_interruption": True,
    "cranelift_opt_level": "speed",
    # The determinism profile (wasi-p1-det/1): NaNs come out in one canonical bit pattern,
    # relaxed SIMD gives its deterministic results, and no shared-memory threads.
    "cranelift_nan_canonicalization": True,
    "wasm_relaxed_simd_deterministic": True,
    "wasm_threads": False,
}
_WASM_MAGIC = b"\x00asm"
# Refusals remembered by module sha256 (a few hundred bytes each).
_REMEMBERED_REFUSALS = 4096
_NO_DEADLINE_NS = 2**62
_TABLE_ELEMENTS = 100_000
# The pooling allocator: every slot reserves address space once (a wasm32 memory's whole
# 4 GiB, as the default allocator does per instance) and is reused job after job, so a job
# makes no mmap/munmap of its own. munmap on a multi-threaded process sends TLB-shootdown
# interrupts to every CPU the process runs on; measured on hello.wasm, pooling cut a job
# from ~270 to ~120-180 µs. Slots are the bound on jobs running at once in one Sandbox
# (`Sandbox.run` waits for a free one); the first pages of a slot stay resident between jobs
# and are zeroed with memset instead of a madvise system call.
_POOL_MIN_SLOTS = 16
_POOL_MAX_MEMORY_BYTES = 4 * 2**30
_POOL_KEEP_RESIDENT_BYTES = 2**20


def engine_settings(slots: int) -> dict[str, dict[str, Any]]:
    """Every engine setting, the one source of both the Config and its fingerprint."""
    return {
        "config": dict(_CONFIG_SETTINGS),
        # Names of the C API's wasmtime_pooling_allocation_config_<name>_set.
        "pool": {
            "total_core_instances": slots,
            "total_memories": slots,
            "total_tables": slots,
            "total_stacks": slots,
            "max_memory_size": _POOL_MAX_MEMORY_BYTES,
            "table_elements": _TABLE_ELEMENTS,
            "linear_memory_keep_resident": _POOL_KEEP_RESIDENT_BYTES,
            "table_keep_resident": _POOL_KEEP_RESIDENT_BYTES,
        },
    }


def engine_config(slots: int) -> tuple[wasmtime.Config, str]:
    """The engine's Config and its fingerprint (the disk cache's key), both from
    ``engine_settings``. The fingerprint covers every setting, the pool's included (slot
    counts change no code, but a superset only costs a recompile per distinct count, where
    a missing setting could load code compiled for another configuration)."""
    private.require()
    settings = engine_settings(slots)
    config = wasmtime.Config()
    for name, value in settings["config"].items():
        if not isinstance(getattr(wasmtime.Config, name, None), property):
            raise private.error_for(f"wasmtime.Config.{name}")
        setattr(config, name, value)
    private.use_pooling_allocator(config, settings["pool"])
    return config, engine_fingerprint(private.VERSION, settings)


_WASI_ERRNO_NOTSUP = 58
_START = b"_start"


class CompiledModule:
    """A validated, compiled WASI command module, ready to instantiate in its Sandbox.

    ``loaded_from_disk`` is True when the machine code came from the disk cache instead of a
    compilation; ``code_size`` is the length of its serialized code (what it weighs in the
    caches).
    """

    __slots__ = ("_owner", "_pre", "code_size", "loaded_from_disk", "sha256", "size")

    def __init__(
        self,
        sha256: str,
        size: int,
        pre: wasmtime.InstancePre,
        owner: Sandbox,
        loaded_from_disk: bool,
        code_size: int,
    ) -> None:
        self.sha256 = sha256
        self.size = size
        self.loaded_from_disk = loaded_from_disk
        self.code_size = code_size
        self._pre = pre
        self._owner = owner

    def __repr__(self) -> str:
        return f"CompiledModule(sha256={self.sha256!r}, size={self.size})"


class Sandbox:
    """Runs WASI preview1 command modules under ``Limits``; see the module docstring."""

    engine_name = "wasmtime"

    def __init__(
        self,
        cache_dir: Path | None = None,
        epoch_tick_ms: int = 5,
        slots: int = 0,
        spread_cpus: frozenset[int] | None = None,
        compiling: CompileSettings | None = None,
    ) -> None:
        """``slots``: how many jobs may run at once (0: at least 16, two per CPU).

        ``spread_cpus``: CPUs a guest still running after one epoch tick may use; its thread
        gets its own affinity back when the job ends (runtime/cpus.py), and compile workers
        run on them. None: leave it be.

        ``compiling``: compile workers, their limits and the cache budgets (``_compiler``).
        """
        self._spread_cpus = spread_cpus
        if type(epoch_tick_ms) is not int or epoch_tick_ms <= 0:
            raise ValueError(f"epoch_tick_ms must be a positive integer, got {epoch_tick_ms!r}")
        if type(slots) is not int or slots < 0:
            raise ValueError(f"slots must be a non-negative integer, got {slots!r}")
        self.slots = slots or max(_POOL_MIN_SLOTS, 2 * (os.cpu_count() or 1))
        config, self.fingerprint = engine_config(self.slots)
        self._engine = wasmtime.Engine(config)
        self._free_slots = threading.BoundedSemaphore(self.slots)
        self.engine_version: str = private.VERSION
        self._linker = _wasi_linker(self._engine)
        self.compiling = compiling or CompileSettings()
        self._disk = (
            DiskCache(Path(cache_dir), self.fingerprint, self.compiling.disk_cache_bytes)
            if cache_dir
            else None
        )
        self._cache_lock = threading.Lock()
        self._modules: BoundedLRU[str, CompiledModule] = BoundedLRU(
            self.compiling.memory_cache_bytes, weight=_code_size
        )
        self._refused: BoundedLRU[str, SandboxError] = BoundedLRU(_REMEMBERED_REFUSALS)
        self._ticker = EpochTicker(self._engine, epoch_tick_ms / 1000)
        self._closed = False
        self._compiler = CompilePool(
            self.compiling, engine_settings(self.slots)["config"], spread_cpus
        )

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the epoch ticker thread and kill the compile workers (a compile in progress
        too: its job ends ``cancelled``). Jobs cannot run afterwards."""
        self._closed = True
        self._compiler.close()
        self._ticker.stop()

    @property
    def compiles_started(self) -> int:
        """How many compiles were handed to a worker so far (cache hits and remembered
        refusals are not)."""
        return self._compiler.compiles_started

    @property
    def compile_worker_pids(self) -> tuple[int, ...]:
        """Process ids of the compile workers alive now."""
        return self._compiler.worker_pids

    # -- compiling ---------------------------------------------------------------------------

    def compile(
        self, wasm: bytes, cancel: CancelToken | None = None, timeout_ms: int | None = None
    ) -> CompiledModule:
        """Validate and compile ``wasm``, or fetch it from the memory or disk cache.

        Raises ``InvalidModuleError`` if the bytes are not a runnable WASI command module,
        ``CompileLimitError`` if compiling them goes over a limit of ``compiling`` (both
        remembered: the same bytes are refused again at once), ``CompileCancelledError``
        when ``cancel`` is cancelled (or the sandbox closes) and ``CompileDeadlineError``
        after ``timeout_ms`` (None: only the compile limits apply) meanwhile.
        """
        deadline_ns = time.monotonic_ns() + (
            _NO_DEADLINE_NS if timeout_ms is None else timeout_ms * 1_000_000
        )
        return self._compiled(bytes(wasm), hashlib.sha256(wasm).hexdigest(), cancel, deadline_ns)

    def _compiled(
        self, wasm: bytes, sha256: str, cancel: CancelToken | None, deadline_ns: int
    ) -> CompiledModule:
        with self._cache_lock:
            cached = self._modules.get(sha256)
            refused = None if cached is not None else self._refused.get(sha256)
        if cached is not None:
            return cached
        if refused is not None:
            raise type(refused)(str(refused))
        try:
            compiled = self._load_or_compile(wasm, sha256, cancel, deadline_ns)
        except (InvalidModuleError, CompileLimitError) as exc:
            self._remember_refusal(sha256, exc)
            raise
        with self._cache_lock:
            # Two callers may have loaded it at once (from disk, or from one shared compile).
            cached = self._modules.get(sha256)
            if cached is not None:
                return cached
            self._modules.put(sha256, compiled)
        return compiled

    def _remember_refusal(self, sha256: str, exc: SandboxError) -> None:
        message = str(exc)
        if isinstance(exc, CompileLimitError):
            log.info(
                "refused to compile module %s: %s",
                sha256,
                message,
                extra={"event": "compile_refused", "module_sha256": sha256},
            )
            message = f"this node refused to compile the module before: {message}"
        with self._cache_lock:
            self._refused.put(sha256, type(exc)(message))

    def _load_or_compile(
        self, wasm: bytes, sha256: str, cancel: CancelToken | None, deadline_ns: int
    ) -> CompiledModule:
        if not wasm.startswith(_WASM_MAGIC):
            raise InvalidModuleError(
                "not a WebAssembly binary (no \\0asm header); send the compiled .wasm bytes"
            )
        serialized = self._disk.load(sha256) if self._disk is not None else None
        module = self._deserialize(serialized) if serialized is not None else None
        loaded_from_disk = module is not None
        if module is None:
            try:
                serialized = self._compiler.compile(sha256, wasm, cancel, deadline_ns)
            except InvalidModuleError as exc:
                raise InvalidModuleError(f"invalid WebAssembly module: {_cause(exc)}") from exc
            module = self._deserialize(serialized)
            if module is None:
                raise SandboxError(
                    "the compile worker's code does not load in this engine (its settings "
                    "differ); this is a bug in the sandbox"
                )
        assert serialized is not None
        _require_start(module)
        try:
            pre = self._linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModuleError(
                f"module imports something the sandbox does not provide (only WASI preview1 "
                f"'wasi_snapshot_preview1' is available): {_cause(exc)}"
            ) from exc
        if self._disk is not None and not loaded_from_disk:
            self._disk.store(sha256, serialized)
        return CompiledModule(sha256, len(wasm), pre, self, loaded_from_disk, len(serialized))

    def _deserialize(self, serialized: bytes) -> wasmtime.Module | None:
        """Code this process's workers produced, or read back from the disk cache (checked
        there): the only bytes ever deserialized. None if this engine does not take them."""
        try:
            return wasmtime.Module.deserialize(self._engine, serialized)
        except wasmtime.WasmtimeError:
            return None  # written by an incompatible engine: recompile and overwrite

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        module: CompiledModule | bytes,
        job_input: JobInput,
        limits: Limits,
        cancel: CancelToken | None = None,
        expect_sha256: str | None = None,
    ) -> Outcome:
        """Run one job to its end and say how it ended. Never raises for guest behaviour.

        Given bytes, compiles them first (or takes them from a cache); the compile counts
        against ``limits.timeout_ms``. ``expect_sha256``: bytes of another sha256 are
        refused (``invalid_module``) and never compiled or run.

        Raises ``ValueError`` when ``job_input`` does not fit ``limits`` (``Limits.admits``:
        its input files are too big); check that before accepting a job.
        """
        if self._closed:
            raise SandboxError("sandbox is closed; create a new Sandbox to run jobs")
        too_big = limits.admits(job_input)
        if too_big is not None:
            raise ValueError(too_big)
        started_at_ms = time.time_ns() // 1_000_000
        started_ns = time.perf_counter_ns()
        deadline_ns = time.monotonic_ns() + limits.timeout_ms * 1_000_000
        if not isinstance(module, CompiledModule):
            found = self._compile_for_job(bytes(module), limits, cancel, deadline_ns, expect_sha256)
            if isinstance(found, _Result):
                return found.outcome(started_at_ms, started_ns)
            module = found
        elif module._owner is not self:
            raise SandboxError(
                "module was compiled by another Sandbox; compile it with the one that runs it"
            )
        elif expect_sha256 is not None and module.sha256 != expect_sha256:
            return _Result(OutcomeKind.INVALID_MODULE, message=_MISMATCH).outcome(
                started_at_ms, started_ns
            )
        if cancel is not None and cancel.cancelled:
            return _Result(OutcomeKind.CANCELLED).outcome(started_at_ms, started_ns)
        self._ticker.ensure_started()

        stdout = OutputCapture(limits.max_output_bytes)
        stderr = OutputCapture(limits.max_output_bytes)
        fds = Fds(job_input.stdin, stdout, stderr, job_input.files, limits)
        with self._free_slots:
            store = wasmtime.Store(self._engine)
            try:
                store.set_wasi(wasi_config(job_input))
                store.set_fuel(limits.fuel)
                store.set_limits(
                    memory_size=min(limits.memory_bytes, _POOL_MAX_MEMORY_BYTES),
                    table_elements=_TABLE_ELEMENTS,
                    instances=1,
                    memories=1,
                )
                watch = Watch(deadline_ns, cancel, self._spread_cpus)
                watch_store(store, watch)
                world = (
                    VirtualWorld(job_input.random_seed(), job_input.epoch_ms * 1_000_000)
                    if job_input.deterministic
                    else None
                )
                with serving(fds, world):
                    try:
                        result = _execute(module._pre, store, watch, limits)
                    finally:
                        watch.restore_cpus()
                result.fuel_consumed = limits.fuel - store.get_fuel()
            finally:
                store.close()  # its pool slot is free for the next job now, not at GC
        result.stdout, result.stdout_truncated = bytes(stdout.data), stdout.truncated
        result.stderr, result.stderr_truncated = bytes(stderr.data), stderr.truncated
        result.output_files, result.outputs_truncated = fds.output_files(), fds.truncated
        return result.outcome(started_at_ms, started_ns)

    def _compile_for_job(
        self,
        wasm: bytes,
        limits: Limits,
        cancel: CancelToken | None,
        deadline_ns: int,
        expect_sha256: str | None,
    ) -> CompiledModule | _Result:
        """The job's module, or the result of a job that ends before it runs."""
        sha256 = hashlib.sha256(wasm).hexdigest()
        if expect_sha256 is not None and sha256 != expect_sha256:
            return _Result(OutcomeKind.INVALID_MODULE, message=_MISMATCH)
        try:
            return self._compiled(wasm, sha256, cancel, deadline_ns)
        except InvalidModuleError as exc:
            return _Result(OutcomeKind.INVALID_MODULE, message=str(exc))
        except CompileLimitError as exc:
            return _Result(OutcomeKind.COMPILE_LIMIT, message=str(exc))
        except CompileCancelledError:
            return _Result(OutcomeKind.CANCELLED)
        except CompileDeadlineError:
            return _Result(
                OutcomeKind.TIMEOUT,
                message=f"ran longer than {limits.timeout_ms} ms (compiling the module)",
            )


_MISMATCH = "module bytes do not match module_sha256; nothing was run"


def _code_size(module: CompiledModule) -> int:
    return module.code_size


class _Result:
    """The mutable makings of an Outcome while a job ends."""

    __slots__ = (
        "exit_code",
        "fuel_consumed",
        "kind",
        "message",
        "output_files",
        "outputs_truncated",
        "stderr",
        "stderr_truncated",
        "stdout",
        "stdout_truncated",
    )

    def __init__(
        self, kind: OutcomeKind, exit_code: int | None = None, message: str | None = None
    ) -> None:
        self.kind = kind
        self.exit_code = exit_code
        self.message = message
        self.stdout = self.stderr = b""
        self.stdout_truncated = self.stderr_truncated = False
        self.fuel_consumed = 0
        self.output_files: tuple[tuple[str, bytes], ...] = ()
        self.outputs_truncated = False

    def outcome(self, started_at_ms: int, started_ns: int) -> Outcome:
        wall_time_us = (time.perf_counter_ns() - started_ns) // 1000
        return Outcome(
            kind=self.kind,
            exit_code=self.exit_code,
            message=self.message,
            stdout=self.stdout,
            stderr=self.stderr,
            stdout_truncated=self.stdout_truncated,
            stderr_truncated=self.stderr_truncated,
            fuel_consumed=self.fuel_consumed,
            wall_time_us=wall_time_us,
            started_at_ms=started_at_ms,
            finished_at_ms=max(started_at_ms, time.time_ns() // 1_000_000),
            output_files=self.output_files,
            outputs_truncated=self.outputs_truncated,
        )


def _execute(
    pre: wasmtime.InstancePre, store: wasmtime.Store, watch: Watch, limits: Limits
) -> _Result:
    """Instantiate and call ``_start``; map every way it can end to a _Result."""
    instance: wasmtime.Instance | None = None
    try:
        instance = pre.instantiate(store)
        _start_func(store, instance)(store)
        return _Result(OutcomeKind.OK)
    except wasmtime.ExitTrap as exc:
        if exc.code == 0:
            return _Result(OutcomeKind.OK)
        if _memory_exhausted(store, instance, limits):
            return _memory_limit_result(f"exited with code {exc.code}", limits)
        return _Result(OutcomeKind.EXIT, exit_code=exc.code)
    except wasmtime.Trap as exc:
        if exc.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
            return _Result(OutcomeKind.OUT_OF_FUEL, message=f"used all {limits.fuel} fuel")
        if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
            return _timeout_result(limits)
        if _memory_exhausted(store, instance, limits):
            return _memory_limit_result(_cause(exc), limits)
        return _Result(OutcomeKind.TRAP, message=_cause(exc))
    except wasmtime.WasmtimeError as exc:
        if watch.reason == CANCELLED:
            return _Result(OutcomeKind.CANCELLED)
        if watch.reason is not None:
            return _timeout_result(limits)
        cause = _cause(exc)
        if instance is None and "memory" in cause:
            return _Result(
                OutcomeKind.MEMORY_LIMIT,
                message=f"module needs more than the {limits.memory_bytes}-byte memory limit: "
                f"{cause}",
            )
        return _Result(OutcomeKind.TRAP, message=cause)


def _timeout_result(limits: Limits) -> _Result:
    return _Result(OutcomeKind.TIMEOUT, message=f"ran longer than {limits.timeout_ms} ms")


def _memory_limit_result(what: str, limits: Limits) -> _Result:
    return _Result(
        OutcomeKind.MEMORY_LIMIT,
        message=f"memory reached the {limits.memory_bytes}-byte limit, then {what}",
    )


def _memory_exhausted(
    store: wasmtime.Store, instance: wasmtime.Instance | None, limits: Limits
) -> bool:
    """True if some exported memory could not grow by one more page (the rule above)."""
    if instance is None:
        return False
    for item in instance.exports(store).by_index:
        if isinstance(item, wasmtime.Memory) and (
            item.data_len(store) + item.page_size(store) > limits.memory_bytes
        ):
            return True
    return False


def _cause(exc: BaseException) -> str:
    """The root cause line of a wasmtime error (or of its text, as a compile worker sent
    it), without the backtrace."""
    text = exc.message if isinstance(exc, wasmtime.Trap) else str(exc)
    _, found, tail = text.rpartition("Caused by:")
    lines = [line.strip() for line in (tail if found else text).splitlines() if line.strip()]
    return lines[0] if lines else text.strip()


def _start_func(store: wasmtime.Store, instance: wasmtime.Instance) -> wasmtime.Func:
    # One lookup by name: Instance.exports() wraps every export, a per-job cost that grows
    # with the module's export count.
    start = private.export_func(store, instance, _START)
    if start is None:
        raise SandboxError("instance lost its '_start' export; this is a bug in the sandbox")
    return start


def _require_start(module: wasmtime.Module) -> None:
    for export in module.exports:
        if export.name == "_start":
            ty = export.type
            if isinstance(ty, wasmtime.FuncType) and not ty.params and not ty.results:
                return
            break
    raise InvalidModuleError(
        "module has no '_start' function of type () -> (); build it as a WASI command"
    )


def _wasi_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    define_overrides(linker)  # stdio and the virtual filesystem on the job's thread (_wasi)
    # wasmtime's poll_oneoff sleeps on the host thread, where neither the timeout nor a
    # cancellation can reach it; a guest that wants to sleep gets ENOTSUP instead.
    i32 = wasmtime.ValType.i32()
    linker.define_func(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        lambda *_: _WASI_ERRNO_NOTSUP,
    )
    linker.allow_shadowing = False
    return linker
