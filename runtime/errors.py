"""Errors of the sandbox layer (``plasm.runtime``).

Guest behaviour never raises: a trap, an exit, a limit hit or an invalid module become an
``Outcome``. These exceptions are for callers that ask for something the sandbox cannot do.
"""

from __future__ import annotations

from plasm.errors import PlasmError


class SandboxError(PlasmError):
    """The sandbox itself failed or was misused (closed, module from another sandbox)."""


class InvalidModuleError(SandboxError):
    """The bytes are not a runnable WASI command module: not wasm, invalid wasm, no ``_start``
    function, or imports the sandbox does not provide. Fix the module, not the sandbox."""


class UnsupportedWasmtimeError(SandboxError):
    """The installed wasmtime lacks a (private) API the sandbox relies on, or changed its
    shape (runtime/_wasmtime_private.py names which); install the supported version."""


class CompileLimitError(SandboxError):
    """Compiling the module went over one of this node's compile limits (wall time
    ``executor.max_compile_ms``, CPU seconds or ``executor.max_compile_memory_bytes``), or
    crashed its worker. The module may be valid, but this node will not compile it: the
    job ends ``compile_limit`` and the module's sha256 is remembered, so it is not tried
    again. Send a smaller module, or raise the limit on your own node."""


class CompileCancelledError(SandboxError):
    """The caller's CancelToken was cancelled while it waited for the module to compile.
    Nothing is remembered about the module; the job ends ``cancelled``."""


class CompileDeadlineError(SandboxError):
    """The caller's own deadline (the job's ``timeout_ms``, which counts the compile) passed
    before the module compiled. Unlike ``CompileLimitError`` this says nothing about the
    module: the same module with a longer timeout may compile. The job ends ``timeout``."""
