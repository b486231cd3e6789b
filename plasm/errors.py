"""The one base class every Plasm error derives from.

Each layer defines its own subclasses next to the code that raises them (for example
``plasm.runtime.errors``, ``plasm.protocol.errors``). This module is the only thing
of the shell that lower layers import, and it imports nothing.
"""

from __future__ import annotations


class PlasmError(Exception):
    """Base of every error Plasm raises on purpose; messages say what to do."""
