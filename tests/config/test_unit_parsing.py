from __future__ import annotations

import pytest

from plasm.units import UnitError, format_size, parse_duration_ms, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64MiB", 64 * 2**20),
        ("64 MiB", 64 * 2**20),
        ("64mib", 64 * 2**20),
        ("512KiB", 512 * 1024),
        ("1GiB", 2**30),
        ("2TiB", 2 * 2**40),
        ("1.5KiB", 1536),
        ("1GB", 10**9),
        ("3kB", 3000),
        ("4096", 4096),
        ("4096B", 4096),
        ("1_000", 1000),
        (4096, 4096),
        (0, 0),
    ],
)
def test_parse_size_reads_bytes_and_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", 10_000),
        ("500ms", 500),
        ("2m", 120_000),
        ("2min", 120_000),
        ("1h", 3_600_000),
        ("0.5s", 500),
        ("250", 250),
        (250, 250),
    ],
)
def test_parse_duration_ms_reads_milliseconds_and_units(text: str | int, expected: int) -> None:
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize("bad", ["", "MiB", "-1MiB", "64 parsecs", "1.2.3KiB", "0x40"])
def test_parse_size_refuses_what_is_not_a_size(bad: str) -> None:
    with pytest.raises(UnitError):
        parse_size(bad)


def test_parse_size_names_the_units_it_knows() -> None:
    with pytest.raises(
        UnitError, match=r'unknown unit "parsecs" in "64 parsecs"; use one of .*MiB'
    ):
        parse_size("64 parsecs")


def test_parse_size_refuses_a_fraction_of_a_byte() -> None:
    with pytest.raises(UnitError, match="not a whole number of bytes"):
        parse_size("1.5B")


def test_parse_size_refuses_a_negative_int() -> None:
    with pytest.raises(UnitError, match="negative"):
        parse_size(-1)


def test_parse_size_refuses_a_bool() -> None:
    with pytest.raises(UnitError):
        parse_size(True)


def test_parse_duration_refuses_sub_millisecond_fractions() -> None:
    with pytest.raises(UnitError, match="not a whole number of milliseconds"):
        parse_duration_ms("1.5ms")


def test_parse_duration_refuses_a_size_unit() -> None:
    with pytest.raises(UnitError, match='unknown unit "MiB"'):
        parse_duration_ms("10MiB")


def test_unit_error_is_a_value_error_for_argparse() -> None:
    with pytest.raises(ValueError):
        parse_size("lots")


@pytest.mark.parametrize("n", [0, 1, 1023, 1024, 1536, 64 * 2**20, 2**30, 3 * 2**40])
def test_format_size_round_trips_through_parse_size(n: int) -> None:
    assert parse_size(format_size(n)) == n


def test_format_size_picks_the_largest_exact_unit() -> None:
    assert format_size(64 * 2**20) == "64MiB"
