"""The sandbox's own fd_write (runtime/_wasi.py): every errno path, seen from a guest.

Each module below makes one kind of fd_write call (`count` times), reports the last
call's `nwritten` as 4 raw bytes on stderr and exits with the last call's errno.
"""

from __future__ import annotations

import struct

import pytest
import wasmtime

from plasm.runtime._wasi import IOV_MAX, WASI_EBADF, WASI_EFAULT, WASI_EFBIG, WASI_EINVAL
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from plasm.runtime.sandbox import Sandbox

TEXT = b"abcdefgh"  # at address 0
IOVS_AT = 16_384  # room for IOV_MAX iovecs below 64 KiB
NWRITTEN_AT = 1000


def _bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def fd_write_module(
    *,
    fd: int = 1,
    iovecs: list[tuple[int, int]],
    iovs: int = IOVS_AT,
    iovs_len: int | None = None,
    nwritten: int = NWRITTEN_AT,
    count: int = 1,
) -> bytes:
    table = b"".join(struct.pack("<II", offset, length) for offset, length in iovecs)
    calls = "\n".join(
        f"(local.set $e (call $w (i32.const {fd}) (i32.const {iovs}) "
        f"(i32.const {len(iovecs) if iovs_len is None else iovs_len}) (i32.const {nwritten})))"
        for _ in range(count)
    )
    return wasmtime.wat2wasm(f"""
    (module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "{_bytes(TEXT)}")
      (data (i32.const {IOVS_AT}) "{_bytes(table)}")
      (data (i32.const 2000) "{_bytes(struct.pack("<II", NWRITTEN_AT, 4))}")
      (func (export "_start")
        (local $e i32)
        {calls}
        (drop (call $w (i32.const 2) (i32.const 2000) (i32.const 1) (i32.const 2100)))
        (call $exit (local.get $e))))
    """)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    with Sandbox(epoch_tick_ms=2) as box:
        yield box


def run(sandbox: Sandbox, module: bytes, max_output: int = 1 << 20) -> tuple[int, Outcome]:
    outcome = sandbox.run(
        module, JobInput(module_name="w.wasm"), Limits(max_output_bytes=max_output)
    )
    errno = outcome.exit_code if outcome.kind is OutcomeKind.EXIT else 0
    assert outcome.kind in (OutcomeKind.OK, OutcomeKind.EXIT), outcome
    return errno, outcome


def nwritten_of(outcome: Outcome) -> int:
    return struct.unpack("<I", outcome.stderr[-4:])[0]


def test_iovecs_are_written_in_order_and_empty_ones_skipped(sandbox: Sandbox) -> None:
    errno, outcome = run(sandbox, fd_write_module(iovecs=[(0, 3), (5, 0), (6, 2), (3, 1)]))
    assert errno == 0
    assert outcome.stdout == b"abcghd"
    assert nwritten_of(outcome) == 6


def test_fd2_is_stderr(sandbox: Sandbox) -> None:
    errno, outcome = run(sandbox, fd_write_module(fd=2, iovecs=[(0, 2)]))
    assert errno == 0
    assert outcome.stdout == b""
    assert outcome.stderr[:2] == b"ab"


@pytest.mark.parametrize("fd", [0, 3, 4, -1])
def test_other_descriptors_are_ebadf(sandbox: Sandbox, fd: int) -> None:
    errno, outcome = run(sandbox, fd_write_module(fd=fd, iovecs=[(0, 2)]))
    assert errno == WASI_EBADF
    assert outcome.stdout == b""


@pytest.mark.parametrize(
    "case",
    [
        {"iovecs": [(0, 2), (65_530, 10)]},  # a buffer that runs off the end of memory
        {"iovecs": [(0xFFFF_FFF0, 4)]},  # an address past 4 GiB - 16
        {"iovecs": [(0, 2)], "iovs": 65_534},  # the iovec table itself off the end
        {"iovecs": [(0, 2)], "iovs": -8},  # a "negative" (huge unsigned) table address
        {"iovecs": [(0, 2)], "nwritten": 65_534},  # nowhere to put nwritten
    ],
)
def test_out_of_bounds_pointers_are_efault_and_nothing_is_taken(
    sandbox: Sandbox, case: dict[str, object]
) -> None:
    errno, outcome = run(sandbox, fd_write_module(**case))  # type: ignore[arg-type]
    assert errno == WASI_EFAULT
    assert outcome.stdout == b""


def test_more_iovecs_than_iov_max_is_einval(sandbox: Sandbox) -> None:
    errno, outcome = run(sandbox, fd_write_module(iovecs=[(0, 1)], iovs_len=IOV_MAX + 1))
    assert errno == WASI_EINVAL
    assert outcome.stdout == b""


def test_iov_max_iovecs_are_fine(sandbox: Sandbox) -> None:
    errno, outcome = run(sandbox, fd_write_module(iovecs=[(0, 1)] * IOV_MAX))
    assert errno == 0
    assert outcome.stdout == b"a" * IOV_MAX


def test_a_write_across_the_cap_is_short_then_the_next_is_efbig(sandbox: Sandbox) -> None:
    module = fd_write_module(iovecs=[(0, 3), (3, 3)])
    errno, outcome = run(sandbox, module, max_output=4)
    assert (errno, outcome.stdout, nwritten_of(outcome)) == (0, b"abcd", 4)
    assert outcome.stdout_truncated
    errno, outcome = run(sandbox, fd_write_module(iovecs=[(0, 3), (3, 3)], count=2), max_output=4)
    assert errno == WASI_EFBIG
    assert outcome.stdout == b"abcd"


def test_a_module_without_exported_memory_gets_efault(sandbox: Sandbox) -> None:
    module = wasmtime.wat2wasm(f"""
    (module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory 1)
      (func (export "_start")
        (if (i32.ne (call $w (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))
                    (i32.const {WASI_EFAULT}))
          (then unreachable))))
    """)
    # wasmtime's own WASI calls (proc_exit too) trap without the export; ours says EFAULT.
    outcome = sandbox.run(module, JobInput(module_name="w.wasm"), Limits())
    assert outcome.kind is OutcomeKind.OK, outcome
