"""The one future type of the actor layer: replies, a job's `done`, and answers that wait.

Theory of operation. ``Future`` is a ``pykka.Future`` (so ``get``, ``map`` and
``pykka.get_all`` work as pykka users expect) built on a single lock: it is created
locked and released once, when it is answered, so ``get`` is one lock acquisition and a
job's two futures cost ~1 µs each instead of ~6 µs for ``pykka.ThreadingFuture`` (which
waits on a Condition). ``add_done_callback`` runs a callback once the future is answered,
in the thread that answered it (or at once, in the adding thread, when it already is):
that is how a waiter that must not block — the network actor's trio thread, an actor
that wants the answer as a message — learns of it. A callback must not block; one that
raises is logged and the others still run, since the answering thread is an actor's.

A future is answered exactly once: a second ``set``/``set_exception`` raises
``queue.Full``, as pykka's does. ``try_set``/``try_set_exception`` answer only a future
nobody answered yet, for supervision paths that may race with a normal answer.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import pykka

log = logging.getLogger(__name__)

T = TypeVar("T")


class Future(pykka.Future[T], Generic[T]):
    def __init__(self) -> None:
        super().__init__()
        self._ready = threading.Lock()
        self._ready.acquire()
        self._guard = threading.Lock()
        self._answered = False
        self._value: Any = None
        self._exc_info: Any = None
        # Made on the first add_done_callback; `_answered` says whether it may still grow.
        self._callbacks: list[Callable[[Future[T]], None]] | None = None

    # -- reading --------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the future holds its answer (a value or an exception)."""
        return self._answered and not self._ready.locked()

    def get(self, *, timeout: float | None = None) -> T:
        if self._get_hook is not None:  # Future.map and friends go through pykka's base
            return super().get(timeout=timeout)
        if not self.done:
            if timeout is None:
                acquired = self._ready.acquire()
            elif timeout <= 0:
                acquired = self._ready.acquire(blocking=False)
            else:
                acquired = self._ready.acquire(timeout=timeout)
            if not acquired:
                raise pykka.Timeout(f"{timeout} seconds")
            self._ready.release()
        if self._exc_info is not None:
            _, exc_value, exc_traceback = self._exc_info
            raise exc_value.with_traceback(exc_traceback)
        return self._value

    def exception(self) -> BaseException | None:
        """The exception an answered future holds, else None (never blocks)."""
        if not self.done or self._exc_info is None:
            return None
        return self._exc_info[1]

    # -- answering ------------------------------------------------------------------

    def set(self, value: Any | None = None) -> None:
        if not self._answer(value, None):
            raise queue.Full

    def set_exception(self, exc_info: Any | None = None) -> None:
        if not self._answer(None, _exc_info(exc_info)):
            raise queue.Full

    def try_set(self, value: Any | None = None) -> bool:
        """Answer unless already answered; True when this call answered it."""
        return self._answer(value, None)

    def try_set_exception(self, exc: BaseException) -> bool:
        return self._answer(None, (type(exc), exc, exc.__traceback__))

    def add_done_callback(self, callback: Callable[[Future[T]], None]) -> None:
        with self._guard:
            if not self._answered:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        _run(callback, self)

    def _answer(self, value: Any, exc_info: Any) -> bool:
        with self._guard:
            if self._answered or self._get_hook is not None:
                return False
            self._value, self._exc_info = value, exc_info
            self._answered = True
            callbacks, self._callbacks = self._callbacks, None
        self._ready.release()
        if callbacks:
            for callback in callbacks:
                _run(callback, self)
        return True


def _exc_info(exc_info: Any | None) -> Any:
    info: Any = exc_info if exc_info is not None else sys.exc_info()
    if info[1] is None:  # (type, None, None): raise an instance of the type
        info = (info[0], info[0](), info[2])
    return info


def _run(callback: Callable[[Future[Any]], None], future: Future[Any]) -> None:
    try:
        callback(future)
    except Exception:
        log.exception("a future's done callback failed")


__all__ = ["Future"]
