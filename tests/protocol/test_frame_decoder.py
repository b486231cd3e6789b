"""Length-prefixed framing: bytes in any pieces, frames out, oversize refused early."""

from __future__ import annotations

import pytest

from plasm.protocol.errors import FrameError
from plasm.protocol.framing import FrameDecoder, encode_frame


def test_encode_frame_prefixes_a_big_endian_length() -> None:
    assert encode_frame(b"abc", max_size=10) == b"\x00\x00\x00\x03abc"


def test_encode_frame_refuses_an_oversize_payload() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        encode_frame(b"x" * 11, max_size=10)


def test_encode_frame_refuses_an_empty_payload() -> None:
    with pytest.raises(FrameError, match="empty"):
        encode_frame(b"", max_size=10)


def test_decoder_yields_frames_fed_one_byte_at_a_time() -> None:
    stream = encode_frame(b"abc", 10) + encode_frame(b"0123456789", 10) + encode_frame(b"z", 10)
    decoder = FrameDecoder(max_size=10)
    frames = []
    for byte in stream:
        frames += decoder.feed(bytes([byte]))
    assert frames == [b"abc", b"0123456789", b"z"]
    assert decoder.pending == 0


def test_decoder_yields_every_frame_of_a_single_feed() -> None:
    decoder = FrameDecoder(max_size=10)
    assert decoder.feed(encode_frame(b"a", 10) + encode_frame(b"bc", 10)) == [b"a", b"bc"]


def test_decoder_keeps_a_partial_frame_pending_until_it_completes() -> None:
    decoder = FrameDecoder(max_size=10)
    frame = encode_frame(b"hello", 10)
    assert decoder.feed(frame[:6]) == []
    assert decoder.pending == 6
    assert decoder.feed(frame[6:] + frame[:2]) == [b"hello"]
    assert decoder.pending == 2


def test_decoder_refuses_an_oversize_length_before_buffering_the_body() -> None:
    decoder = FrameDecoder(max_size=10)
    with pytest.raises(FrameError, match="11-byte frame"):
        decoder.feed(b"\x00\x00\x00\x0b" + b"x" * 1000)
    assert decoder.pending == 0


def test_decoder_refuses_a_four_gigabyte_announcement_at_once() -> None:
    decoder = FrameDecoder(max_size=2**20)
    with pytest.raises(FrameError, match="4294967295-byte frame"):
        decoder.feed(b"\xff\xff\xff\xff")


def test_decoder_refuses_a_zero_length_frame() -> None:
    decoder = FrameDecoder(max_size=10)
    with pytest.raises(FrameError, match="empty frame"):
        decoder.feed(b"\x00\x00\x00\x00")


def test_decoder_stays_broken_after_a_refusal() -> None:
    decoder = FrameDecoder(max_size=10)
    with pytest.raises(FrameError):
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(FrameError, match="already failed"):
        decoder.feed(encode_frame(b"ok", 10))
