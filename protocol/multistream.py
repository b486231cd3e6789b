"""multistream-select, sans-IO: how libp2p agrees on a stream's protocol.

Theory of operation. Every multistream-select message is a line: an unsigned varint length,
then that many bytes, the last of them a newline. The dialer sends the header
``/multistream/1.0.0`` and a protocol id; the listener echoes both, or answers the header
and ``na`` for a protocol it does not speak. ``encode`` turns an event (``Header``,
``ProtocolId``, ``NotAvailable``) into its line; ``LineDecoder`` is fed the bytes a stream
returns (``receive_data``) and gives one event per whole line (``next_event``, None until
one is complete), never reading past it: what follows the negotiation (the first frame of
the protocol) stays in ``take_trailing_data``. A length prefix over two bytes, a line over
``MAX_LINE`` bytes or one without its newline raises ``MultistreamError`` and poisons the
decoder, decided from the prefix before any of the line is buffered.

Pipelined selection ("lazy" in rust- and go-libp2p): a dialer that proposes exactly one
protocol need not wait for the echoes. py-libp2p's dialer waits for each, two round trips
before the first byte of the request; ours writes ``proposal(protocol)`` and the request in
one go, and the listener, reading in order, sees what an eager dialer would have sent.
``SelectReply`` checks the listener's answer before anything after it is trusted: once
both lines are in, ``feed`` returns the bytes that follow them, or raises
``ProtocolUnsupported`` (``na``) or ``MultistreamError`` (anything else). A listener that
answers ``na`` then reads our request as its next proposal, fails, and resets the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from plasm.protocol.errors import MultistreamError, ProtocolUnsupported

HEADER = b"/multistream/1.0.0"
NOT_AVAILABLE = b"na"
MAX_LINE = 1024  # a protocol id is far shorter; more is not multistream-select
_VARINT_MAX_BYTES = 2  # lengths up to MAX_LINE fit in two varint bytes


@dataclass(frozen=True, slots=True)
class Header:
    """``/multistream/1.0.0``: the first line each side sends."""


@dataclass(frozen=True, slots=True)
class NotAvailable:
    """``na``: the listener has no handler for the protocol just proposed."""


@dataclass(frozen=True, slots=True)
class ProtocolId:
    """A protocol proposed by the dialer, or echoed by the listener to accept it."""

    protocol: str

    def __post_init__(self) -> None:
        text = self.protocol.encode()
        if not text or b"\n" in text or text in (HEADER, NOT_AVAILABLE) or len(text) >= MAX_LINE:
            raise ValueError(f"{self.protocol!r} is not a multistream-select protocol id")


Event = Header | NotAvailable | ProtocolId


def encode_line(text: bytes) -> bytes:
    """One multistream-select line: varint length, ``text``, newline."""
    body = text + b"\n"
    if b"\n" in text or len(body) > MAX_LINE:
        raise ValueError("a multistream-select line is one line of at most MAX_LINE bytes")
    length, prefix = len(body), bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            return bytes(prefix) + body


def encode(event: Event) -> bytes:
    """The line that carries ``event``."""
    return encode_line(_text(event))


def _text(event: Event) -> bytes:
    if isinstance(event, Header):
        return HEADER
    if isinstance(event, NotAvailable):
        return NOT_AVAILABLE
    return event.protocol.encode()


def _event_of(text: bytes) -> Event | None:
    """The event a line's text carries; None if it is not one."""
    if text == HEADER:
        return Header()
    if text == NOT_AVAILABLE:
        return NotAvailable()
    try:
        return ProtocolId(text.decode())
    except (UnicodeDecodeError, ValueError):
        return None


class LineDecoder:
    """Lines in, events out; bytes after the last line asked for are left alone."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._broken: str | None = None

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> Event | None:
        """The event of the next whole line, or None until it has all arrived."""
        if self._broken is not None:
            raise MultistreamError(f"multistream-select already failed ({self._broken})")
        length, shift = 0, 0
        for index, byte in enumerate(self._buffer[:_VARINT_MAX_BYTES]):
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                start = index + 1
                break
        else:
            if len(self._buffer) >= _VARINT_MAX_BYTES:
                self._fail("a multistream-select length prefix is too long")
            return None
        if length > MAX_LINE:
            self._fail(f"a multistream-select message of {length} bytes is too long")
        if len(self._buffer) < start + length:
            return None
        line = bytes(self._buffer[start : start + length])
        del self._buffer[: start + length]
        if not line.endswith(b"\n"):
            self._fail("a multistream-select message does not end with a newline")
        event = _event_of(line[:-1])
        if event is None:
            self._fail(f"a multistream-select message is not a protocol id: {line[:64]!r}")
        return event

    def take_trailing_data(self) -> bytes:
        """The bytes received after the last event given, which the decoder gives up."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def _fail(self, why: str) -> NoReturn:
        self._broken = why
        self._buffer.clear()
        raise MultistreamError(why)


def proposal(protocol: str) -> bytes:
    """What a pipelining dialer sends before its request: the header, then ``protocol``."""
    return encode(Header()) + encode(ProtocolId(protocol))


class SelectReply:
    """The listener's answer to ``proposal(protocol)``, fed as it arrives."""

    def __init__(self, protocol: str) -> None:
        self._expected: tuple[Event, ...] = (Header(), ProtocolId(protocol))
        self._decoder = LineDecoder()
        self._seen = 0

    def feed(self, data: bytes) -> bytes | None:
        """The bytes after the answer once it is complete and agrees; None until then."""
        self._decoder.receive_data(data)
        while self._seen < len(self._expected):
            event = self._decoder.next_event()
            if event is None:
                return None
            expected = self._expected[self._seen]
            if event != expected:
                if isinstance(event, NotAvailable) and isinstance(expected, ProtocolId):
                    raise ProtocolUnsupported(f"the peer does not speak {expected.protocol}")
                raise MultistreamError(
                    f"expected {_shown(expected)} in multistream-select, got {_shown(event)}"
                )
            self._seen += 1
        return self._decoder.take_trailing_data()


def _shown(event: Event) -> str:
    return repr(_text(event)[:64])
