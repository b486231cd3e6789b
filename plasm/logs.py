"""Logging for the daemon: structured, on stderr.

Not on a TTY (systemd's journal, a file, a test harness): one JSON object per line
with `ts`, `level`, `logger`, `msg` and any `extra=` fields. On a TTY: rich's
readable handler. `format="auto"` picks by `isatty()`.
"""

from __future__ import annotations

import logging
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
    root.addHandler(handler)
    root.setLevel(level.upper())
