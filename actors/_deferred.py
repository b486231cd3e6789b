"""Messages an actor sends itself later: deadlines and periodic work.

An actor must never block its own thread waiting. `Timers.after` tells the actor a
message after a delay (a daemon `threading.Timer`, keyed so a timer can be replaced or
cancelled); the actor cancels them all when it stops, and a tell that still races with
the stop is dropped quietly.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import pykka

from plasm.actors._mailbox import tell
from plasm.protocol.messages import Message

log = logging.getLogger(__name__)


def tell_quietly(ref: pykka.ActorRef[Any], message: Message) -> None:
    """`tell`, ignoring an actor that stopped meanwhile (nobody waits for this any more)."""
    with contextlib.suppress(pykka.ActorDeadError):
        tell(ref, message)


class Timers:
    """One actor's pending delayed messages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Timer] = {}

    def after(self, key: str, delay_s: float, ref: pykka.ActorRef[Any], message: Message) -> None:
        """Tell `ref` `message` in `delay_s` seconds, replacing any timer under `key`."""
        timer = threading.Timer(max(0.0, delay_s), self._fire, args=(key, ref, message))
        timer.daemon = True
        with self._lock:
            previous = self._pending.pop(key, None)
            self._pending[key] = timer
        if previous is not None:
            previous.cancel()
        timer.start()

    def cancel(self, key: str) -> None:
        with self._lock:
            timer = self._pending.pop(key, None)
        if timer is not None:
            timer.cancel()

    def cancel_all(self) -> None:
        with self._lock:
            timers, self._pending = list(self._pending.values()), {}
        for timer in timers:
            timer.cancel()

    def _fire(self, key: str, ref: pykka.ActorRef[Any], message: Message) -> None:
        with self._lock:
            if self._pending.get(key) is threading.current_thread():
                del self._pending[key]
        tell_quietly(ref, message)
