"""Inbound streams: one request frame in, hand it to an actor, one answer frame out.

Theory of operation: py-libp2p ends the whole host when a stream handler raises, so
``InboundServer.handler_for`` wraps each protocol's handler: whatever goes wrong resets
that stream and is logged. Per stream: take a slot of the peer's concurrency budget
(none left: answer ``Error(busy)``); read one frame under the read deadline and the
protocol's cap (garbage, oversize or stalled: answer an ``Error`` frame where the stream
still works, then reset); tell the protocol's handler actor an ``InboundRequest`` in a
``Delivery`` whose ``reply`` future (``plasm.actors._future.Future``) wakes this stream's
task through its done callback when the actor answers it: no thread per request, and
the trio thread never blocks. The answer is a ``PeerResponse`` or a future that will hold
one (a job), which wakes the task the same way; any other pykka future is waited on by a
worker thread (a ``CapacityLimiter`` bounds those threads). All under one overall answer
deadline. The peer is the one Noise authenticated: ``stream.muxed_conn.peer_id``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pykka
import trio
from libp2p.abc import INetStream

from plasm.actors._future import Future
from plasm.actors._mailbox import tell
from plasm.actors.messages import InboundRequest, PeerResponse
from plasm.actors.network._streams import (
    READ_CHUNK,
    FrameTooLarge,
    StreamEnded,
    frame_cap,
    read_frame,
    reset_quietly,
    write_frame,
)
from plasm.protocol.errors import FrameError
from plasm.protocol.messages import Error, encode_message

log = logging.getLogger(__name__)

REFUSAL_GRACE_S = 1.0

StreamHandler = Callable[[INetStream], Awaitable[None]]
RejectHook = Callable[[str, str], None]  # (peer id, why)


class HandlerFailed(Exception):
    """The handler actor raised, died, or answered something that is not a PeerResponse."""


class InboundServer:
    def __init__(
        self,
        handlers: dict[str, pykka.ActorRef[Any]],
        frame_caps: dict[str, int],
        *,
        max_streams_per_peer: int,
        read_deadline: float,
        answer_deadline: float,
        worker_threads: int,
        on_reject: RejectHook,
    ) -> None:
        self._handlers = dict(handlers)
        self._caps = frame_caps
        self._max_streams = max_streams_per_peer
        self._read_deadline = read_deadline
        self._answer_deadline = answer_deadline
        self._threads = trio.CapacityLimiter(worker_threads)
        self._on_reject = on_reject
        self._open: dict[str, int] = {}

    @property
    def protocols(self) -> list[str]:
        return list(self._handlers)

    def handler_for(self, protocol: str) -> StreamHandler:
        async def handle(stream: INetStream) -> None:
            try:
                await self._serve(protocol, stream)
            except Exception as exc:  # never let a stream's failure end the host
                log.warning(
                    "inbound %s stream failed: %s",
                    protocol,
                    exc,
                    extra={"event": "inbound_stream_failed"},
                )
                await reset_quietly(stream)

        return handle

    async def _serve(self, protocol: str, stream: INetStream) -> None:
        peer = str(stream.muxed_conn.peer_id)
        if self._open.get(peer, 0) >= self._max_streams:
            self._on_reject(peer, f"more than {self._max_streams} concurrent streams")
            await self._refuse(stream, "busy", "too many concurrent streams from you; retry later")
            return
        self._open[peer] = self._open.get(peer, 0) + 1
        try:
            await self._serve_one(protocol, peer, stream)
        finally:
            self._open[peer] -= 1
            if self._open[peer] <= 0:
                del self._open[peer]

    async def _serve_one(self, protocol: str, peer: str, stream: INetStream) -> None:
        cap = frame_cap(protocol, self._caps)
        try:
            with trio.fail_after(self._read_deadline):
                payload = await read_frame(stream, cap)
        except trio.TooSlowError:
            await self._refuse(stream, "timeout", "no whole request frame in time")
            return
        except FrameTooLarge as exc:
            await self._refuse(stream, "too_large", str(exc))
            return
        except FrameError as exc:
            await self._refuse(stream, "malformed", str(exc))
            return
        except StreamEnded:
            await reset_quietly(stream)
            return
        try:
            with trio.fail_after(self._answer_deadline):
                answer = await self._ask(protocol, peer, payload)
        except trio.TooSlowError:
            await self._refuse(stream, "timeout", "the answer took too long")
            return
        except HandlerFailed as exc:
            log.error("the %s handler failed: %s", protocol, exc, extra={"event": "handler_failed"})
            await self._refuse(stream, "internal", f"the {protocol} handler failed")
            return
        with trio.fail_after(self._read_deadline):
            await write_frame(stream, answer, cap)
            await stream.close()

    async def _ask(self, protocol: str, peer: str, payload: bytes) -> bytes:
        reply: Future[Any] = Future()
        try:
            tell(self._handlers[protocol], InboundRequest(peer, protocol, payload), reply=reply)
        except pykka.ActorDeadError as exc:
            raise HandlerFailed(f"the handler actor is not running: {exc}") from exc
        answer = await _answered(reply)
        if isinstance(answer, Future):  # a job: its result comes later
            answer = await _answered(answer)
        elif isinstance(answer, pykka.Future):  # a future that only a blocked get resolves
            answer = await self._wait(answer)
        if not isinstance(answer, PeerResponse):
            raise HandlerFailed(
                f"the handler answered a {type(answer).__name__}, not a PeerResponse"
            )
        return answer.payload

    async def _wait(self, future: pykka.Future[Any]) -> Any:
        # An abandoned worker thread still ends: it waits at most the answer deadline.
        get = functools.partial(_get, future, self._answer_deadline)
        return await trio.to_thread.run_sync(  # type: ignore[call-arg]  # stubs predate it
            get, limiter=self._threads, abandon_on_cancel=True
        )

    async def _refuse(self, stream: INetStream, code: str, message: str) -> None:
        """Answer an ``Error`` frame if the stream still takes one, then reset it.

        Before the reset, whatever the peer still sends is read and dropped for up to
        ``REFUSAL_GRACE_S``: a peer refused before it finished writing its request would
        otherwise see its write fail and never read the Error.
        """
        with trio.move_on_after(REFUSAL_GRACE_S):
            try:
                await write_frame(stream, encode_message(Error(code, message)), 2**16)
                await stream.close()
                while await stream.read(READ_CHUNK):
                    pass
            except Exception:  # the stream is already broken; the reset below is enough
                pass
        await reset_quietly(stream)


async def _answered(future: Future[Any]) -> Any:
    """What ``future`` holds, once its callback woke this task (no worker thread)."""
    token, answered = trio.lowlevel.current_trio_token(), trio.Event()

    def wake(_: Future[Any]) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the network stopped meanwhile
            token.run_sync_soon(answered.set)

    future.add_done_callback(wake)
    await answered.wait()
    return _get(future, 0)


def _get(future: pykka.Future[Any], timeout: float) -> Any:
    try:
        return future.get(timeout=timeout)
    except pykka.Timeout as exc:
        raise trio.TooSlowError("the handler did not answer in time") from exc
    except Exception as exc:
        raise HandlerFailed(f"{type(exc).__name__}: {exc}") from exc
