"""The WASI preview1 context of one job: argv, env, stdin bytes, capped in-memory output.

No directory is preopened, so the guest has no filesystem at all (path_open fails EBADF).

Output. wasmtime-py can capture stdout/stderr in memory only through ``stdout_custom``, a
Python callback that wasmtime invokes from one of its tokio worker threads: every guest write
then crosses to another OS thread and back, and that thread must take the GIL. Measured on
hello.wasm that was ~70% of the job (~530 µs against ~160 µs without output) and, with other
Python threads busy, a GIL convoy. So the sandbox shadows ``fd_write`` in its linker with
``fd_write`` below, which runs on the job's own thread and copies the guest's iovecs straight
into the job's ``OutputCapture`` (~240 µs per hello.wasm job in all). The capture of the job
running on a thread is found through a thread-local that ``capturing`` sets: a store never
leaves the thread that runs it, and host calls are synchronous.

Only ``fd_write`` to fds 1 and 2 is captured here; wasmtime keeps its own (empty) stdout and
stderr for every other call (``fd_fdstat_get`` and the like). A guest that renumbers or
closes fd 1 or 2 still has its writes to those numbers captured; writes to any other fd fail
with EBADF, as they would in wasmtime (there are no other writable descriptors).
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import wasmtime

from plasm.runtime import _wasmtime_private as private
from plasm.runtime.job import JobInput

# WASI preview1 errno values (wasi_snapshot_preview1 `errno`), not the host's.
WASI_EBADF = 8
WASI_EFAULT = 21
WASI_EFBIG = 22
WASI_EINVAL = 28
# POSIX writev's limit on iovecs per call; it also bounds the Python work one call can ask for.
IOV_MAX = 1024
_U32 = 0xFFFF_FFFF
_IOVEC = struct.Struct("<II")
_U32_LE = struct.Struct("<I")


class OutputCapture:
    """Collects one output stream up to ``cap`` bytes.

    A write that fits is taken whole. A write that crosses the cap is taken up to the cap (a
    short write, as POSIX allows) and marks the stream truncated; any write after that fails
    in the guest with EFBIG. So the captured bytes are exactly the first ``cap`` bytes written.
    """

    __slots__ = ("cap", "data", "truncated")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False

    def write_spans(self, base: int, spans: list[tuple[int, int]]) -> int:
        """Take the bytes of ``(offset, length)`` spans at address ``base``, in order.

        Returns how many bytes were taken, or -1 when the stream is already full and the
        write asks for more (EFBIG). Never reads more than fits.
        """
        room = self.cap - len(self.data)
        total = sum(length for _, length in spans)
        if total > room:
            self.truncated = True
            if room <= 0:
                return -1
        taken = 0
        for offset, length in spans:
            n = min(length, room - taken)
            if n > 0:
                self.data += ctypes.string_at(base + offset, n)
                taken += n
        return taken


_current = threading.local()


@contextmanager
def capturing(stdout: OutputCapture, stderr: OutputCapture) -> Iterator[None]:
    """Route this thread's guest writes to fds 1 and 2 into these captures."""
    _current.streams = (None, stdout, stderr)
    try:
        yield
    finally:
        _current.streams = None


def fd_write(caller: wasmtime.Caller, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
    """WASI ``fd_write(fd, iovs, iovs_len, nwritten) -> errno`` into the thread's captures.

    Never raises: wasmtime-py keeps a host exception in a process-wide global until the
    calling thread re-raises it, which is not safe with several executors.
    """
    streams = getattr(_current, "streams", None)
    if streams is None or fd not in (1, 2):
        return WASI_EBADF
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        return WASI_EFAULT
    size = memory.data_len(caller)
    iovs, count, nwritten = iovs & _U32, iovs_len & _U32, nwritten & _U32
    if count > IOV_MAX:
        return WASI_EINVAL
    if iovs + _IOVEC.size * count > size or nwritten + _U32_LE.size > size:
        return WASI_EFAULT
    base = ctypes.addressof(memory.data_ptr(caller).contents)
    spans = list(_IOVEC.iter_unpack(ctypes.string_at(base + iovs, _IOVEC.size * count)))
    for offset, length in spans:
        if offset + length > size:
            return WASI_EFAULT
    taken = streams[fd].write_spans(base, spans)
    if taken < 0:
        return WASI_EFBIG
    ctypes.memmove(base + nwritten, _U32_LE.pack(taken), _U32_LE.size)
    return 0


def define_fd_write(linker: wasmtime.Linker) -> None:
    """Shadow WASI's ``fd_write`` with ``fd_write`` (after ``define_wasi``, with shadowing on)."""
    i32 = wasmtime.ValType.i32()
    linker.define_func(
        "wasi_snapshot_preview1",
        "fd_write",
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        fd_write,
        access_caller=True,
    )


def wasi_config(job_input: JobInput) -> wasmtime.WasiConfig:
    """A fresh WasiConfig for one job (it is consumed by ``Store.set_wasi``).

    Its stdout and stderr are wasmtime's empty defaults: guest writes go to ``fd_write``.
    """
    config = wasmtime.WasiConfig()
    config.argv = [job_input.module_name, *job_input.args]
    if job_input.env:
        config.env = job_input.env
    private.set_stdin_bytes(config, job_input.stdin)  # wasmtime-py 50 has no setter
    return config
