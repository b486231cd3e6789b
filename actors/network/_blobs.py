"""``/plasm/blob/1.0.0`` on the trio thread: serving granted blobs, fetching peers' blobs.

Theory of operation (``plasm.protocol.blob_transfer`` has the wire format). Serving: read
one ``BlobRequest`` frame under the read deadline, look the blob up in the node's
``BlobGrants`` for the peer Noise authenticated (nothing granted: ``Error(not_found)``),
then write the range as ``BlobChunk`` frames of ``CHUNK_SIZE`` and close; each write is
bounded by the stall deadline, so a peer that stops reading frees the stream. At most
``MAX_BLOB_STREAMS_PER_PEER`` streams per peer at once (``Error(busy)`` past it).

Fetching (``BlobFetcher``): one stream for the whole blob; every read is bounded by the
stall deadline and the whole by the caller's timeout; the blob counts only once the holder
closed the stream after the last chunk; every chunk goes through a
``ChunkAssembler``, so a chunk out of place, past the promised size or a whole that does
not hash to the sha256 fails the fetch (``BlobFetchFailed`` with that reason) and no byte
of it is returned. Concurrent fetches of the same sha256 share one transfer: later callers
wait for the first one's result.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import trio
from libp2p.abc import IHost, INetStream
from libp2p.peer.id import ID

from plasm.actors.blob_grants import BlobGrants
from plasm.actors.messages import BlobFetched, BlobFetchFailed
from plasm.actors.network._streams import (
    ExchangeFailed,
    StreamEnded,
    _open,
    read_frame,
    reset_quietly,
    write_frame,
)
from plasm.protocol.blob_transfer import (
    CHUNK_FRAME_CAP,
    PROTOCOL_BLOB,
    REQUEST_FRAME_CAP,
    BlobChunk,
    BlobRequest,
    BlobTransferError,
    ChunkAssembler,
    chunk_plan,
)
from plasm.protocol.errors import DecodeError, FrameError
from plasm.protocol.framing import FrameDecoder, encode_frame
from plasm.protocol.messages import BlobRef, Error, decode_message, encode_message

log = logging.getLogger(__name__)

MAX_BLOB_STREAMS_PER_PEER = 4
BLOB_READ = 2**20


class BlobServer:
    def __init__(self, grants: BlobGrants | None, read_deadline: float) -> None:
        self._grants = grants
        self._deadline = read_deadline
        self._open: dict[str, int] = {}

    async def handle(self, stream: INetStream) -> None:
        try:
            await self._serve(stream)
        except Exception as exc:  # never let a stream's failure end the host
            log.info("blob stream failed: %s", exc, extra={"event": "blob_stream_failed"})
            await reset_quietly(stream)

    async def _serve(self, stream: INetStream) -> None:
        peer = str(stream.muxed_conn.peer_id)
        if self._open.get(peer, 0) >= MAX_BLOB_STREAMS_PER_PEER:
            await self._error(stream, "busy", "too many blob streams from you; retry later")
            return
        self._open[peer] = self._open.get(peer, 0) + 1
        try:
            await self._serve_one(peer, stream)
        finally:
            self._open[peer] -= 1
            if self._open[peer] <= 0:
                del self._open[peer]

    async def _serve_one(self, peer: str, stream: INetStream) -> None:
        try:
            with trio.fail_after(self._deadline):
                payload = await read_frame(stream, REQUEST_FRAME_CAP)
            request = decode_message(
                payload, max_size=REQUEST_FRAME_CAP, allowed=frozenset({BlobRequest})
            )
        except (trio.TooSlowError, FrameError, DecodeError) as exc:
            await self._error(stream, "malformed", f"expected one blob_request frame: {exc}")
            return
        assert isinstance(request, BlobRequest)
        data = self._grants.lookup(peer, request.sha256) if self._grants is not None else None
        if data is None:
            log.info(
                "refused blob %s to %s: not granted",
                request.sha256,
                peer,
                extra={"event": "blob_refused", "peer_id": peer},
            )
            await self._error(stream, "not_found", f"no blob {request.sha256} for you here")
            return
        if request.offset + request.length > len(data):
            await self._error(
                stream, "malformed", f"the range is past the blob's {len(data)} bytes"
            )
            return
        view = memoryview(data)
        for at, length in chunk_plan(request.offset, request.length):
            chunk = BlobChunk(request.sha256, at, bytes(view[at : at + length]))
            with trio.fail_after(self._deadline):
                await write_frame(stream, encode_message(chunk), CHUNK_FRAME_CAP)
        with trio.fail_after(self._deadline):
            await stream.close()

    async def _error(self, stream: INetStream, code: str, message: str) -> None:
        with trio.move_on_after(1.0), contextlib.suppress(Exception):
            await write_frame(stream, encode_message(Error(code, message)), REQUEST_FRAME_CAP)
            await stream.close()
            return
        await reset_quietly(stream)


class _FetchFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class _InFlight:
    done: trio.Event = field(default_factory=trio.Event)
    result: BlobFetched | BlobFetchFailed | None = None


class BlobFetcher:
    def __init__(self, stall_deadline: float) -> None:
        self._stall = stall_deadline
        self._in_flight: dict[str, _InFlight] = {}

    async def fetch(
        self, host: IHost, peer_id: str, peer: ID, blob: BlobRef, timeout_s: float
    ) -> BlobFetched | BlobFetchFailed:
        """The blob from ``peer``, checked; a ``BlobFetchFailed`` for every way it fails."""
        shared = self._in_flight.get(blob.sha256)
        if shared is not None:
            with trio.move_on_after(timeout_s):
                await shared.done.wait()
            result = shared.result
            if result is None:
                return BlobFetchFailed(
                    peer_id, blob.sha256, "timeout", "the shared fetch did not end in time"
                )
            if isinstance(result, BlobFetched):
                return BlobFetched(peer_id, blob.sha256, result.data)
            return result
        mine = self._in_flight[blob.sha256] = _InFlight()
        try:
            mine.result = await self._fetch(host, peer_id, peer, blob, timeout_s)
        finally:
            if mine.result is None:
                mine.result = BlobFetchFailed(
                    peer_id, blob.sha256, "reset", "the fetch was cancelled"
                )
            del self._in_flight[blob.sha256]
            mine.done.set()
        return mine.result

    async def _fetch(
        self, host: IHost, peer_id: str, peer: ID, blob: BlobRef, timeout_s: float
    ) -> BlobFetched | BlobFetchFailed:
        try:
            with trio.fail_after(timeout_s):
                data = await self._transfer(host, peer, blob)
        except trio.TooSlowError:
            reason, message = "timeout", f"blob {blob.sha256} did not arrive from {peer_id} in time"
        except ExchangeFailed as exc:
            reason, message = exc.reason, exc.message
        except _FetchFailed as exc:
            reason, message = exc.reason, exc.message
        except BlobTransferError as exc:
            reason, message = exc.reason, f"{peer_id} sent bad bytes: {exc}"
        else:
            return BlobFetched(peer_id, blob.sha256, data)
        log.warning(
            "fetching blob %s from %s failed: %s",
            blob.sha256,
            peer_id,
            message,
            extra={"event": "blob_fetch_failed", "peer_id": peer_id, "reason": reason},
        )
        return BlobFetchFailed(peer_id, blob.sha256, reason, message)

    async def _transfer(self, host: IHost, peer: ID, blob: BlobRef) -> bytes:
        assembler = ChunkAssembler(blob)
        if blob.size == 0:
            return assembler.finish()
        request = encode_frame(
            encode_message(BlobRequest(blob.sha256, 0, blob.size)), REQUEST_FRAME_CAP
        )
        stream, already = await _open(host, peer, PROTOCOL_BLOB, request)
        try:
            if already is None:
                await stream.write(request)
                already = b""
            decoder = FrameDecoder(CHUNK_FRAME_CAP)
            pending = already
            while not assembler.complete:
                if not pending:
                    with trio.fail_after(self._stall):
                        pending = await _read(stream)
                for frame in decoder.feed(pending):
                    _take(assembler, frame)
                pending = b""
            await self._until_end(stream, decoder, assembler)
            return assembler.finish()
        except trio.TooSlowError as exc:
            raise _FetchFailed("timeout", f"the blob stream stalled for {self._stall:g} s") from exc
        except FrameError as exc:
            raise _FetchFailed("malformed", f"bad frame on the blob stream: {exc}") from exc
        except StreamEnded as exc:
            raise _FetchFailed("reset", str(exc)) from exc
        finally:
            await reset_quietly(stream)


    async def _until_end(
        self, stream: INetStream, decoder: FrameDecoder, assembler: ChunkAssembler
    ) -> None:
        """The holder closes the stream after the last chunk: anything before that is
        more than was asked for."""
        while True:
            try:
                with trio.fail_after(self._stall):
                    more = await _read(stream)
            except StreamEnded:
                break
            for frame in decoder.feed(more):
                _take(assembler, frame)  # a chunk past the end: BlobTransferError(oversize)
        if decoder.pending:
            sha = assembler.blob.sha256
            raise BlobTransferError("oversize", f"bytes past the end of blob {sha}")


def _take(assembler: ChunkAssembler, frame: bytes) -> None:
    try:
        message = decode_message(
            frame, max_size=CHUNK_FRAME_CAP, allowed=frozenset({BlobChunk, Error})
        )
    except DecodeError as exc:
        raise _FetchFailed("malformed", f"not a blob_chunk: {exc}") from exc
    if isinstance(message, Error):
        raise _FetchFailed(
            "not_found" if message.code == "not_found" else "refused",
            f"the peer refused the blob: {message.code}: {message.message}",
        )
    assert isinstance(message, BlobChunk)
    assembler.feed(message)


async def _read(stream: INetStream) -> bytes:
    try:
        chunk = await stream.read(BLOB_READ)
    except Exception as exc:  # py-libp2p raises StreamEOF, StreamReset, ... unrelated
        raise StreamEnded(f"the blob stream ended ({type(exc).__name__})") from exc
    if not chunk:
        raise StreamEnded("the blob stream closed before the whole blob arrived")
    return bytes(chunk)
