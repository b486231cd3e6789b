"""Every private wasmtime-py API the runtime uses, in one place, checked before first use.

wasmtime-py 50 wraps neither the pooling allocator, nor stdin bytes, nor an epoch-deadline
callback, nor an export lookup by name, nor host functions without its per-call value
conversions (``define_unchecked``, ``caller_memory``); the runtime reaches them through
``wasmtime._ffi`` (the C API bindings) and a few underscore attributes. An upgrade may rename
or reshape any of them. Importing this module never fails: it looks each symbol up and records
what is missing or has another shape. ``require()`` (called when a Sandbox is built) raises
``UnsupportedWasmtimeError`` naming the symbol and the installed version, instead of an
AttributeError deep inside a job. tests/runtime/test_wasmtime_contract.py checks each symbol
and what the runtime relies on it to do.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any

import wasmtime

from plasm.runtime.errors import UnsupportedWasmtimeError

SUPPORTED = "50.x"
try:
    VERSION = importlib.metadata.version("wasmtime")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored copy
    VERSION = "(unknown version)"

PROBLEMS: dict[str, str] = {}  # symbol -> what is wrong with it, filled at import
_lock = threading.Lock()
_checked = False


def error_for(symbol: str, detail: str = "") -> UnsupportedWasmtimeError:
    tail = f" ({detail})" if detail else ""
    return UnsupportedWasmtimeError(
        f"wasmtime {VERSION} no longer has {symbol}{tail}; plasm supports wasmtime {SUPPORTED}"
    )


def _attr(owner: Any, owner_name: str, name: str) -> Any:
    symbol = f"{owner_name}.{name}"
    value = getattr(owner, name, None)
    if value is None:
        PROBLEMS[symbol] = "missing"
    return value


def _function(name: str, arity: int) -> Callable[..., Any]:
    """``wasmtime._ffi.<name>``, a Python wrapper taking ``arity`` arguments."""
    fn = _attr(_ffi, "wasmtime._ffi", name)
    if fn is None:
        return _missing(f"wasmtime._ffi.{name}")
    try:
        count = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        count = -1
    if not callable(fn) or count != arity:
        PROBLEMS[f"wasmtime._ffi.{name}"] = f"expected a function of {arity} arguments"
    return fn


def _missing(symbol: str) -> Callable[..., Any]:
    def fail(*_args: Any) -> Any:
        raise error_for(symbol, PROBLEMS.get(symbol, ""))

    return fail


try:
    from wasmtime import _ffi
except ImportError:  # pragma: no cover - only on a wasmtime that dropped the module
    _ffi = None  # type: ignore[assignment]
    PROBLEMS["wasmtime._ffi"] = "missing"

# -- the symbols ---------------------------------------------------------------------------

extern_t: Any = _attr(_ffi, "wasmtime._ffi", "wasmtime_extern_t")
_EXTERN_FUNC = _attr(_ffi, "wasmtime._ffi", "WASMTIME_EXTERN_FUNC")
_instance_export_get = _function("wasmtime_instance_export_get", 5)
_byte_vec_t: Any = _attr(_ffi, "wasmtime._ffi", "wasm_byte_vec_t")
_byte_t: Any = _attr(_ffi, "wasmtime._ffi", "wasm_byte_t")
_byte_vec_new = _function("wasm_byte_vec_new", 3)
_set_stdin = _function("wasi_config_set_stdin_bytes", 2)
_error_new = _function("wasmtime_error_new", 1)
_pool_new = _function("wasmtime_pooling_allocation_config_new", 0)
_pool_delete = _function("wasmtime_pooling_allocation_config_delete", 1)
_pool_strategy_set = _function("wasmtime_pooling_allocation_strategy_set", 2)
_from_raw = _attr(wasmtime.Func, "wasmtime.Func", "_from_raw")
_EXTERN_MEMORY = _attr(_ffi, "wasmtime._ffi", "WASMTIME_EXTERN_MEMORY")
val_raw_t: Any = _attr(_ffi, "wasmtime._ffi", "wasmtime_val_raw_t")
_unchecked_callback_t: Any = _attr(_ffi, "wasmtime._ffi", "wasmtime_func_unchecked_callback_t")
_define_unchecked = _function("wasmtime_linker_define_func_unchecked", 9)
_caller_export_get = _function("wasmtime_caller_export_get", 4)
_caller_context = _function("wasmtime_caller_context", 1)
_memory_data = _function("wasmtime_memory_data", 2)
_memory_data_size = _function("wasmtime_memory_data_size", 2)
if not callable(getattr(wasmtime.Store, "_context", None)):
    PROBLEMS["wasmtime.Store._context"] = "missing"
for _cls in (wasmtime.Config, wasmtime.Store, wasmtime.WasiConfig):
    if not callable(getattr(_cls, "ptr", None)):
        PROBLEMS[f"wasmtime.{_cls.__name__}.ptr"] = "missing"

# The C API's epoch-deadline callback returns a ``wasmtime_error_t *`` (NULL: go on). The
# binding types that result as size_t and refuses any other prototype, so the runtime
# declares its own on the C function: context and kind pointers stay opaque or uint8_t, as
# in wasmtime.h.
DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_void_p,  # wasmtime_error_t *
    ctypes.c_void_p,  # wasmtime_context_t *
    ctypes.c_void_p,  # void *data
    ctypes.POINTER(ctypes.c_uint64),  # uint64_t *epoch_deadline_delta
    ctypes.POINTER(ctypes.c_uint8),  # wasmtime_update_deadline_kind_t *
)
Finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_dll = _attr(_ffi, "wasmtime._ffi", "dll")
try:
    _epoch_callback_set: Any = _dll["wasmtime_store_epoch_deadline_callback"]
    _epoch_callback_set.restype = None
    _epoch_callback_set.argtypes = [ctypes.c_void_p, DeadlineCallback, ctypes.c_void_p, Finalizer]
except (AttributeError, TypeError):
    PROBLEMS["wasmtime_store_epoch_deadline_callback (C API)"] = "missing"
    _epoch_callback_set = _missing("wasmtime_store_epoch_deadline_callback (C API)")


def pool_setter(name: str) -> Callable[[Any, int], None]:
    """The C setter of pooling-allocator setting ``name`` (e.g. "total_memories")."""
    return _function(f"wasmtime_pooling_allocation_config_{name}_set", 2)


# -- the uses ------------------------------------------------------------------------------


def require() -> None:
    """Raise UnsupportedWasmtimeError unless every symbol is there with its expected shape,
    and an export lookup by name (``Store._context``, ``Instance._instance``,
    ``Func._from_raw``) gives a ``_start`` that runs. Checked once per process."""
    global _checked
    if _checked:
        return
    with _lock:
        if _checked:
            return
        if PROBLEMS:
            symbol, detail = next(iter(PROBLEMS.items()))
            raise error_for(symbol, "" if detail == "missing" else detail)
        _probe_start()
        _checked = True


def _probe_start() -> None:
    # (module (func (export "_start"))): the smallest command module.
    wasm = (
        b"\x00asm\x01\x00\x00\x00"
        b"\x01\x04\x01\x60\x00\x00"  # type () -> ()
        b"\x03\x02\x01\x00"  # one function of type 0
        b"\x07\x0a\x01\x06_start\x00\x00"  # export it as _start
        b"\x0a\x04\x01\x02\x00\x0b"  # its body: end
    )
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    start = export_func(store, instance, b"_start")
    if start is None:
        raise error_for("wasmtime_instance_export_get", "it did not find an export")
    start(store)


def store_context(store: wasmtime.Store) -> Any:
    """``Store._context()``: the C ``wasmtime_context_t *`` of a store."""
    return store._context()


def export_func(store: wasmtime.Store, instance: wasmtime.Instance, name: bytes) -> Any:
    """The exported function ``name`` of ``instance``, found by one C lookup (not by wrapping
    every export as ``Instance.exports`` does), or None."""
    try:
        raw_instance = instance._instance
    except AttributeError:
        raise error_for("wasmtime.Instance._instance") from None
    item = extern_t()
    found = _instance_export_get(
        store_context(store), ctypes.byref(raw_instance), name, len(name), ctypes.byref(item)
    )
    if not found or item.kind != _EXTERN_FUNC.value:
        return None
    return _from_raw(item.of.func)


def set_stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    """Give a WASI config these stdin bytes. The C API copies them into a new vec that the
    config then owns (FINDINGS.md: no leak over 20k jobs)."""
    vec = _byte_vec_t()
    source = ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(_byte_t))
    _byte_vec_new(ctypes.byref(vec), len(data), source)
    _set_stdin(config.ptr(), ctypes.byref(vec))


def use_pooling_allocator(config: wasmtime.Config, settings: Mapping[str, int]) -> None:
    """Switch ``config`` to the pooling allocator with these settings (names of the C API's
    ``wasmtime_pooling_allocation_config_<name>_set``). The C API copies the pool config."""
    setters = [(pool_setter(name), value) for name, value in settings.items()]
    for name in settings:
        symbol = f"wasmtime._ffi.wasmtime_pooling_allocation_config_{name}_set"
        if symbol in PROBLEMS:
            raise error_for(symbol, PROBLEMS[symbol])
    pool = _pool_new()
    try:
        for setter, value in setters:
            setter(pool, value)
        _pool_strategy_set(config.ptr(), pool)
    finally:
        _pool_delete(pool)


def set_epoch_deadline_callback(
    store: wasmtime.Store, callback: Any, data: int, finalizer: Any
) -> None:
    """``wasmtime_store_epoch_deadline_callback``: ``callback`` (a ``DeadlineCallback``) runs
    when the store's epoch deadline passes; ``finalizer(data)`` when the store is dropped."""
    _epoch_callback_set(ctypes.cast(store.ptr(), ctypes.c_void_p), callback, data, finalizer)


