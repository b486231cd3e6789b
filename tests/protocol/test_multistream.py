"""multistream-select without a socket: lines, events, and the pipelining dialer's check."""

from __future__ import annotations

import re

import pytest
from libp2p.utils.varint import encode_delim

from plasm.protocol.errors import DecodeError, MultistreamError, ProtocolUnsupported
from plasm.protocol.multistream import (
    MAX_LINE,
    Header,
    LineDecoder,
    NotAvailable,
    ProtocolId,
    SelectReply,
    encode,
    encode_line,
    proposal,
)

PROTOCOL = "/plasm/job/1.0.0"
AGREED = encode_line(b"/multistream/1.0.0") + encode_line(PROTOCOL.encode())
FRAME = b"\x00\x00\x00\x02hi"  # what follows the negotiation: the protocol's first frame


def two_byte_prefix(length: int) -> bytes:
    return bytes([length & 0x7F | 0x80, length >> 7])


def events_of(decoder: LineDecoder) -> list[object]:
    events = []
    while (event := decoder.next_event()) is not None:
        events.append(event)
    return events


# --- encoding ---------------------------------------------------------------------------


def test_lines_are_encoded_as_py_libp2p_encodes_them() -> None:
    assert encode_line(PROTOCOL.encode()) == encode_delim(PROTOCOL.encode())
    assert encode_line(b"x" * 200) == encode_delim(b"x" * 200)  # a two-byte length


def test_each_event_is_encoded_as_its_line() -> None:
    assert encode(Header()) == b"\x13/multistream/1.0.0\n"
    assert encode(NotAvailable()) == b"\x03na\n"
    assert encode(ProtocolId(PROTOCOL)) == encode_line(PROTOCOL.encode())


def test_encode_line_refuses_a_line_the_decoder_would_refuse() -> None:
    with pytest.raises(ValueError):
        encode_line(b"x" * MAX_LINE)
    with pytest.raises(ValueError):
        encode_line(b"two\nlines")


@pytest.mark.parametrize("text", ["", "a\nb", "na", "/multistream/1.0.0", "x" * MAX_LINE])
def test_a_protocol_id_must_be_one_short_line_that_is_not_a_keyword(text: str) -> None:
    with pytest.raises(ValueError):
        ProtocolId(text)


def test_the_proposal_is_the_header_then_the_protocol() -> None:
    assert proposal(PROTOCOL) == AGREED


# --- decoding ---------------------------------------------------------------------------


def test_the_decoder_turns_lines_into_events() -> None:
    decoder = LineDecoder()
    decoder.receive_data(encode(Header()) + encode(ProtocolId(PROTOCOL)) + encode(NotAvailable()))
    assert events_of(decoder) == [Header(), ProtocolId(PROTOCOL), NotAvailable()]


def test_the_decoder_gives_an_event_only_once_its_line_is_whole() -> None:
    decoder, line = LineDecoder(), encode(ProtocolId(PROTOCOL))
    for byte in line[:-1]:
        decoder.receive_data(bytes([byte]))
        assert decoder.next_event() is None
    decoder.receive_data(line[-1:])
    assert decoder.next_event() == ProtocolId(PROTOCOL)


def test_a_split_two_byte_length_prefix_waits_for_its_second_byte() -> None:
    decoder, line = LineDecoder(), encode_line(b"/" + b"x" * 199)
    decoder.receive_data(line[:1])
    assert decoder.next_event() is None
    decoder.receive_data(line[1:])
    assert decoder.next_event() == ProtocolId("/" + "x" * 199)


def test_the_decoder_leaves_the_bytes_after_a_line_alone() -> None:
    decoder = LineDecoder()
    decoder.receive_data(encode(Header()) + FRAME)
    assert decoder.next_event() == Header()
    assert decoder.take_trailing_data() == FRAME
    assert decoder.take_trailing_data() == b""


def test_a_line_over_the_cap_is_refused_from_its_length_alone() -> None:
    decoder = LineDecoder()
    decoder.receive_data(two_byte_prefix(MAX_LINE + 1))
    with pytest.raises(MultistreamError, match="too long"):
        decoder.next_event()


def test_the_longest_line_allowed_is_decoded() -> None:
    decoder = LineDecoder()
    decoder.receive_data(encode_line(b"/" + b"x" * (MAX_LINE - 2)))
    assert decoder.next_event() == ProtocolId("/" + "x" * (MAX_LINE - 2))


def test_a_length_prefix_over_two_bytes_is_refused() -> None:
    decoder = LineDecoder()
    decoder.receive_data(b"\x80\x80\x01")
    with pytest.raises(MultistreamError, match="prefix is too long"):
        decoder.next_event()


def test_a_line_without_its_newline_is_refused() -> None:
    decoder = LineDecoder()
    decoder.receive_data(b"\x03abc")
    with pytest.raises(MultistreamError, match="newline"):
        decoder.next_event()


@pytest.mark.parametrize("line", [b"\x01\n", b"\x03\xff\xfe\n"], ids=["empty", "not-utf8"])
def test_a_line_that_is_no_protocol_id_is_refused(line: bytes) -> None:
    decoder = LineDecoder()
    decoder.receive_data(line)
    with pytest.raises(MultistreamError, match="not a protocol id"):
        decoder.next_event()


def test_a_refusal_poisons_the_decoder() -> None:
    decoder = LineDecoder()
    decoder.receive_data(b"\x03abc")
    with pytest.raises(MultistreamError):
        decoder.next_event()
    decoder.receive_data(encode(Header()))
    with pytest.raises(MultistreamError, match="already failed"):
        decoder.next_event()


def test_a_refusal_is_a_decode_error_the_peer_caused() -> None:
    assert issubclass(MultistreamError, DecodeError)
    assert not issubclass(ProtocolUnsupported, DecodeError)


# --- the pipelining dialer's check -----------------------------------------------------


def test_an_agreeing_answer_yields_the_bytes_that_follow_it() -> None:
    assert SelectReply(PROTOCOL).feed(AGREED + FRAME) == FRAME


def test_an_answer_fed_one_byte_at_a_time_completes_only_at_its_end() -> None:
    reply = SelectReply(PROTOCOL)
    fed = [reply.feed(AGREED[i : i + 1]) for i in range(len(AGREED))]
    assert fed[:-1] == [None] * (len(AGREED) - 1)
    assert fed[-1] == b""


def test_na_means_the_peer_does_not_speak_the_protocol() -> None:
    reply = SelectReply(PROTOCOL)
    with pytest.raises(ProtocolUnsupported, match=re.escape(PROTOCOL)):
        reply.feed(encode(Header()) + encode(NotAvailable()))


def test_an_echo_of_another_protocol_is_refused() -> None:
    with pytest.raises(MultistreamError, match="expected"):
        SelectReply(PROTOCOL).feed(encode(Header()) + encode(ProtocolId("/plasm/caps/1.0.0")))


def test_a_wrong_header_is_refused_even_with_na() -> None:
    with pytest.raises(MultistreamError, match=re.escape("expected b'/multistream/1.0.0'")):
        SelectReply(PROTOCOL).feed(encode(NotAvailable()))


def test_an_answer_line_over_the_cap_is_refused_from_its_length() -> None:
    with pytest.raises(MultistreamError, match="too long"):
        SelectReply(PROTOCOL).feed(two_byte_prefix(MAX_LINE + 1))
