"""A hostile guest calling the filesystem functions directly (runtime/_wasi.py).

Each module makes a list of raw WASI calls and writes each call's errno as one byte to
stdout: huge lengths, pointers off the end of memory, giant offsets. Every call must come
back with an errno (never a crash, a trap or a host allocation), and the sandbox must keep
serving afterwards.
"""

from __future__ import annotations

import pytest
import wasmtime

from plasm.runtime import _vfs as v
from plasm.runtime._wasi import _HOST
from plasm.runtime.job import JobInput, Limits, OutcomeKind
from plasm.runtime.sandbox import Sandbox

IMPORTS = {
    "path_open": "i32 i32 i32 i32 i32 i64 i64 i32 i32",
    "fd_read": "i32 i32 i32 i32",
    "fd_write": "i32 i32 i32 i32",
    "fd_pwrite": "i32 i32 i32 i64 i32",
    "fd_seek": "i32 i64 i32 i32",
    "fd_readdir": "i32 i32 i32 i64 i32",
    "fd_filestat_set_size": "i32 i64",
    "fd_allocate": "i32 i64 i64",
    "fd_prestat_dir_name": "i32 i32 i32",
    "fd_renumber": "i32 i32",
    "fd_close": "i32",
    "path_create_directory": "i32 i32 i32",
    "path_filestat_get": "i32 i32 i32 i32 i32",
    "fd_fdstat_get": "i32 i32",
}
PATH_AT, FD_AT, IOV_AT = 100, 200, 300
# rights: fd_read | fd_seek | fd_tell | fd_write | fd_filestat_set_size | fd_allocate
RW = (1 << 1) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 22) | (1 << 8)
OPENED = f"(i32.load (i32.const {FD_AT}))"


def open_output(name: str = "output/f") -> str:
    """path_open of ``name`` (at PATH_AT) under fd 3, created, its fd stored at FD_AT."""
    return (f"(call $path_open (i32.const 3) (i32.const 0) (i32.const {PATH_AT}) "
            f"(i32.const {len(name)}) (i32.const 1) (i64.const {RW}) (i64.const 0) "
            f"(i32.const 0) (i32.const {FD_AT}))")


def module(calls: list[str], path: str = "output/f", iovecs: bytes = b"") -> bytes:
    imports = "\n".join(
        f'(import "wasi_snapshot_preview1" "{name}" (func ${name} (param {params}) (result i32)))'
        for name, params in IMPORTS.items()
    )
    body = "\n".join(
        f"(i32.store8 (i32.const {1000 + i}) {call})" for i, call in enumerate(calls)
    )
    iov = "".join(f"\\{b:02x}" for b in iovecs)
    return wasmtime.wat2wasm(f"""
    (module
      {imports}
      (memory (export "memory") 1)
      (data (i32.const {PATH_AT}) "{path}")
      (data (i32.const {IOV_AT}) "{iov}")
      (data (i32.const 900) "\\e8\\03\\00\\00\\{len(calls):02x}\\00\\00\\00")
      (func (export "_start")
        {body}
        (drop (call $fd_write (i32.const 1) (i32.const 900) (i32.const 1) (i32.const 950)))))
    """)


def iovec(offset: int, length: int) -> bytes:
    return offset.to_bytes(4, "little") + length.to_bytes(4, "little")


def errnos(sandbox: Sandbox, wasm: bytes, limits: Limits | None = None) -> list[int]:
    outcome = sandbox.run(wasm, JobInput(files=(("/input/a", b"abc"),)), limits or Limits())
    assert outcome.kind is OutcomeKind.OK, outcome
    return list(outcome.stdout)


BAD = 0xFFFF_FFF0  # an address near 4 GiB, far past a one-page memory


