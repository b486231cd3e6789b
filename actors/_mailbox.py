"""How Plasm actors talk: catalogue messages in a local `Delivery`.

Every message that travels between actors is a frozen dataclass of the protocol
catalogue, the same objects that cross the wire. A `Delivery` wraps one with the
things that only make sense inside this process: the future to answer, the future
that completes when a job finishes, the actor to tell next, a cancel token. Those
never cross the wire, so strict mode round-trips only the message (and each answer)
through the CBOR codec: a message that could not cross the wire fails in tests, not
in production.

Answers go through futures, never blocking asks between actors that could ask back:
the ingress only ever *tells* executors, and executors ask the signer, which asks
no one, so no cycle can deadlock.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka

from plasm.protocol.messages import Message, roundtrip

log = logging.getLogger(__name__)

_strict = os.environ.get("PLASM_STRICT_MESSAGES", "") == "1"


def set_strict(enabled: bool) -> None:
    """Round-trip every actor message and answer through the CBOR codec."""
    global _strict
    _strict = enabled


def is_strict() -> bool:
    return _strict


def checked(message: Any) -> Any:
    if _strict and isinstance(message, Message):
        return roundtrip(message)
    return message


@dataclass(slots=True)
class Delivery:
    message: Message
    reply: pykka.Future[Any] | None = None
    done: pykka.Future[Any] | None = None
    reply_to: pykka.ActorRef[Any] | None = None
    context: Any = None


class Latch(pykka.Future[Any]):
    """A one-shot pykka future on a single lock, for replies and `done` futures.

    ``pykka.ThreadingFuture`` waits on a Condition: ~6 µs to create, set and get, against
    ~1 µs for this, and a job makes two. ``get`` works any number of times from any thread;
    a second ``set``/``set_exception`` raises ``queue.Full``, as pykka's does. Get hooks
    (``Future.map`` and friends) work through the base class.
    """

    def __init__(self) -> None:
        super().__init__()
        self._ready = threading.Lock()
        self._ready.acquire()
        self._answered = False
        self._value: Any = None
        self._exc_info: Any = None

    def get(self, *, timeout: float | None = None) -> Any:
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if not self._answered or self._ready.locked():
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

    def set(self, value: Any | None = None) -> None:
        self._answer(value, None)

    def set_exception(self, exc_info: Any | None = None) -> None:
        info: Any = exc_info if exc_info is not None else sys.exc_info()
        if info[1] is None:  # (type, None, None): raise an instance of the type
            info = (info[0], info[0](), info[2])
        self._answer(None, info)

    def _answer(self, value: Any, exc_info: Any) -> None:
        if self._answered or self._get_hook is not None:
            raise queue.Full
        self._value, self._exc_info = value, exc_info
        self._answered = True
        self._ready.release()


def tell(ref: pykka.ActorRef[Any], message: Message, **extra: Any) -> None:
    ref.tell(Delivery(checked(message), **extra))


def ask(ref: pykka.ActorRef[Any], message: Message, timeout: float | None = None) -> Any:
    """Send and wait for the answer; raises what the handler raised."""
    reply: pykka.Future[Any] = Latch()
    ref.tell(Delivery(checked(message), reply=reply))
    return reply.get(timeout=timeout)


def ask_async(ref: pykka.ActorRef[Any], message: Message, **extra: Any) -> pykka.Future[Any]:
    reply: pykka.Future[Any] = Latch()
    ref.tell(Delivery(checked(message), reply=reply, **extra))
    return reply


class PlasmActor(pykka.ThreadingActor):
    """Dispatches each Delivery to the handler registered for its message type.

    A handler's return value answers the delivery's `reply` future; an exception is
    handed to that future (or logged) and the actor keeps running — pykka would stop
    an actor whose `tell` handler raised, and a node must keep serving.
    """

    handlers: ClassVar[dict[type[Message], str]] = {}

    @staticmethod
    def _create_actor_inbox() -> Any:
        # pykka's default inbox is a queue.Queue: a lock and three Conditions in Python.
        # The actor loop needs only put, get and empty, which the C SimpleQueue has; measured
        # on hello.wasm through the node, 15-30 µs less per job (four messages).
        return queue.SimpleQueue()

    def on_receive(self, delivery: Any) -> None:
        if not isinstance(delivery, Delivery):
            log.error("%s got a %s, not a Delivery; dropped", type(self).__name__, type(delivery))
            return
        method: Callable[[Delivery], Any] | None = None
        name = self.handlers.get(type(delivery.message))
        if name is not None:
            method = getattr(self, name)
        if method is None:
            error = TypeError(
                f"{type(self).__name__} does not handle {type(delivery.message).__name__}"
            )
            self._fail(delivery, error)
            return
        try:
            answer = method(delivery)
        except Exception as exc:
            self._fail(delivery, exc)
            return
        if delivery.reply is not None:
            delivery.reply.set(checked(answer))

    def _fail(self, delivery: Delivery, exc: BaseException) -> None:
        if delivery.reply is not None:
            delivery.reply.set_exception((type(exc), exc, exc.__traceback__))
        else:
            log.error(
                "%s failed on %s: %s",
                type(self).__name__,
                type(delivery.message).__name__,
                exc,
                exc_info=exc,
            )


class LateRef:
    """An actor ref filled in after construction, for actors that start in a cycle.

    The negotiator and discovery need the network actor, and the network actor routes
    inbound streams to them, so one of them must start first and learn the other later.
    """

    __slots__ = ("_ref",)

    def __init__(self) -> None:
        self._ref: pykka.ActorRef[Any] | None = None

    def set(self, ref: pykka.ActorRef[Any]) -> None:
        self._ref = ref

    def get(self) -> pykka.ActorRef[Any]:
        if self._ref is None:
            raise RuntimeError("the actor this refers to has not started yet")
        return self._ref

    @property
    def is_set(self) -> bool:
        return self._ref is not None
