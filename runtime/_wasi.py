"""The WASI preview1 context of one job: argv, env, stdin bytes, capped in-memory output.

No directory is preopened, so the guest has no filesystem at all (path_open fails EBADF).
"""

from __future__ import annotations

import ctypes
import errno

import wasmtime
from wasmtime import _ffi as ffi

from plasm.runtime.job import JobInput


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

    def write(self, chunk: bytes) -> int | None:
        room = self.cap - len(self.data)
        if len(chunk) <= room:
            self.data += chunk
            return None  # wasmtime-py reads None as "all of it"
        self.truncated = True
        if room > 0:
            self.data += chunk[:room]
            return room
        return -errno.EFBIG


def _set_stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    # wasmtime-py 50 has no setter for this; the C API copies the bytes into a new vec that
    # the config then owns (FINDINGS.md: no leak over 20k jobs).
    vec = ffi.wasm_byte_vec_t()
    source = ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ffi.wasm_byte_t))
    ffi.wasm_byte_vec_new(ctypes.byref(vec), len(data), source)
    ffi.wasi_config_set_stdin_bytes(config.ptr(), ctypes.byref(vec))


def wasi_config(
    job_input: JobInput, stdout: OutputCapture, stderr: OutputCapture
) -> wasmtime.WasiConfig:
    """A fresh WasiConfig for one job (it is consumed by ``Store.set_wasi``)."""
    config = wasmtime.WasiConfig()
    config.argv = [job_input.module_name, *job_input.args]
    if job_input.env:
        config.env = job_input.env
    _set_stdin_bytes(config, job_input.stdin)
    config.stdout_custom = stdout.write
    config.stderr_custom = stderr.write
    return config
