"""Pipelined multistream-select: the dialer's proposal and how it reads the answer."""

from __future__ import annotations

import pytest
from libp2p.utils.varint import encode_delim

from plasm.actors.network._select import (
    MAX_MESSAGE,
    ProtocolUnsupported,
    SelectFailed,
    SelectReply,
    encode_message,
    proposal,
)

PROTOCOL = "/plasm/job/1.0.0"
AGREED = encode_message(b"/multistream/1.0.0") + encode_message(PROTOCOL.encode())


def test_messages_are_encoded_as_py_libp2p_encodes_them() -> None:
    assert encode_message(PROTOCOL.encode()) == encode_delim(PROTOCOL.encode())
    assert encode_message(b"x" * 200) == encode_delim(b"x" * 200)


def test_the_proposal_is_the_header_then_the_protocol() -> None:
    assert proposal(PROTOCOL) == AGREED


def test_an_agreeing_answer_yields_the_bytes_that_follow_it() -> None:
    assert SelectReply(PROTOCOL).feed(AGREED + b"\x00\x00\x00\x02hi") == b"\x00\x00\x00\x02hi"


def test_an_answer_fed_one_byte_at_a_time_completes_only_at_its_end() -> None:
    reply = SelectReply(PROTOCOL)
    fed = [reply.feed(AGREED[i : i + 1]) for i in range(len(AGREED))]
    assert fed[:-1] == [None] * (len(AGREED) - 1)
    assert fed[-1] == b""


def test_na_means_the_peer_does_not_speak_the_protocol() -> None:
    reply = SelectReply(PROTOCOL)
    with pytest.raises(ProtocolUnsupported):
        reply.feed(encode_message(b"/multistream/1.0.0") + encode_message(b"na"))


def test_an_echo_of_another_protocol_is_refused() -> None:
    with pytest.raises(SelectFailed, match="expected"):
        SelectReply(PROTOCOL).feed(
            encode_message(b"/multistream/1.0.0") + encode_message(b"/plasm/caps/1.0.0")
        )


def test_a_wrong_header_is_refused_even_with_na() -> None:
    reply = SelectReply(PROTOCOL)
    with pytest.raises(SelectFailed) as caught:
        reply.feed(encode_message(b"na"))
    assert not isinstance(caught.value, ProtocolUnsupported)


def test_a_message_over_the_cap_is_refused_from_its_length() -> None:
    length = MAX_MESSAGE + 1
    prefix = bytes([length & 0x7F | 0x80, length >> 7])
    with pytest.raises(SelectFailed, match="too long"):
        SelectReply(PROTOCOL).feed(prefix)


def test_a_message_without_its_newline_is_refused() -> None:
    with pytest.raises(SelectFailed, match="newline"):
        SelectReply(PROTOCOL).feed(b"\x03abc")