def new_error(message: str) -> int:
    """A new ``wasmtime_error_t *`` (as an address) that wasmtime takes ownership of when a
    deadline callback returns it."""
    error = _error_new(message.encode())
    return ctypes.cast(error, ctypes.c_void_p).value or 0


# Host functions defined through define_unchecked; their ctypes callbacks must outlive the
# linker (wasmtime calls them by address), so they live as long as the process.
_UNCHECKED: list[Any] = []
_MEMORY_NAME = ctypes.create_string_buffer(b"memory")


def define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType,
    call: Callable[[Any, Any], int],
) -> None:  # fmt: skip
    """Define host function ``module.name`` of type ``ty`` (one i32 result) as
    ``call(caller, args)``: ``caller`` the C ``wasmtime_caller_t *``, ``args`` the raw values
    (``args[i].i32`` / ``.i64``, signed). Its int result goes back to the guest. ``call``
    must not raise. wasmtime-py's ``define_func`` wraps the caller and converts and
    type-checks every value on every call, which costs more than most WASI calls do."""

    def trampoline(_env: Any, caller: Any, args: Any, _count: int) -> int:
        try:
            args[0].i32 = call(caller, args)
        except BaseException:  # nothing may unwind into wasmtime
            args[0].i32 = 29  # EIO
        return 0

    callback = _unchecked_callback_t(trampoline)
    _UNCHECKED.append(callback)
    module_buf = ctypes.create_string_buffer(module.encode())
    name_buf = ctypes.create_string_buffer(name.encode())
    error = _define_unchecked(
        linker.ptr(), module_buf, len(module), name_buf, len(name), ty.ptr(), callback, None,
        Finalizer(),  # a NULL finalizer: the callback is kept in _UNCHECKED
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def caller_memory_handle(caller: Any) -> Any:
    """The calling instance's exported "memory" (valid as long as its store), or None."""
    item = extern_t()
    if not _caller_export_get(caller, _MEMORY_NAME, 6, ctypes.byref(item)):
        return None
    if item.kind != _EXTERN_MEMORY.value:
        return None
    return ctypes.byref(item.of.memory)


def caller_memory(caller: Any, handle: Any) -> tuple[int, int]:
    """``(address, size)`` now of the memory ``handle`` (from ``caller_memory_handle``):
    fetched on every call, since a memory may move when it grows."""
    context = _caller_context(caller)
    address = ctypes.cast(_memory_data(context, handle), ctypes.c_void_p).value
    return address or 0, _memory_data_size(context, handle)
