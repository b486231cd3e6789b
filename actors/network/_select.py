"""Pipelined multistream-select for one protocol: propose it and send at once.

Theory of operation: libp2p agrees on a stream's protocol with multistream-select. Each
message is a varint length, then text ending in a newline. The dialer sends the header
``/multistream/1.0.0`` and a protocol id, and the listener echoes both (or answers ``na``
for a protocol it does not speak). py-libp2p's dialer waits for each echo before it
writes again: two round trips before the first byte of the request. When the dialer
proposes exactly one protocol it need not wait (rust- and go-libp2p call this "lazy"
negotiation): the header, the protocol id and the request go out in one write, and the
listener, which reads them in order, sees exactly what an eager dialer would have sent.

The dialer still checks the listener's answer before it trusts anything after it:
``SelectReply.feed`` takes the bytes the stream returns, and once it has both messages
either returns what follows them (the start of the answer frame), or raises
``ProtocolUnsupported`` (``na``) or ``SelectFailed`` (anything else, or a message over
``MAX_MESSAGE`` bytes). It is sans-IO. A listener that answers ``na`` then reads our
request as its next proposal, fails, and resets the stream: we report the ``na`` if it
arrived, and an unreachable peer either way.
"""

from __future__ import annotations

MULTISTREAM = b"/multistream/1.0.0"
NOT_AVAILABLE = b"na"
MAX_MESSAGE = 1024  # a protocol id is far shorter; more is not multistream-select
_VARINT_MAX_BYTES = 2  # lengths up to MAX_MESSAGE fit in two varint bytes


class SelectFailed(Exception):
    """The listener's answer is not multistream-select, or names another protocol."""


class ProtocolUnsupported(SelectFailed):
    """The listener answered ``na``: it has no handler for the protocol."""


def encode_message(text: bytes) -> bytes:
    """One multistream-select message: varint length, ``text``, newline."""
    body = text + b"\n"
    length, prefix = len(body), bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            return bytes(prefix) + body


def proposal(protocol: str) -> bytes:
    """What a dialer sends before its request: the header, then ``protocol``."""
    return encode_message(MULTISTREAM) + encode_message(protocol.encode())


def _split_message(buffer: bytes) -> tuple[bytes, bytes] | None:
    """``(message without newline, rest)``, or None until the whole message arrived."""
    length, shift = 0, 0
    for index, byte in enumerate(buffer[:_VARINT_MAX_BYTES]):
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            start = index + 1
            break
    else:
        if len(buffer) >= _VARINT_MAX_BYTES:
            raise SelectFailed("a multistream-select length prefix is too long")
        return None
    if length > MAX_MESSAGE:
        raise SelectFailed(f"a multistream-select message of {length} bytes is too long")
    if len(buffer) < start + length:
        return None
    message = buffer[start : start + length]
    if not message.endswith(b"\n"):
        raise SelectFailed("a multistream-select message does not end with a newline")
    return message[:-1], buffer[start + length :]


class SelectReply:
    """The listener's answer to ``proposal(protocol)``, fed as it arrives."""

    def __init__(self, protocol: str) -> None:
        self._expected = (MULTISTREAM, protocol.encode())
        self._buffer = b""
        self._seen = 0

    def feed(self, data: bytes) -> bytes | None:
        """The bytes after the answer once it is complete and agrees; None until then."""
        self._buffer += data
        while self._seen < len(self._expected):
            split = _split_message(self._buffer)
            if split is None:
                return None
            message, self._buffer = split
            expected = self._expected[self._seen]
            if message != expected:
                if self._seen == 1 and message == NOT_AVAILABLE:
                    raise ProtocolUnsupported(
                        f"the peer does not speak {expected.decode(errors='replace')}"
                    )
                raise SelectFailed(
                    f"expected {expected!r} in multistream-select, got {message[:64]!r}"
                )
            self._seen += 1
        rest, self._buffer = self._buffer, b""
        return rest
