"""The network actor: the node's libp2p host, behind catalogue messages.

Theory of operation: the actor owns a thread that runs ``trio.run`` with the host
(``_runner.TrioThread``; the host and everything around it is ``_node.P2PNode``).
``on_start`` starts that thread and waits, bounded, until every listen address listens;
if it cannot, the actor stays up but answers every message with the ``NetworkStartError``
(``_start.start_network`` raises it at once), so the daemon reports why instead of an
``ActorDeadError``. Each message handler schedules the work as a trio task and returns
at once; the task answers the delivery's ``reply`` future, or tells ``reply_to`` (a
non-blocking asker such as the negotiator), so one slow peer never holds up the actor.
``on_stop`` cancels the trio run and joins the thread.

Importing this module imports trio and libp2p (~1.5 s): only ``start_network`` imports
it, so ``plasmd execute-job`` and ``plasmd verify`` never pay for them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pykka

from plasm.actors._mailbox import Delivery, PlasmActor, checked, handles, tell
from plasm.actors.blob_grants import BlobGrants
from plasm.actors.messages import (
    BlobFetchFailed,
    Dial,
    FetchBlob,
    FindProviders,
    GetNetworkInfo,
    GetRecord,
    NetworkInfo,
    PeerEvent,
    PeerFailure,
    PeerRequest,
    Ping,
    Provide,
    PutRecord,
)
from plasm.actors.network._errors import NetworkError, NetworkStartError, NetworkStoppedError
from plasm.actors.network._node import P2PNode, P2PNodeSettings
from plasm.actors.network._runner import TrioThread
from plasm.actors.network._streams import DEFAULT_FRAME_CAPS
from plasm.protocol.messages import BlobRef, Message

__all__ = ["NetworkActor"]

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[Message | None]]


class NetworkActor(PlasmActor):

    def __init__(
        self,
        seed: bytes,
        *,
        listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",),
        bootstrap: tuple[str, ...] = (),
        mdns: bool = False,
        max_connections: int = 64,
        handlers: Mapping[str, pykka.ActorRef[Any]] | None = None,
        events: pykka.ActorRef[Any] | None = None,
        max_streams_per_peer: int = 8,
        frame_caps: Mapping[str, int] | None = None,
        read_deadline_s: float = 10.0,
        answer_deadline_s: float = 330.0,
        dial_timeout_s: float = 10.0,
        ping_timeout_s: float = 10.0,
        refresh_interval_s: float = 60.0,
        start_timeout_s: float = 15.0,
        worker_threads: int = 64,
        blob_grants: BlobGrants | None = None,
    ) -> None:
        super().__init__()
        if max_streams_per_peer < 1:
            raise ValueError("max_streams_per_peer must be at least 1")
        self._events = events
        self._ping_timeout = ping_timeout_s
        self._start_timeout = start_timeout_s
        self._start_error: NetworkStartError | None = None
        self._node = P2PNode(
            P2PNodeSettings(
                seed=bytes(seed),
                listen=tuple(listen),
                bootstrap=tuple(bootstrap),
                mdns=mdns,
                max_connections=max_connections,
                handlers=dict(handlers or {}),
                frame_caps={**DEFAULT_FRAME_CAPS, **(frame_caps or {})},
                max_streams_per_peer=max_streams_per_peer,
                read_deadline=read_deadline_s,
                answer_deadline=answer_deadline_s,
                worker_threads=worker_threads,
                dial_timeout=dial_timeout_s,
                refresh_interval=refresh_interval_s,
                blob_grants=blob_grants,
            ),
            self._emit,
        )
        self._runner = TrioThread("plasm-network", self._setup, teardown=self._node.close)

    # --- lifecycle ---------------------------------------------------------------------

    async def _setup(self, nursery: Any) -> None:
        await nursery.start(self._node.run)

    def on_start(self) -> None:
        try:
            self._runner.start(self._start_timeout)
        except NetworkStartError as exc:
            log.error("%s", exc, extra={"event": "network_start_failed"})
            self._start_error = exc

    def on_stop(self) -> None:
        self._runner.stop(timeout=5.0)

    def on_failure(self, *args: Any) -> None:
        self._runner.stop(timeout=5.0)

    def _emit(self, event: PeerEvent) -> None:
        if self._events is None:
            return
        try:
            tell(self._events, event)
        except pykka.ActorDeadError:
            log.debug("dropped %s event: the events actor has stopped", event.kind)

    # --- handlers ----------------------------------------------------------------------

    @handles(PeerRequest)
    def _on_peer_request(self, request: PeerRequest, delivery: Delivery) -> None:

        async def work() -> Message:
            answer = await self._node.request(
                request.peer_id, request.protocol, request.payload, request.timeout_ms
            )
            return dataclasses.replace(answer, tag=request.tag)

        try:
            self._later(delivery, work)
        except NetworkError as exc:
            refusal = PeerFailure(request.peer_id, "refused", str(exc), tag=request.tag)
            self._settle_now(delivery, refusal)

    @handles(FetchBlob)
    def _on_fetch_blob(self, request: FetchBlob, delivery: Delivery) -> None:
        blob = BlobRef(request.sha256, request.size)

        async def work() -> Message:
            answer = await self._node.fetch_blob(request.peer_id, blob, request.timeout_ms)
            return dataclasses.replace(answer, tag=request.tag)

        try:
            self._later(delivery, work)
        except NetworkError as exc:
            refusal = BlobFetchFailed(
                request.peer_id, request.sha256, "refused", str(exc), request.tag
            )
            self._settle_now(delivery, refusal)

    @handles(Dial)
    def _on_dial(self, message: Dial, delivery: Delivery) -> None:
        self._later(delivery, lambda: self._node.dial(message.multiaddr))

    @handles(Ping)
    def _on_ping(self, message: Ping, delivery: Delivery) -> None:
        self._later(delivery, lambda: self._node.ping(message.peer_id, self._ping_timeout))

    @handles(Provide)
    def _on_provide(self, message: Provide, delivery: Delivery) -> None:
        self._later(delivery, lambda: self._node.provide(message.key))

    @handles(FindProviders)
    def _on_find_providers(self, m: FindProviders, delivery: Delivery) -> None:
        self._later(delivery, lambda: self._node.find_providers(m.key, m.limit, m.timeout_ms))

    @handles(PutRecord)
    def _on_put_record(self, message: PutRecord, delivery: Delivery) -> None:
        self._later(delivery, lambda: self._node.put_record(message.key, message.value))

    @handles(GetRecord)
    def _on_get_record(self, message: GetRecord, delivery: Delivery) -> None:
        self._later(delivery, lambda: self._node.get_record(message.key, message.timeout_ms))

    @handles(GetNetworkInfo)
    def _on_get_network_info(self, message: GetNetworkInfo, delivery: Delivery) -> NetworkInfo:
        self._check_running()
        info: NetworkInfo = self._runner.call(self._node.network_info)
        return info

    # --- answering from the trio thread ----------------------------------------------------

    def _check_running(self) -> None:
        if self._start_error is not None:
            raise self._start_error
        if not self._runner.running:
            raise NetworkStoppedError("the network is not running")

    def _later(self, delivery: Delivery, work: Work) -> None:
        """Run ``work`` in trio; its result answers ``delivery`` when it is done.

        The ``reply`` future is taken out of the delivery, so the base class does not
        answer it with this handler's ``None``.
        """
        self._check_running()
        reply, delivery.reply = delivery.reply, None
        try:
            self._runner.spawn(self._settle, work, reply, delivery.reply_to, delivery.message)
        except NetworkError:
            delivery.reply = reply
            raise

    async def _settle(
        self,
        work: Work,
        reply: pykka.Future[Any] | None,
        reply_to: pykka.ActorRef[Any] | None,
        message: Message,
    ) -> None:
        try:
            answer = await work()
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, NetworkError)
                else NetworkError(f"{type(message).__name__} failed: {exc}")
            )
            if reply is not None:
                reply.set_exception((type(error), error, error.__traceback__))
            else:
                log.warning("%s failed: %s", type(message).__name__, error)
            return
        self._settle_now(Delivery(message, reply=reply, reply_to=reply_to), answer)

    @staticmethod
    def _settle_now(delivery: Delivery, answer: Message | None) -> None:
        if delivery.reply is not None:
            delivery.reply.set(checked(answer))
            delivery.reply = None
        elif delivery.reply_to is not None and answer is not None:
            try:
                tell(delivery.reply_to, answer)
            except pykka.ActorDeadError:
                log.debug("dropped the answer to %s: the asker stopped", type(delivery.message))

