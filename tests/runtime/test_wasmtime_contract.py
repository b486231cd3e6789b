"""What the runtime relies on in wasmtime-py's private APIs (runtime/_wasmtime_private.py).

One test per private symbol: after a wasmtime upgrade, the failing test names what changed.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import pytest
import wasmtime

from plasm.runtime import _wasmtime_private as private
from plasm.runtime import sandbox as sandbox_module
from plasm.runtime.errors import SandboxError, UnsupportedWasmtimeError
from plasm.runtime.job import JobInput, Limits, OutcomeKind
from plasm.runtime.sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "wasm-examples"
UPGRADE = f"wasmtime {private.VERSION} changed a private API plasm uses: "


def hello() -> bytes:
    return (EXAMPLES / "hello.wasm").read_bytes()


def test_every_private_symbol_is_there_with_its_shape() -> None:
    assert private.PROBLEMS == {}, UPGRADE + repr(private.PROBLEMS)
    private.require()


def test_a_missing_symbol_names_itself_and_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private, "_checked", False)
    monkeypatch.setitem(private.PROBLEMS, "wasmtime._ffi.wasm_byte_vec_new", "missing")
    with pytest.raises(UnsupportedWasmtimeError) as raised:
        Sandbox()
    assert isinstance(raised.value, SandboxError)
    assert str(raised.value) == (
        f"wasmtime {private.VERSION} no longer has wasmtime._ffi.wasm_byte_vec_new; "
        "plasm supports wasmtime 50.x"
    )


def test_a_reshaped_function_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmtime import _ffi

    monkeypatch.setattr(_ffi, "wasm_byte_vec_new", lambda out, size: None)
    monkeypatch.delitem(private.PROBLEMS, "wasmtime._ffi.wasm_byte_vec_new", raising=False)
    private._function("wasm_byte_vec_new", 3)
    try:
        assert (
            "expected a function of 3 arguments"
            in private.PROBLEMS["wasmtime._ffi.wasm_byte_vec_new"]
        )
    finally:
        private.PROBLEMS.pop("wasmtime._ffi.wasm_byte_vec_new")


def test_store_context_is_a_wasmtime_context_pointer() -> None:
    from wasmtime import _ffi

    config = wasmtime.Config()
    config.consume_fuel = True
    store = wasmtime.Store(wasmtime.Engine(config))
    context = private.store_context(store)
    assert isinstance(context, ctypes.POINTER(_ffi.wasmtime_context_t)), UPGRADE + "Store._context"
    store.set_fuel(7)
    fuel = ctypes.c_uint64()
    assert not _ffi.wasmtime_context_get_fuel(context, ctypes.byref(fuel))
    assert fuel.value == 7  # the context of this very store


def test_instance_has_a_raw_wasmtime_instance() -> None:
    from wasmtime import _ffi

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, "(module)"), [])
    assert isinstance(instance._instance, _ffi.wasmtime_instance_t), UPGRADE + "Instance._instance"


def test_export_lookup_and_func_from_raw_give_a_callable_start() -> None:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(
        engine,
        '(module (func (export "_start") (result i32) i32.const 42) (memory (export "m") 1))',
    )
    instance = wasmtime.Instance(store, module, [])
    start = private.export_func(store, instance, b"_start")
    assert isinstance(start, wasmtime.Func), UPGRADE + "Func._from_raw / instance_export_get"
    assert start(store) == 42
    assert private.export_func(store, instance, b"m") is None  # a memory, not a function
    assert private.export_func(store, instance, b"absent") is None


def test_stdin_bytes_reach_the_guest(sandbox: Sandbox) -> None:
    outcome = sandbox.run(hello(), JobInput(stdin=b"stdin\x00bytes"), Limits())
    assert outcome.kind is OutcomeKind.OK
    assert outcome.stdout == b"setyb\x00nidts\n", UPGRADE + "wasi_config_set_stdin_bytes"


@pytest.mark.parametrize("name", sorted(sandbox_module.engine_settings(1)["pool"]))
def test_each_pool_setter_exists(name: str) -> None:
    setter = private.pool_setter(name)
    symbol = f"wasmtime._ffi.wasmtime_pooling_allocation_config_{name}_set"
    assert symbol not in private.PROBLEMS, UPGRADE + symbol
    pool = private._pool_new()
    try:
        setter(pool, 1)
    finally:
        private._pool_delete(pool)


def test_instances_come_from_the_pool() -> None:
    """With one slot, a second live instance is refused: the pool really applies."""
    config, _ = sandbox_module.engine_config(1)
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, "(module (memory 1))")
    first = wasmtime.Store(engine)
    wasmtime.Instance(first, module, [])
    second = wasmtime.Store(engine)
    with pytest.raises(wasmtime.WasmtimeError, match=r"(?i)limit|pool|concurrent"):
        wasmtime.Instance(second, module, [])
    first.close()
    wasmtime.Instance(second, module, [])  # the slot came back


def test_the_pool_caps_a_table_at_its_element_count() -> None:
    config, _ = sandbox_module.engine_config(2)
    engine = wasmtime.Engine(config)
    elements = sandbox_module._TABLE_ELEMENTS
    store = wasmtime.Store(engine)
    wasmtime.Instance(store, wasmtime.Module(engine, f"(module (table {elements} funcref))"), [])
    store.close()
    store = wasmtime.Store(engine)
    with pytest.raises(wasmtime.WasmtimeError, match="pooling allocator"):
        above = wasmtime.Module(engine, f"(module (table {elements + 1} funcref))")
        wasmtime.Instance(store, above, [])


def test_the_fingerprint_covers_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    base = sandbox_module.engine_config(4)[1]
    assert sandbox_module.engine_config(4)[1] == base
    assert sandbox_module.engine_config(5)[1] != base  # pool settings are part of it
    monkeypatch.setitem(sandbox_module._CONFIG_SETTINGS, "cranelift_opt_level", "none")
    assert sandbox_module.engine_config(4)[1] != base


def test_a_config_setting_wasmtime_lacks_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sandbox_module._CONFIG_SETTINGS, "no_such_setting", True)
    with pytest.raises(UnsupportedWasmtimeError, match=r"wasmtime\.Config\.no_such_setting"):
        sandbox_module.engine_config(1)


def test_the_epoch_deadline_callback_continues_and_stops_with_an_error() -> None:
    """The C callback (result typed as a pointer) is called, NULL goes on, an error stops."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    calls: list[int] = []
    finalized: list[int] = []

    def on_deadline(_context: object, data: int | None, delta: object, kind: object) -> int | None:
        calls.append(data or 0)
        if len(calls) < 3:
            delta[0] = 1  # type: ignore[index]
            kind[0] = 0  # type: ignore[index]
            return None
        return private.new_error("stopped by the contract test")

    callback = private.DeadlineCallback(on_deadline)
    finalizer = private.Finalizer(lambda data: finalized.append(data or 0))
    store.set_epoch_deadline(1)
    private.set_epoch_deadline_callback(store, callback, 77, finalizer)
    module = wasmtime.Module(engine, '(module (func (export "_start") (loop br 0)))')
    instance = wasmtime.Instance(store, module, [])
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.002):
            engine.increment_epoch()

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        start = private.export_func(store, instance, b"_start")
        assert start is not None
        with pytest.raises(wasmtime.WasmtimeError, match="stopped by the contract test"):
            start(store)
    finally:
        stop.set()
        ticker.join(timeout=10)
    assert calls == [77, 77, 77], UPGRADE + "wasmtime_store_epoch_deadline_callback"
    store.close()
    assert finalized == [77]
