"""A pykka future that calls back when it is answered, so nobody has to block on it.

Theory of operation: ``CallbackFuture`` is a ``pykka.ThreadingFuture`` (``get`` works as
usual) whose ``set`` / ``set_exception`` also run the callbacks added with
``add_done_callback``, in the thread that answered it; a callback added after the answer
runs at once in the adding thread. The negotiator answers a remote job's stream with one:
the ingress's acceptance and the job's ``done`` future resolve it from their own
threads, and the network actor's trio thread wakes on the callback instead of parking a
worker thread in ``get``. A callback must not block; one that raises is logged and the
others still run (the answering thread, an actor's, must never fail because of it).
Importing this module imports neither trio nor libp2p.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

log = logging.getLogger(__name__)

Callback = Callable[["CallbackFuture"], None]


class CallbackFuture(pykka.ThreadingFuture[Any]):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._callbacks: list[Callback] | None = []  # None once answered

    def set(self, value: Any | None = None) -> None:
        super().set(value)
        self._answered()

    def set_exception(self, exc_info: Any | None = None) -> None:
        super().set_exception(exc_info)
        self._answered()

    def add_done_callback(self, callback: Callback) -> None:
        with self._lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        self._run(callback)

    def _answered(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks or [], None
        for callback in callbacks:
            self._run(callback)

    def _run(self, callback: Callback) -> None:
        try:
            callback(self)
        except Exception:
            log.exception("a future's done callback failed")
