"""Logging for the daemon: structured, on stderr.

Not on a TTY (systemd's journal, a file, a test harness): one JSON object per line
with `ts`, `level`, `logger`, `msg` and any `extra=` fields. On a TTY: rich's
readable handler. `format="auto"` picks by `isatty()`.

py-libp2p's records go through the same handler: at import it leaves its `libp2p`
logger with no handler and `propagate = False`, so Python's last-resort handler would
print its warnings raw. `setup_logging` makes that logger propagate, and `Libp2pLevels`
maps its levels onto the node's: py-libp2p's info lines (connection-manager chatter) and
the warnings it logs for ordinary peer behaviour or for dials plasm reports itself become
debug; its own debug output stays out (`LIBP2P_DEBUG` set in the environment leaves
py-libp2p's logging to py-libp2p).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


# py-libp2p messages (by prefix) that say nothing an operator must act on: a peer that
# closed or reset a DHT stream, a FIND_NODE for a key that is no peer ID, one peer of
# many that did not take a DHT record, and the inner steps of a failed dial, which plasm
# logs itself as one line with the cause.
LIBP2P_DEBUG_LINES: tuple[tuple[str, str], ...] = (  # (logger prefix, message prefix)
    ("libp2p.kad_dht", "Failed to read DHT message from stream"),
    ("libp2p.kad_dht", "FIND_NODE key is not a valid PeerId"),
    ("libp2p.kad_dht", "Failed to open stream to"),
    ("libp2p.kad_dht", "Failed to store value at peer"),
    ("libp2p.kad_dht", "Error sending ADD_PROVIDER to"),
    ("libp2p.kad_dht", "Failed to send ADD_PROVIDER to"),
    ("libp2p.transport.tcp", "Failed to open TCP stream"),
    ("libp2p.transport.tcp", "Unexpected error opening TCP stream"),
    ("libp2p.network", "failed to upgrade security for peer"),
    ("libp2p.protocol_muxer", "MultiselectClient handshake: read failed"),
)


class Libp2pLevels(logging.Filter):
    """Lowers py-libp2p's info and routine warnings to debug, then applies the node's level."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "libp2p" or record.name.startswith("libp2p."):
            if record.levelno <= logging.INFO or any(
                record.name.startswith(name) and str(record.msg).startswith(text)
                for name, text in LIBP2P_DEBUG_LINES
            ):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return record.levelno >= self.level
        return True


def adopt_libp2p_logging(level: int) -> None:
    """Route py-libp2p's records through the root handlers (see the module docstring)."""
    if os.environ.get("LIBP2P_DEBUG"):
        return
    import libp2p  # noqa: F401 - its import configures (and silences) its logger first

    libp2p_logger = logging.getLogger("libp2p")
    libp2p_logger.handlers.clear()
    libp2p_logger.propagate = True
    # its info lines only matter at debug, where they show (as debug); never its debug
    libp2p_logger.setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)


def setup_logging(fmt: str = "auto", level: str = "info") -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    use_rich = fmt == "rich" or (fmt == "auto" and sys.stderr.isatty())
    handler: logging.Handler
    if use_rich:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLinesFormatter())
    number = logging.getLevelName(level.upper())
    handler.addFilter(Libp2pLevels(number))
    root.addHandler(handler)
    root.setLevel(number)
    adopt_libp2p_logging(number)
