"""How Plasm actors talk: catalogue messages in a local `Delivery`, and who answers for a job.

Theory of operation. Every message between actors is a frozen dataclass of the message
catalogue; a `Delivery` wraps one with what only makes sense inside this process, each in
a typed field: the `reply` future of an ask, the `job` it carries (a `JobTicket`), the
actor to tell next, the job's cancel token, and the results a stage hands the next one.
Strict mode (`PLASM_STRICT_MESSAGES=1`, always on in tests) round-trips each message and
each answer through the CBOR codec, so one that could not cross a process boundary fails
in tests.

Handlers are bound to message types with `@handles(MessageType)`; a handler gets the
message and its delivery, and its return value answers the delivery's `reply` — unless it
called `delivery.defer()` and answers the reply itself later (the journal answers after
its commit).

Supervision. A job's `done` future travels in its `JobTicket` with every step and is
completed exactly once. When a handler raises while it holds a job — or an actor stops
with a job still in its inbox — the job is not lost: the ticket's supervisor (the ingress)
is told `JobCrashed`, ends the job `failed` with code `internal_error` naming the actor,
and frees what the job held. An ask raises what its handler raised, and the actor keeps
running (pykka would stop an actor whose `tell` handler raised); an ask still waiting in
the inbox of an actor that stops fails at once with `ActorDeadError`, as pykka's own does.

Asks. A handler may block on another actor only along the ask graph in
docs/architecture.md (`ASK_GRAPH` below), which has no cycle: nothing an actor asks can
ask it back. In strict mode every blocking ask made from an actor's thread is recorded,
and the tests check the recorded edges against the graph.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import pykka

from plasm.actors import _faults
from plasm.actors._future import Future
from plasm.actors.messages import HandlerFailed, JobCrashed, JobFinished
from plasm.protocol.messages import JobExecuted, Message, roundtrip

if TYPE_CHECKING:
    from plasm.runtime.sandbox import CancelToken

log = logging.getLogger(__name__)

_strict = os.environ.get("PLASM_STRICT_MESSAGES", "") == "1"

M = TypeVar("M", bound=Message)
A = TypeVar("A", bound="PlasmActor")


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


# --- jobs in flight ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobTicket:
    """A job in flight: its id, its `done` future, and the actor that answers for it.

    `supervisor` is the ingress that admitted the job; an actor that fails while it holds
    the ticket tells it `JobCrashed`. Without a supervisor (or when it is gone) the
    failure completes `done` directly.
    """

    job_id: str
    done: Future[Any]
    supervisor: pykka.ActorRef[Any] | None = None


def internal_error(job_id: str, actor: str, message: str) -> JobFinished:
    """The final state of a job that a failing actor ended."""
    error = {
        "code": "internal_error",
        "message": f"{actor} failed while it held the job: {message}",
    }
    return JobFinished(
        job_id=job_id,
        status="failed",
        executor="",
        executed=None,
        envelope=None,
        error=orjson.dumps(error),
    )


@dataclass(slots=True)
class Delivery:
    message: Message
    reply: pykka.Future[Any] | None = None
    job: JobTicket | None = None
    reply_to: pykka.ActorRef[Any] | None = None
    cancel: CancelToken | None = None
    # What one stage of a job hands the next: the run, to the signer; the final state the
    # journal answers `done` with once it has committed.
    executed: JobExecuted | None = None
    finished: JobFinished | None = None
    deferred: bool = False

    def defer(self) -> pykka.Future[Any] | None:
        """Take the reply: the handler answers it itself, later (its return value is ignored)."""
        self.deferred = True
        return self.reply


# --- sending -----------------------------------------------------------------------


def tell(ref: pykka.ActorRef[Any], message: Message, **extra: Any) -> None:
    ref.tell(Delivery(checked(message), **extra))


def ask_async(ref: pykka.ActorRef[Any], message: Message, **extra: Any) -> Future[Any]:
    """Send and return the future of the answer; ActorDeadError in it if `ref` is gone."""
    reply: Future[Any] = Future()
    try:
        ref.tell(Delivery(checked(message), reply=reply, **extra))
    except pykka.ActorDeadError as exc:
        reply.set_exception((type(exc), exc, exc.__traceback__))
    return reply


def ask(ref: pykka.ActorRef[Any], message: Message, timeout: float | None = None) -> Any:
    """Send and wait for the answer; raises what the handler raised."""
    if _strict:
        _record_ask(ref)
    return ask_async(ref, message).get(timeout=timeout)


# Who may block on whom (caller -> callees), by actor class. Every edge points from a
# later-started actor to an earlier one, so there is no cycle; docs/architecture.md
# draws it. The shell (API threads, Node) may ask any actor: it is no actor.
ASK_GRAPH: dict[str, frozenset[str]] = {
    "IngressActor": frozenset({"JournalActor"}),  # a module by hash, on a cache miss
    "DiscoveryActor": frozenset(),
    "NegotiatorActor": frozenset({"JournalActor"}),  # a module by hash, on a cache miss
    "NetworkActor": frozenset(),
    "ExecutorActor": frozenset(),
    "SignerActor": frozenset(),
    "JournalActor": frozenset(),
}

_asks_lock = threading.Lock()
_asks_seen: set[tuple[str, str]] = set()


def _record_ask(ref: pykka.ActorRef[Any]) -> None:
    caller = threading.current_thread().name.rsplit("-", 1)[0]
    if caller in ASK_GRAPH:
        with _asks_lock:
            _asks_seen.add((caller, ref.actor_class.__name__))


def asks_seen(*, clear: bool = False) -> set[tuple[str, str]]:
    """The (caller, callee) actor classes of every blocking ask made from an actor (strict)."""
    with _asks_lock:
        seen = set(_asks_seen)
        if clear:
            _asks_seen.clear()
        return seen


# --- receiving ---------------------------------------------------------------------

Handler = Callable[[Any, Any, Delivery], Any]


def handles(*types: type[Message]) -> Callable[[Callable[[A, M, Delivery], Any]], Any]:
    """Bind an actor method to the message types it handles: `@handles(ExecuteJob)`."""

    def mark(method: Callable[[A, M, Delivery], Any]) -> Any:
        method.__plasm_handles__ = types  # type: ignore[attr-defined]
        return method

    return mark


class PlasmActor(pykka.ThreadingActor):
    """Dispatches each Delivery to the `@handles` method for its message type.

    Supervision (see the module docstring): a failing handler answers its asker with the
    exception, ends the job it held through the supervisor, and the actor keeps running.
    """

    _handler_table: dict[type[Message], Handler] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # By name, resolved on this class: a subclass that overrides a handler (without
        # repeating the decorator) gets its override called.
        names: dict[type[Message], str] = {}
        for klass in reversed(cls.__mro__):
            for name, attribute in vars(klass).items():
                for message_type in getattr(attribute, "__plasm_handles__", ()):
                    names[message_type] = name
        table: dict[type[Message], Handler] = {t: getattr(cls, n) for t, n in names.items()}
        cls._handler_table = table

    @staticmethod
    def _create_actor_inbox() -> Any:
        # pykka's default inbox is a queue.Queue: a lock and three Conditions in Python.
        # The actor loop needs only put, get and empty, which the C SimpleQueue has; measured
        # on hello.wasm through the node, 15-30 µs less per job (four messages).
        return queue.SimpleQueue()

    @staticmethod
    def _create_future() -> Future[Any]:
        return Future()

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_receive(self, delivery: Any) -> None:
        if not isinstance(delivery, Delivery):
            log.error("%s got a %s, not a Delivery; dropped", self.name, type(delivery))
            return
        message = delivery.message
        handler = self._handler_table.get(type(message))
        try:
            if handler is None or _faults.armed:
                answer = self.handle(delivery)
            else:  # the hot path, without a call more per message
                answer = handler(self, message, delivery)
        except Exception as exc:
            self._fail(delivery, exc)
            return
        if delivery.reply is not None and not delivery.deferred:
            delivery.reply.set(checked(answer))

    def handle(self, delivery: Delivery) -> Any:
        """Run the handler for `delivery`'s message (fault injection first, in tests)."""
        handler = self._handler_table.get(type(delivery.message))
        if handler is None:
            raise TypeError(f"{self.name} does not handle {type(delivery.message).__name__}")
        if _faults.armed:
            _faults.trip(self.name, type(delivery.message).__name__)
        return handler(self, delivery.message, delivery)

    def _fail(self, delivery: Delivery, exc: BaseException) -> None:
        kind = type(delivery.message).__name__
        if delivery.reply is not None:
            _fail_reply(delivery.reply, exc)
        job = self.job_of(delivery)
        tag = getattr(delivery.message, "tag", "")
        if delivery.reply_to is not None and tag:
            # A non-blocking asker waits for an answer by tag: tell it there will be none.
            failed = HandlerFailed(tag=tag, actor=self.name, message=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(pykka.ActorDeadError):
                tell(delivery.reply_to, failed)
        if job is None and delivery.reply is None:
            log.error("%s failed on %s: %s", self.name, kind, exc, exc_info=exc)
            return
        if job is not None:
            log.error(
                "%s failed on %s while it held job %s: %s",
                self.name,
                kind,
                job.job_id,
                exc,
                exc_info=exc,
                extra={"event": "actor_failed", "job_id": job.job_id, "actor": self.name},
            )
            self.end_job(job, f"{type(exc).__name__}: {exc}")

    def job_of(self, delivery: Delivery) -> JobTicket | None:
        """The job a delivery holds, ended if its handler fails (actors may know more)."""
        return delivery.job

    def end_job(self, job: JobTicket, reason: str) -> None:
        """Have the job's supervisor end it as failed (`internal_error`, naming this actor)."""
        crashed = JobCrashed(job_id=job.job_id, actor=self.name, message=reason)
        supervisor = job.supervisor
        if supervisor is not None and supervisor is not self.actor_ref:
            try:
                tell(supervisor, crashed, job=job)
                return
            except pykka.ActorDeadError:
                pass
        job.done.try_set(checked(internal_error(job.job_id, self.name, reason)))

    def _actor_loop_teardown(self) -> None:
        # pykka fails the asks left in a stopping actor's inbox with ActorDeadError; a
        # Delivery carries its own reply future and maybe a job, so do the same for them.
        # (tests/actors/test_pykka_contract.py checks pykka still has this hook.)
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()
            delivery = envelope.message
            if isinstance(delivery, Delivery):
                self._undelivered(delivery)
            elif envelope.reply_to is not None:
                dead = pykka.ActorDeadError(f"{self.actor_ref} stopped before handling it")
                if type(delivery).__name__ == "_ActorStop":
                    envelope.reply_to.set(None)
                else:
                    envelope.reply_to.set_exception((type(dead), dead, None))

    def _undelivered(self, delivery: Delivery) -> None:
        what = type(delivery.message).__name__
        dead = pykka.ActorDeadError(f"{self.name} stopped before it handled {what}")
        if delivery.reply is not None:
            _fail_reply(delivery.reply, dead)
        job = self.job_of(delivery)
        if job is not None:
            self.end_job(job, f"it stopped before it handled {what}")


def _fail_reply(reply: pykka.Future[Any], exc: BaseException) -> None:
    """Answer `reply` with `exc` unless it was answered already (a deferred reply may be)."""
    with contextlib.suppress(queue.Full):
        reply.set_exception((type(exc), exc, exc.__traceback__))


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
            raise pykka.ActorDeadError("the actor this refers to has not started yet")
        return self._ref

    @property
    def is_set(self) -> bool:
        return self._ref is not None
