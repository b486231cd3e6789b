"""Compiling: validation of modules and the memory and disk caches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from plasm.runtime.errors import InvalidModuleError, SandboxError
from plasm.runtime.job import JobInput, Limits, OutcomeKind
from plasm.runtime.sandbox import Sandbox

Example = Callable[[str], bytes]


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def test_compile_rejects_garbage(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidModuleError):
        sandbox.compile(b"\x00asm garbage")


def test_compile_rejects_module_without_start(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidModuleError, match="_start"):
        sandbox.compile(wat('(module (memory (export "memory") 1))'))


def test_compile_rejects_start_with_parameters(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidModuleError, match="_start"):
        sandbox.compile(wat('(module (func (export "_start") (param i32)))'))


def test_compile_rejects_unsatisfiable_import(sandbox: Sandbox) -> None:
    module = wat('(module (import "env" "launch" (func)) (func (export "_start")))')
    with pytest.raises(InvalidModuleError, match="imports"):
        sandbox.compile(module)


def test_run_reports_unsatisfiable_import_as_invalid_module(sandbox: Sandbox) -> None:
    module = wat('(module (import "env" "launch" (func)) (func (export "_start")))')
    outcome = sandbox.run(module, JobInput(), Limits())
    assert outcome.kind is OutcomeKind.INVALID_MODULE


def test_compiled_module_carries_hash_and_size(sandbox: Sandbox, example: Example) -> None:
    import hashlib

    wasm = example("hello")
    module = sandbox.compile(wasm)
    assert module.sha256 == hashlib.sha256(wasm).hexdigest()
    assert module.size == len(wasm)


def test_compile_twice_returns_the_cached_module(sandbox: Sandbox, example: Example) -> None:
    assert sandbox.compile(example("hello")) is sandbox.compile(example("hello"))


def test_module_of_another_sandbox_is_refused(sandbox: Sandbox, example: Example) -> None:
    with Sandbox() as other:
        foreign = other.compile(example("hello"))
    with pytest.raises(SandboxError, match="another Sandbox"):
        sandbox.run(foreign, JobInput(), Limits())


def test_closed_sandbox_refuses_to_run(example: Example) -> None:
    box = Sandbox()
    module = box.compile(example("hello"))
    box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.run(module, JobInput(), Limits())


def test_engine_identity_is_reported(sandbox: Sandbox) -> None:
    assert sandbox.engine_name == "wasmtime"
    assert sandbox.engine_version == "50.0.1"
    assert len(sandbox.fingerprint) == 32


def test_disk_cache_writes_one_file_per_module(tmp_path: Path, example: Example) -> None:
    with Sandbox(cache_dir=tmp_path) as box:
        module = box.compile(example("hello"))
        assert not module.loaded_from_disk
        expected = tmp_path / box.fingerprint / f"{module.sha256}.cwasm"
    assert expected.is_file()


def test_new_sandbox_loads_module_from_disk_cache(tmp_path: Path, example: Example) -> None:
    with Sandbox(cache_dir=tmp_path) as first:
        first.compile(example("hello"))
    with Sandbox(cache_dir=tmp_path) as second:
        module = second.compile(example("hello"))
        outcome = second.run(module, JobInput(stdin=b"abc"), Limits())
    assert module.loaded_from_disk
    assert outcome.stdout == b"cba\n"


def test_corrupt_cache_file_is_recompiled_and_rewritten(tmp_path: Path, example: Example) -> None:
    with Sandbox(cache_dir=tmp_path) as first:
        path = tmp_path / first.fingerprint / f"{first.compile(example('hello')).sha256}.cwasm"
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with Sandbox(cache_dir=tmp_path) as second:
        module = second.compile(example("hello"))
        outcome = second.run(module, JobInput(), Limits())
    assert not module.loaded_from_disk
    assert outcome.stdout == b"Hello, World!\n"
    assert path.read_bytes() != bytes(damaged)
    with Sandbox(cache_dir=tmp_path) as third:
        assert third.compile(example("hello")).loaded_from_disk


def test_truncated_cache_file_is_recompiled(tmp_path: Path, example: Example) -> None:
    with Sandbox(cache_dir=tmp_path) as first:
        path = tmp_path / first.fingerprint / f"{first.compile(example('hello')).sha256}.cwasm"
    path.write_bytes(path.read_bytes()[:10])
    with Sandbox(cache_dir=tmp_path) as second:
        module = second.compile(example("hello"))
    assert not module.loaded_from_disk
