"""CancelToken: a thread-safe flag a job's runner polls (see ``_deadline``)."""

from __future__ import annotations

import threading


class CancelToken:
    """Cancel one job from any thread; the job stops within about one epoch tick and its
    outcome is ``cancelled``. Cancelling before the job starts makes it end at once."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
