"""The strict CBOR codec: canonical out, nothing but the data model in."""

from __future__ import annotations

import random

import cbor2
import pytest

from plasm.protocol import cbor
from plasm.protocol.errors import DecodeError


def nested_lists(depth: int) -> bytes:
    return b"\x81" * depth + b"\x01"


def test_dumps_sorts_map_keys_canonically() -> None:
    assert cbor.dumps({"bb": 1, "a": 2, "c": 3}) == cbor.dumps({"c": 3, "a": 2, "bb": 1})
    assert cbor.dumps({"bb": 1, "a": 2}) == b"\xa2aa\x02bbb\x01"


def test_dumps_and_loads_round_trip_the_data_model() -> None:
    value = {"i": -(2**64), "j": 2**64 - 1, "t": "é", "b": b"\x00", "l": [True, False, None]}
    assert cbor.loads(cbor.dumps(value)) == value


def test_dumps_encodes_tuples_as_lists() -> None:
    assert cbor.dumps((1, 2)) == cbor.dumps([1, 2])


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        {"a": 0.0},
        {1, 2},
        frozenset(),
        {1: "int key"},
        {b"k": 1},
        2**64,
        -(2**64) - 1,
        object(),
    ],
    ids=[
        "float",
        "nested-float",
        "set",
        "frozenset",
        "int-key",
        "bytes-key",
        "big",
        "small",
        "obj",
    ],
)
def test_dumps_refuses_values_outside_the_data_model(value: object) -> None:
    with pytest.raises(ValueError):
        cbor.dumps(value)


def test_dumps_refuses_nesting_deeper_than_loads_accepts() -> None:
    deepest: list[object] = [1]
    for _ in range(cbor.MAX_DEPTH - 1):
        deepest = [deepest]
    assert cbor.loads(cbor.dumps(deepest)) == deepest
    with pytest.raises(ValueError):
        cbor.dumps([deepest])


def test_loads_rejects_trailing_bytes() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        cbor.loads(cbor.dumps({"a": 1}) + b"\x00")


def test_loads_rejects_duplicate_map_keys() -> None:
    with pytest.raises(DecodeError, match=r"(?i)duplicate"):
        cbor.loads(b"\xa2\x61a\x01\x61a\x02")


def test_loads_accepts_nesting_up_to_the_depth_cap() -> None:
    assert cbor.loads(nested_lists(cbor.MAX_DEPTH)) is not None


@pytest.mark.timeout(10)
def test_loads_rejects_a_depth_bomb() -> None:
    with pytest.raises(DecodeError, match="depth"):
        cbor.loads(nested_lists(cbor.MAX_DEPTH + 1))
    with pytest.raises(DecodeError):
        cbor.loads(nested_lists(500_000))


def test_loads_checks_the_size_cap_before_decoding() -> None:
    # garbage this large would raise a decode error if it were decoded at all
    with pytest.raises(DecodeError, match="exceeds the 1000-byte cap"):
        cbor.loads(b"\xff" * 1001, max_size=1000)


@pytest.mark.parametrize(
    "data",
    [b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00", b"\xf9\x3c\x00", b"\x81\xfa\x3f\x80\x00\x00"],
    ids=["float64", "float16", "float-in-list"],
)
def test_loads_refuses_floats(data: bytes) -> None:
    with pytest.raises(DecodeError, match="float"):
        cbor.loads(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1\x01",  # epoch datetime
        b"\xc2\x41\x01",  # bignum
        b"\xd8\x1c\x81\x01",  # shareable value
        b"\xd9\xd9\xf7\x01",  # self-described CBOR
        b"\xd9\x27\x0f\x01",  # unknown tag 9999
        b"\xd9\x01\x02\x81\x01",  # tag 258: set
    ],
    ids=["datetime", "bignum", "shareable", "self-describe", "unknown", "set"],
)
def test_loads_refuses_every_tag(data: bytes) -> None:
    with pytest.raises(DecodeError, match="tag"):
        cbor.loads(data)


@pytest.mark.parametrize(
    "data",
    [b"\xa1\x01\x02", b"\xa1\x41k\x02", b"\xf7", b"\xe0", b"\x5f\x41a\xff", b"\x9f\xff"],
    ids=["int-key", "bytes-key", "undefined", "simple", "indefinite-bytes", "indefinite-list"],
)
def test_loads_refuses_other_forms_outside_the_data_model(data: bytes) -> None:
    with pytest.raises(DecodeError):
        cbor.loads(data)


def test_loads_rejects_truncated_input() -> None:
    encoded = cbor.dumps({"key": b"x" * 100, "list": [1, 2, 3]})
    for cut in range(len(encoded)):
        with pytest.raises(DecodeError):
            cbor.loads(encoded[:cut])


def test_loads_rejects_an_absurd_declared_length_without_allocating() -> None:
    with pytest.raises(DecodeError):
        cbor.loads(b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff")


def test_loads_rejects_invalid_utf8_text() -> None:
    with pytest.raises(DecodeError):
        cbor.loads(b"\x62\xff\xfe")


def test_loads_rejects_non_bytes_input() -> None:
    with pytest.raises(DecodeError):
        cbor.loads("text")


@pytest.mark.timeout(60)
def test_random_bytes_give_a_value_or_a_decode_error_never_another_exception() -> None:
    rng = random.Random(1234)
    decoded = 0
    for _ in range(20_000):
        data = rng.randbytes(rng.randint(1, 40))
        try:
            cbor.loads(data)
            decoded += 1
        except DecodeError:
            pass
    assert decoded > 0  # the loop also exercised the accepting path


@pytest.mark.timeout(60)
def test_mutated_valid_items_give_a_value_or_a_decode_error() -> None:
    rng = random.Random(99)
    seed = cbor.dumps({"a": [1, b"xy", {"b": None, "c": "text"}], "d": True})
    for _ in range(5_000):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            value = cbor.loads(bytes(data))
        except DecodeError:
            continue
        assert cbor2.loads(bytes(data)) == value
