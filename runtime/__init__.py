"""The sandbox layer: runs WebAssembly (WASI preview1) jobs under limits.

Importing this package is cheap: it re-exports the plain job types and errors only. The
wasmtime-backed ``Sandbox`` lives in ``plasm.runtime.sandbox``; import it where jobs run.
"""

from __future__ import annotations

from plasm.runtime.errors import InvalidModuleError, SandboxError
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind

__all__ = [
    "InvalidModuleError",
    "JobInput",
    "Limits",
    "Outcome",
    "OutcomeKind",
    "SandboxError",
]
