"""uvicorn's httptools protocol with the limits the local API needs.

Theory of operation. uvicorn parses HTTP with llhttp (strict: a header line without a
colon, a bad Content-Length or request line is a parse error) and times out idle
keep-alive connections, but it has no limit on how many connections it holds, no
deadline for a request that arrives a byte at a time, no bound on the size of a
request's head, and answers parse errors in plain text. `GuardedHttp` adds, per
connection and before any byte reaches the parser:

- a connection past `max_connections` (all listeners together) is answered 503 and closed;
- a new connection is idle: it must start a request within `idle_timeout_s`, as between
  keep-alive requests (uvicorn's own keep-alive timer, armed here at connect too);
- a request, from its first byte, must arrive whole (head and body) within
  `request_timeout_s`, else 408 and the connection is closed; the app, waiting on the
  body, sees a disconnect and does nothing;
- a request line over 64 KiB is 414, a head over 64 KiB or over 100 header lines is 431;
- parse errors are 400, all in the API's JSON error shape, and the connection is closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from plasm.api.app import SERVER_HEADER
from plasm.api.errors import ApiError

MAX_LINE_BYTES = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
MIN_UPLOAD_BYTES_PER_S = 1 << 20  # a body gets length / this many s on top of the deadline


@dataclass
class Guard:
    """Limits shared by every listener of one API server."""

    max_connections: int
    idle_timeout_s: float
    request_timeout_s: float
    connections: set[Any] = field(default_factory=set)


class GuardedConfig(Config):
    """A uvicorn Config that carries the API's `Guard` to its protocol objects."""

    guard: Guard


class GuardedHttp(HttpToolsProtocol):
    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        assert isinstance(config, GuardedConfig)
        self.guard = config.guard
        self.refused = False
        self.in_request = False  # between a request's first byte and its last
        self.head_done = False
        self.line_bytes = 0  # of the request line, until its newline
        self.line_done = False
        self.head_bytes = 0
        self.header_lines = 0
        self.request_timer: asyncio.TimerHandle | None = None

    # -- connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.connections.add(self)
        if len(self.guard.connections) > self.guard.max_connections:
            self.refuse(
                ApiError(
                    503,
                    "too_many_connections",
                    f"this node serves at most {self.guard.max_connections} API connections "
                    "at once (api.max_connections); retry later",
                )
            )
            return
        self.timeout_keep_alive_task = self.loop.call_later(
            self.guard.idle_timeout_s, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.connections.discard(self)
        self._cancel_request_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if not self.in_request:
            self._begin_request()
        if not self.head_done and not self._head_within_limits(data):
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no upgrades here: the request is served as plain HTTP
        except httptools.HttpParserError as exc:
            if not self.refused:
                self.refuse(_parse_error(exc))

    # -- parser callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self.in_request:  # a pipelined request starts inside one data chunk
            self._begin_request()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_lines += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_done = True
        if self.header_lines > MAX_HEADERS:
            self.refuse(_malformed(431, f"a request may have at most {MAX_HEADERS} header lines"))
            raise _Refused  # stops the parser: the request never reaches the app
        super().on_headers_complete()
        self._allow_for_the_body()

    def on_message_complete(self) -> None:
        self._cancel_request_timer()
        self.in_request = False
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:  # uvicorn's own; in our error shape
        self.refuse(_malformed(400, msg))

    # -- limits ------------------------------------------------------------------------

    def _begin_request(self) -> None:
        self.in_request = True
        self.head_done = False
        self.line_bytes = self.head_bytes = self.header_lines = 0
        self.line_done = False
        self._cancel_request_timer()
        self.request_timer = self.loop.call_later(
            self.guard.request_timeout_s, self._request_timed_out
        )

    def _allow_for_the_body(self) -> None:
        """A big body (a blob, a module) gets time to arrive at ``MIN_UPLOAD_BYTES_PER_S`` on
        top of the request deadline, so a large upload on a slow link is not cut short,
        while a client trickling a byte a second still is."""
        length = next((v for k, v in self.headers if k == b"content-length"), b"0")
        try:
            extra = int(length) / MIN_UPLOAD_BYTES_PER_S
        except ValueError:
            return  # the parser refuses it
        if extra >= 1 and self.request_timer is not None:
            self.request_timer.cancel()
            self.request_timer = self.loop.call_later(
                self.guard.request_timeout_s + extra, self._request_timed_out
            )

    def _head_within_limits(self, data: bytes) -> bool:
        if not self.line_done:
            newline = data.find(b"\n")
            self.line_done = newline >= 0
            self.line_bytes += newline if newline >= 0 else len(data)
            if self.line_bytes > MAX_LINE_BYTES:
                self.refuse(
                    _malformed(414, f"the request line is longer than {MAX_LINE_BYTES} bytes")
                )
                return False
        # A chunk may hold the end of the head and then body bytes: count up to the end.
        end = data.find(b"\r\n\r\n")
        self.head_bytes += len(data) if end < 0 else end + 4
        if self.head_bytes > MAX_HEAD_BYTES:
            self.refuse(_malformed(431, f"the request head is larger than {MAX_HEAD_BYTES} bytes"))
            return False
        return True

    def _request_timed_out(self) -> None:
        self.request_timer = None
        if self.in_request and not self.transport.is_closing():
            self.refuse(
                ApiError(
                    408,
                    "request_timeout",
                    f"the request did not arrive whole within {self.guard.request_timeout_s:g} s "
                    "(api.request_timeout_ms)",
                )
            )

    def _cancel_request_timer(self) -> None:
        if self.request_timer is not None:
            self.request_timer.cancel()
            self.request_timer = None

    def refuse(self, error: ApiError) -> None:
        """Answer `error` in the API's error shape, unless a response began, and close."""
        self.refused = True
        self._cancel_request_timer()
        self._unset_keepalive_if_required()
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(error_response(error))
        self.transport.close()


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def _malformed(status: int, message: str) -> ApiError:
    """400, or 414/431 for a request line or head too long: all code `bad_request`."""
    return ApiError(status, "bad_request", message)


def _parse_error(exc: Exception) -> ApiError:
    if "Content-Length" in str(exc):
        return ApiError(400, "bad_length", f"Content-Length is not a non-negative number: {exc}")
    return _malformed(400, f"not a valid HTTP/1.1 request: {exc}")


def error_response(error: ApiError) -> bytes:
    from http import HTTPStatus

    body = orjson.dumps(error.body())
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (error.status, HTTPStatus(error.status).phrase.encode()),
            b"server: ",
            SERVER_HEADER,
            b"\r\n",
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )
