"""One frame each way on a libp2p stream, under a size cap and a deadline.

Theory of operation: every Plasm stream carries one request frame and one answer frame
(``plasm.protocol.framing``: 4-byte big-endian length, then the payload). py-libp2p has
no read deadlines and ``stream.read(n)`` returns whatever arrived, so ``read_frame`` feeds
a ``FrameDecoder`` until it yields one frame; the caller wraps it in ``trio.fail_after``.
An oversize length is refused from the header alone. ``exchange`` is the requester side:
connect if needed, open a stream, propose the protocol and write the request in one go
(``plasm.protocol.multistream``: pipelined selection saves two round trips per stream), check
the peer's protocol answer, read the answer frame, and turn every way it can fail into
an ``ExchangeFailed`` whose ``reason`` is one of ``PEER_FAILURES``. A connection whose
muxer limits concurrent negotiations (QUIC in py-libp2p) takes py-libp2p's own path.
"""

from __future__ import annotations

import contextlib

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from plasm.protocol.errors import FrameError, MultistreamError, ProtocolUnsupported
from plasm.protocol.framing import FrameDecoder, encode_frame
from plasm.protocol.multistream import SelectReply, proposal
from plasm.protocol.p2p_messages import PROTOCOL_JOB, PROTOCOL_MODULE

BIG_FRAME_CAP = 16 * 2**20
SMALL_FRAME_CAP = 64 * 2**10
READ_CHUNK = 64 * 2**10
DEFAULT_FRAME_CAPS = {PROTOCOL_JOB: BIG_FRAME_CAP, PROTOCOL_MODULE: BIG_FRAME_CAP}


def frame_cap(protocol: str, caps: dict[str, int]) -> int:
    return caps.get(protocol, SMALL_FRAME_CAP)


class FrameTooLarge(FrameError):
    """The peer announced a frame above the cap."""


class StreamEnded(Exception):
    """The stream closed or reset before a whole frame arrived."""


class ExchangeFailed(Exception):
    """An outbound exchange failed; ``reason`` is one of ``PEER_FAILURES``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def read_chunk(stream: INetStream) -> bytes:
    """What the stream has next; ``StreamEnded`` when it closed or reset instead."""
    try:
        chunk = await stream.read(READ_CHUNK)
    except Exception as exc:  # py-libp2p raises StreamEOF, StreamReset, ... unrelated
        raise StreamEnded(f"the stream ended mid-frame ({type(exc).__name__})") from exc
    if not chunk:
        raise StreamEnded("the stream closed before a whole frame arrived")
    return bytes(chunk)


async def read_frame(stream: INetStream, max_size: int, already: bytes = b"") -> bytes:
    """The next frame's payload; ``FrameError`` if oversize/empty, ``StreamEnded`` at EOF.

    ``already``: bytes of the frame that were read from the stream before.
    """
    decoder = FrameDecoder(max_size)
    header = b""
    while True:
        chunk = already or await read_chunk(stream)
        already = b""
        header = (header + chunk[:4])[:4] if len(header) < 4 else header
        try:
            frames = decoder.feed(chunk)
        except FrameError as exc:
            if len(header) == 4 and int.from_bytes(header, "big") > max_size:
                raise FrameTooLarge(str(exc)) from exc
            raise
        if frames:
            if len(frames) > 1 or decoder.pending:
                raise FrameError("the peer sent more than one frame; one is expected")
            return frames[0]


async def write_frame(stream: INetStream, payload: bytes, max_size: int) -> None:
    await stream.write(encode_frame(payload, max_size))


async def reset_quietly(stream: INetStream) -> None:
    # the stream may already be gone; then there is nothing more to do
    with trio.CancelScope(shield=True), trio.move_on_after(1.0), contextlib.suppress(Exception):
        await stream.reset()


async def exchange(host: IHost, peer: ID, protocol: str, payload: bytes, cap: int) -> bytes:
    """Send ``payload`` on a new stream to ``peer`` and return the answer frame's payload.

    The caller bounds the whole call with ``trio.fail_after`` (a ``TooSlowError`` is its
    ``timeout``); the peer must already be connected or have addresses in the peerstore.
    """
    try:
        frame = encode_frame(payload, cap)
    except FrameError as exc:
        raise ExchangeFailed("too_large", f"the request does not fit the frame cap: {exc}") from exc
    stream, already = await _open(host, peer, protocol, frame)
    try:
        if already is None:
            await stream.write(frame)
            already = b""
        answer = await read_frame(stream, cap, already)
    except FrameError as exc:
        await reset_quietly(stream)
        reason = "too_large" if isinstance(exc, FrameTooLarge) else "malformed"
        raise ExchangeFailed(reason, f"{peer} answered with a bad frame: {exc}") from exc
    except StreamEnded as exc:
        await reset_quietly(stream)
        raise ExchangeFailed("reset", f"{peer} closed the stream: {exc}") from exc
    except trio.Cancelled:
        await reset_quietly(stream)
        raise
    except Exception as exc:  # a write on a dead connection, a muxer error
        await reset_quietly(stream)
        raise ExchangeFailed("reset", f"the exchange with {peer} broke: {exc}") from exc
    # the answer is in hand; a failed close changes nothing
    with trio.CancelScope(shield=True), trio.move_on_after(1.0), contextlib.suppress(Exception):
        await stream.close()
    return answer


async def _open(
    host: IHost, peer: ID, protocol: str, frame: bytes
) -> tuple[INetStream, bytes | None]:
    """A stream to ``peer`` speaking ``protocol``, and what followed the protocol answer.

    Pipelined: the request ``frame`` is already written, and the bytes returned are the
    start of the answer. On py-libp2p's own path (QUIC) the frame is not written yet and
    the bytes are None.
    """
    try:
        if _limits_negotiations(host, peer):
            stream = await host.new_stream(peer, [TProtocol(protocol)])
            return stream, None
        stream = await host.get_network().new_stream(peer)
    except Exception as exc:
        raise ExchangeFailed(
            "unreachable", f"could not open a {protocol} stream to {peer}: {exc}"
        ) from exc
    try:
        await stream.write(proposal(protocol) + frame)
        reply = SelectReply(protocol)
        already = None
        while already is None:
            already = reply.feed(await read_chunk(stream))
    except trio.Cancelled:
        await reset_quietly(stream)
        raise
    except ProtocolUnsupported as exc:
        await reset_quietly(stream)
        raise ExchangeFailed("unreachable", f"{peer} has no {protocol} handler: {exc}") from exc
    except MultistreamError as exc:
        await reset_quietly(stream)
        raise ExchangeFailed("malformed", f"{peer} broke protocol negotiation: {exc}") from exc
    except Exception as exc:  # the stream ended or broke before the protocol was agreed
        await reset_quietly(stream)
        raise ExchangeFailed(
            "unreachable", f"could not open a {protocol} stream to {peer}: {exc}"
        ) from exc
    stream.set_protocol(TProtocol(protocol))
    return stream, already


def _limits_negotiations(host: IHost, peer: ID) -> bool:
    connections = host.get_network().get_connections(peer)
    return any(
        getattr(getattr(c, "muxed_conn", None), "_negotiation_semaphore", None) is not None
        for c in connections
    )
