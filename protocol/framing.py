"""Length-prefixed frames: a 4-byte big-endian length, then that many payload bytes.

Theory of operation: ``FrameDecoder`` is a two-state machine fed with whatever bytes a stream
produced. In the *header* state it waits for 4 bytes, reads the length and refuses it at once
if it is zero or above the cap, so an attacker announcing 4 GiB never makes us buffer a single
body byte. In the *body* state it waits for that many bytes and emits the frame. Any refusal
poisons the decoder: the stream's framing is lost, the caller must close it.
"""

from __future__ import annotations

import struct

from plasm.protocol.errors import FrameError

HEADER_SIZE = 4
_HEADER = struct.Struct(">I")


def encode_frame(payload: bytes, max_size: int) -> bytes:
    """Prefix ``payload`` with its length; refuse empty or oversize payloads."""
    size = len(payload)
    if size == 0:
        raise FrameError("refusing to send an empty frame: every frame carries a message")
    if size > max_size:
        raise FrameError(f"frame of {size} bytes exceeds the {max_size}-byte cap")
    return _HEADER.pack(size) + bytes(payload)


class FrameDecoder:
    """Turn a byte stream into frames. Pure: feed it bytes, get payloads back."""

    def __init__(self, max_size: int) -> None:
        if not 0 < max_size < 2**32:
            raise ValueError("max_size must be between 1 and 2**32 - 1")
        self.max_size = max_size
        self._buffer = bytearray()
        self._expected: int | None = None  # body length once the header is read
        self._broken: str | None = None

    @property
    def pending(self) -> int:
        """Bytes received (header included) that are not yet part of an emitted frame."""
        return len(self._buffer) + (0 if self._expected is None else HEADER_SIZE)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every frame it completed, in order.

        Bytes are taken only as far as the current header or body needs them, so a refused
        length prefix is refused before any of the body that follows it is copied.
        """
        if self._broken is not None:
            raise FrameError(f"stream framing already failed ({self._broken}); close the stream")
        view = memoryview(data)
        frames: list[bytes] = []
        while view:
            needed = (HEADER_SIZE if self._expected is None else self._expected) - len(self._buffer)
            self._buffer += view[:needed]
            view = view[needed:]
            if len(self._buffer) < (HEADER_SIZE if self._expected is None else self._expected):
                break
            if self._expected is None:
                (size,) = _HEADER.unpack(self._buffer)
                self._check_size(size)
                self._expected = size
            else:
                frames.append(bytes(self._buffer))
                self._expected = None
            self._buffer.clear()
        return frames

    def _check_size(self, size: int) -> None:
        if size == 0:
            self._fail("the peer sent an empty frame")
        if size > self.max_size:
            self._fail(f"the peer announced a {size}-byte frame, above the {self.max_size} cap")

    def _fail(self, why: str) -> None:
        self._broken = why
        self._buffer.clear()
        raise FrameError(f"{why}; close the stream")