@pytest.mark.parametrize(("call", "errno"), [
    (f"(call $path_open (i32.const 3) (i32.const 0) (i32.const {PATH_AT}) (i32.const -1) "
     f"(i32.const 1) (i64.const {RW}) (i64.const 0) (i32.const 0) (i32.const {FD_AT}))",
     v.ENAMETOOLONG),
    (f"(call $path_open (i32.const 3) (i32.const 0) (i32.const {BAD}) (i32.const 8) "
     f"(i32.const 1) (i64.const {RW}) (i64.const 0) (i32.const 0) (i32.const {FD_AT}))",
     v.EFAULT),
    (f"(call $path_open (i32.const 3) (i32.const 0) (i32.const {PATH_AT}) (i32.const 8) "
     f"(i32.const 1) (i64.const {RW}) (i64.const 0) (i32.const 0) (i32.const {BAD}))",
     v.EFAULT),
    (f"(call $path_open (i32.const 3) (i32.const 0) (i32.const 65530) (i32.const 4000) "
     f"(i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const {FD_AT}))",
     v.EFAULT),
    (f"(call $path_create_directory (i32.const 3) (i32.const {BAD}) (i32.const 4))", v.EFAULT),
    (f"(call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const {PATH_AT}) "
     f"(i32.const 8) (i32.const 65500))", v.EFAULT),
    ("(call $fd_prestat_dir_name (i32.const 3) (i32.const -4) (i32.const 1))", v.EFAULT),
    ("(call $fd_prestat_dir_name (i32.const 3) (i32.const 0) (i32.const 0))", v.ENAMETOOLONG),
    ("(call $fd_prestat_dir_name (i32.const 0) (i32.const 0) (i32.const 1))", v.EBADF),
    (f"(call $fd_readdir (i32.const 3) (i32.const 0) (i32.const -1) (i64.const 0) "
     f"(i32.const {FD_AT}))", v.EFAULT),
    (f"(call $fd_readdir (i32.const 3) (i32.const 0) (i32.const 100) (i64.const -1) "
     f"(i32.const {FD_AT}))", 0),  # a cookie past the end: nothing more
    ("(call $fd_fdstat_get (i32.const 3) (i32.const 65530))", v.EFAULT),
    ("(call $fd_renumber (i32.const 3) (i32.const 77))", v.EBADF),
    ("(call $fd_close (i32.const 99))", v.EBADF),
    ("(call $fd_read (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))", v.EBADF),
])
def test_bad_arguments_get_an_errno(sandbox: Sandbox, call: str, errno: int) -> None:
    assert errnos(sandbox, module([call])) == [errno]


def test_file_io_with_hostile_lengths_gets_an_errno_and_allocates_nothing(
    sandbox: Sandbox,
) -> None:
    calls = [
        open_output(),
        # fd_write: an iovec of 4 GiB - 1, one off the end, too many iovecs
        f"(call $fd_write {OPENED} (i32.const {IOV_AT}) (i32.const 1) (i32.const 0))",
        f"(call $fd_write {OPENED} (i32.const {IOV_AT + 8}) (i32.const 1) (i32.const 0))",
        f"(call $fd_write {OPENED} (i32.const {IOV_AT}) (i32.const 100000) (i32.const 0))",
        f"(call $fd_read {OPENED} (i32.const {IOV_AT}) (i32.const 1) (i32.const 0))",
        # a seek to 2**62 then a one-byte write: EFBIG, no 4 EiB buffer
        f"(call $fd_seek {OPENED} (i64.const 4611686018427387904) (i32.const 0) (i32.const 0))",
        f"(call $fd_write {OPENED} (i32.const {IOV_AT + 16}) (i32.const 1) (i32.const 0))",
        f"(call $fd_pwrite {OPENED} (i32.const {IOV_AT + 16}) (i32.const 1) (i64.const -1) "
        "(i32.const 0))",
        f"(call $fd_seek {OPENED} (i64.const -1) (i32.const 0) (i32.const 0))",
        f"(call $fd_seek {OPENED} (i64.const 0) (i32.const 7) (i32.const 0))",
        f"(call $fd_seek {OPENED} (i64.const 0) (i32.const 0) (i32.const {BAD}))",
        f"(call $fd_filestat_set_size {OPENED} (i64.const 4611686018427387904))",
        f"(call $fd_allocate {OPENED} (i64.const 1) (i64.const -1))",
        f"(call $fd_allocate {OPENED} (i64.const 4611686018427387904) (i64.const 1))",
        f"(call $fd_write {OPENED} (i32.const {IOV_AT + 16}) (i32.const 1) (i32.const {BAD}))",
    ]
    iovecs = iovec(0, 0xFFFF_FFFF) + iovec(65_000, 1000) + iovec(0, 1)
    assert errnos(sandbox, module(calls, iovecs=iovecs)) == [
        0, v.EFAULT, v.EFAULT, v.EINVAL, v.EFAULT, 0, v.EFBIG, v.EINVAL, v.EINVAL, v.EINVAL,
        v.EFAULT, v.EFBIG, v.EFBIG, v.EFBIG, v.EFAULT,
    ]


