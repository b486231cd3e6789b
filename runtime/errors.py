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
