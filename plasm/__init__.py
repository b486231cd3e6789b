"""Plasm: run WebAssembly jobs for one another and hand back signed receipts.

The top-level package is the application shell; the layers below it live in
``plasm.actors``, ``plasm.protocol`` and ``plasm.runtime`` (top-level folders of the
repository, mapped by pyproject.toml). Keep this module import-light: every layer
imports it.
"""

from plasm._version import __version__
from plasm.errors import PlasmError

__all__ = ["PlasmError", "__version__"]