@pytest.mark.parametrize("path", ["input/a", "input/new", "new", "input/../new"])
def test_opening_outside_output_for_writing_is_erofs(sandbox: Sandbox, path: str) -> None:
    assert errnos(sandbox, module([open_output(path)], path=path)) == [v.EROFS]


def test_every_override_has_the_signature_wasmtime_gives_it() -> None:
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    names = {"i": "i32", "I": "i64"}
    for name, (params, _) in _HOST.items():
        func = linker.get(store, "wasi_snapshot_preview1", name)
        assert isinstance(func, wasmtime.Func), name
        ty = func.type(store)
        assert [str(p) for p in ty.params] == [names[p] for p in params], name
        assert [str(r) for r in ty.results] == ["i32"], name


def test_every_descriptor_clock_and_random_call_of_wasi_is_ours() -> None:
    # wasi_snapshot_preview1's calls that take a descriptor or a path (its witx), and the
    # clocks and random_get of the determinism profile.
    spec = {
        "fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get",
        "fd_fdstat_set_flags", "fd_fdstat_set_rights", "fd_filestat_get",
        "fd_filestat_set_size", "fd_filestat_set_times", "fd_pread", "fd_prestat_get",
        "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir", "fd_renumber", "fd_seek",
        "fd_sync", "fd_tell", "fd_write", "path_create_directory", "path_filestat_get",
        "path_filestat_set_times", "path_link", "path_open", "path_readlink",
        "path_remove_directory", "path_rename", "path_symlink", "path_unlink_file",
        "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
        "clock_time_get", "clock_res_get", "random_get",
    }
    assert set(_HOST) == spec


def test_an_empty_iovec_before_data_is_skipped_not_taken_for_the_end(sandbox: Sandbox) -> None:
    # musl's stdio writes and reads with [its buffer (often empty), the caller's buffer].
    calls = [
        open_output(),
        f"(call $fd_write {OPENED} (i32.const {IOV_AT}) (i32.const 2) (i32.const {FD_AT + 4}))",
        f"(i32.load (i32.const {FD_AT + 4}))",  # bytes written: 3
        f"(call $fd_seek {OPENED} (i64.const 0) (i32.const 0) (i32.const {FD_AT + 8}))",
        f"(call $fd_read {OPENED} (i32.const {IOV_AT + 16}) (i32.const 2) (i32.const {FD_AT + 4}))",
        f"(i32.load (i32.const {FD_AT + 4}))",  # bytes read: 3
    ]
    iovecs = iovec(0, 0) + iovec(PATH_AT, 3) + iovec(0, 0) + iovec(500, 3)
    outcome = sandbox.run(module(calls, iovecs=iovecs), JobInput(), Limits())
    assert list(outcome.stdout) == [0, 0, 3, 0, 0, 3]
    assert outcome.output_files == (("/output/f", b"out"),)
