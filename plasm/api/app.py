"""The API's ASGI application: one request in, one response out.

Theory of operation. uvicorn parses HTTP and calls `ApiApp` on its event-loop thread
with the request's head; the app checks the bearer token (TCP only), the framing
(no chunked bodies, Content-Length within `api.max_body_bytes`), reads the whole body
and only then routes. A client that disconnects before its body is complete gets
nothing done on its behalf: the route never runs.

Two bodies are never held whole: `POST /v1/blobs` streams into the blob store, and
`POST /v1/modules` (up to `blobs.max_module_bytes`, not `api.max_body_bytes`) streams
into a sealed temporary file of the blob store, which the route hands to the journal
(`Request.staged`) and which is deleted once it answered.

Routes (plasm.api.routes) are synchronous and talk to actors, so each runs in a small
bounded thread pool, never on the loop: an ask may wait behind a busy journal. A route
that must wait for a job returns `Later` instead of a `Response`: the loop awaits the
job's future (its done callback resolves an asyncio future through
`call_soon_threadsafe`), so a thousand clients waiting on `?wait` cost a thousand small
objects, not a thousand threads. Content negotiation: JSON unless the client accepts
CBOR; errors are `{"error": {"code", "message"}}` with the status of their `ApiError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import cbor2
import orjson

from plasm._version import __version__
from plasm.actors._future import Future
from plasm.actors.blob_store import BlobStore
from plasm.actors.errors import BlobError, error_code
from plasm.api.errors import ApiError

log = logging.getLogger("plasm.api")

JSON = "application/json"
CBOR = "application/cbor"
SERVER_HEADER = f"plasmd/{__version__}".encode()
BLOBS_PATH = "/v1/blobs"
MODULES_PATH = "/v1/modules"
MODULE_TYPES = ("application/wasm", "application/octet-stream")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StagedBody:
    """A body written to a temporary file as it arrived, whole and hashed (the file goes
    when the request is answered)."""

    path: Path
    sha256: str
    size: int


class Request:
    """What a route sees: method, path parts, query, body (already size-checked); a staged
    body (`POST /v1/modules`) is in `staged` and `body` is empty."""

    __slots__ = ("body", "content_type", "method", "path", "query", "staged", "wants_cbor")

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        content_type: str,
        wants_cbor: bool,
        staged: StagedBody | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.content_type = content_type
        self.wants_cbor = wants_cbor
        self.staged = staged

    def json(self) -> Any:
        """The body as JSON (or CBOR when sent as application/cbor)."""
        if not self.body:
            raise ApiError(400, "empty_body", "this request needs a body")
        if self.content_type == CBOR:
            from plasm.protocol.cbor import loads
            from plasm.protocol.errors import DecodeError

            try:
                return loads(self.body, max_size=len(self.body))
            except DecodeError as exc:
                raise ApiError(400, "bad_cbor", f"the body is not valid CBOR: {exc}") from exc
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from exc

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


class Response:
    __slots__ = ("body", "close", "content_type", "status")

    def __init__(
        self, status: int, body: Any, content_type: str | None = None, close: bool = False
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.close = close


@dataclass(frozen=True, slots=True)
class Later:
    """A response that waits for `future` (at most `timeout` s) without holding a thread.

    `finish(True)` then builds the response on the loop, so it must not block once the
    future is answered; `finish(False)` (timed out) runs in the pool and may ask an actor.
    """

    future: Future[Any]
    timeout: float
    finish: Callable[[bool], Response]


Router = Callable[[Request], "Response | Later"]


async def wait_answered(future: Future[Any], timeout: float) -> bool:
    """Whether `future` was answered within `timeout` s; the loop is free meanwhile."""
    if future.done:
        return True
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if not answered.done():
            answered.set_result(None)

    def on_answer(_future: Future[Any]) -> None:  # runs on the answering actor's thread
        with contextlib.suppress(RuntimeError):  # a closed loop: the daemon is stopping
            loop.call_soon_threadsafe(settle)

    future.add_done_callback(on_answer)
    try:
        await asyncio.wait_for(answered, timeout)
    except TimeoutError:
        return False
    return True


class ApiApp:
    """The ASGI app of one listener; `token` set on TCP, None on the Unix socket."""

    def __init__(
        self,
        router: Router,
        token: str | None,
        max_body_bytes: int,
        pool: Executor,
        quick: frozenset[tuple[str, str]] = frozenset(),
        blobs: BlobStore | None = None,
        max_module_bytes: int | None = None,
    ) -> None:
        self.router = router
        # POST /v1/blobs streams into it, POST /v1/modules stages there (never held whole)
        self.blobs = blobs
        self.max_module_bytes = max_body_bytes if max_module_bytes is None else max_module_bytes
        self.quick = quick  # (method, path) of routes that ask no actor: served on the loop
        self.expected = f"Bearer {token}".encode() if token is not None else None
        self.max_body_bytes = max_body_bytes
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan (uvicorn runs with lifespan="off")
            return
        headers: dict[bytes, bytes] = dict(scope["headers"])
        wants_cbor = CBOR.encode() in headers.get(b"accept", b"")
        try:
            self._check_token(headers)
            if scope["method"] == "POST" and scope["path"] == BLOBS_PATH:
                response = await self._put_blob(scope, headers, receive)
                if response is None:
                    return  # the client left before its body was complete: nothing kept
                await _send(send, response, wants_cbor, False)
                return
            staged = self.blobs is not None  # without a blob store: read whole, as others
            if scope["method"] == "POST" and scope["path"] == MODULES_PATH and staged:
                response = await self._put_module(scope, headers, receive, wants_cbor)
                if response is None:
                    return  # the client left before its body was complete: nothing kept
                await _send(send, response, wants_cbor, False)
                return
            length = self._body_length(headers)
            body = await _read_body(receive, length)
            if body is None:
                return  # the client left before its body was complete: do nothing
            request = Request(
                scope["method"],
                scope["raw_path"].decode("latin-1"),
                parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True),
                body,
                _content_type(headers),
                wants_cbor,
            )
            response = await self._respond(request)
        except ApiError as exc:
            response = Response(exc.status, exc.body(), close=exc.status in (411, 413, 415))
        except Exception:
            log.exception("internal error serving %s %s", scope["method"], scope["path"])
            response = Response(
                500, ApiError(500, "internal", "internal error; see the daemon's log").body()
            )
        await _send(send, response, wants_cbor, scope["method"] == "HEAD")

    async def _respond(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        on_loop = getattr(self.router, "runs_on_loop", None)
        if (request.method, request.path) in self.quick or (on_loop and on_loop(request)):
            answer = self.router(request)
        else:
            answer = await loop.run_in_executor(self.pool, self.router, request)
        if isinstance(answer, Response):
            return answer
        if await wait_answered(answer.future, answer.timeout):
            return answer.finish(True)  # reads an answered future: nothing to wait for
        return await loop.run_in_executor(self.pool, answer.finish, False)

    async def _put_blob(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive
    ) -> Response | None:
        """Stream the body into the blob store: written as it arrives, hashed on the way,
        kept only when it is whole (and hashes to ``?sha256=`` when the client gave one)."""
        if self.blobs is None:
            raise ApiError(404, "no_blob_store", "this node keeps no blobs")
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            raise ApiError(411, "length_required", "send a Content-Length")
        length = int(headers.get(b"content-length", b"0") or b"0")
        if length > self.blobs.max_blob_bytes:
            raise ApiError(
                413,
                "blob_too_large",
                f"the blob is {length} bytes; this node keeps at most "
                f"{self.blobs.max_blob_bytes} (blobs.max_blob_bytes)",
            )
        query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        expected = query.get("sha256", [None])[-1]
        try:
            with self.blobs.writer(expected) as writer:
                try:
                    async for chunk in _body_chunks(receive):
                        writer.write(chunk)
                except _Disconnected:
                    return None
                if writer.size != length:
                    return None
                digest = writer.commit()
        except BlobError as exc:
            code = error_code(exc)
            assert code is not None
            raise ApiError(code.status, code.code, str(exc)) from exc
        return Response(201, {"sha256": digest, "size": length})

    async def _put_module(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, wants_cbor: bool
    ) -> Response | None:
        """Stage the body in a temporary file of the blob store (hashed as it arrives, at
        most ``blobs.max_module_bytes``), then route it: the route checks it is a module
        and has the journal copy it in. The file is gone once the route answered."""
        assert self.blobs is not None
        content_type = _content_type(headers)
        if content_type not in MODULE_TYPES:  # refused before a byte of the body is read
            raise ApiError(415, "unsupported_media_type", "send the module as application/wasm")
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            raise ApiError(411, "length_required", "send a Content-Length")
        length = int(headers.get(b"content-length", b"0") or b"0")
        if length > self.max_module_bytes:
            raise ApiError(
                413,
                "module_too_large",
                f"the module is {length} bytes; this node takes modules of at most "
                f"{self.max_module_bytes} bytes (blobs.max_module_bytes)",
            )
        try:
            with self.blobs.writer(
                max_size=self.max_module_bytes, limit_name="blobs.max_module_bytes"
            ) as writer:
                try:
                    async for chunk in _body_chunks(receive):
                        writer.write(chunk)
                except _Disconnected:
                    return None
                if writer.size != length:
                    return None
                staged = StagedBody(writer.path, writer.seal(), writer.size)
                request = Request(
                    scope["method"],
                    scope["raw_path"].decode("latin-1"),
                    parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True),
                    b"",
                    content_type,
                    wants_cbor,
                    staged,
                )
                return await self._respond(request)
        except BlobError as exc:
            code = error_code(exc)
            assert code is not None
            raise ApiError(code.status, code.code, str(exc)) from exc

    def _check_token(self, headers: dict[bytes, bytes]) -> None:
        if self.expected is None:
            return
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token")

    def _body_length(self, headers: dict[bytes, bytes]) -> int:
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            raise ApiError(
                411, "length_required", "send a Content-Length; chunked bodies are not accepted"
            )
        # The parser (llhttp) refused a Content-Length that is not a whole number.
        length = int(headers.get(b"content-length", b"0") or b"0")
        if length > self.max_body_bytes:
            # Not read: the connection is closed after the answer.
            raise ApiError(
                413,
                "too_large",
                f"the body is {length} bytes; this node accepts at most {self.max_body_bytes}",
            )
        return length


class _Disconnected(Exception):
    """The client left before its body was all there."""


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; ``_Disconnected`` if the client leaves first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _content_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


async def _read_body(receive: Receive, length: int) -> bytes | None:
    """The whole body, or None when the client disconnected before it was all there."""
    try:
        body = b"".join([chunk async for chunk in _body_chunks(receive)])
    except _Disconnected:
        return None
    # The parser ends a message only at its length; be sure.
    return body if len(body) == length else None


async def _send(send: Send, response: Response, wants_cbor: bool, head_only: bool) -> None:
    body = response.body
    if isinstance(body, bytes):
        payload, content_type = body, response.content_type or "application/octet-stream"
    elif wants_cbor:
        payload, content_type = cbor2.dumps(body), CBOR
    else:
        payload, content_type = orjson.dumps(body), JSON
    headers = [
        (b"server", SERVER_HEADER),
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    if response.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else payload})
