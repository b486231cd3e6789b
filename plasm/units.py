"""Sizes and durations written the way people write them: ``"64MiB"``, ``"10s"``.

Both parsers take either an ``int`` (bytes, or milliseconds) or a string with an optional
unit, and return an ``int``. Fractions are allowed when the result is a whole number
(``"1.5KiB"`` is 1536 bytes, ``"0.5s"`` is 500 ms); anything else raises ``UnitError``,
a ``ValueError`` so callers such as argparse ``type=`` functions treat it as a bad value.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation

from plasm.errors import PlasmError

__all__ = ["UnitError", "format_size", "parse_duration_ms", "parse_size"]


class UnitError(PlasmError, ValueError):
    """A size or a duration could not be read; the message shows the accepted forms."""


_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "B": 1,
    "kB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}

_DURATION_UNITS_MS: dict[str, int] = {
    "": 1,
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
}

_NUMBER_WITH_UNIT = re.compile(r"\s*(?P<number>\d[\d_]*(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)\s*")


def parse_size(value: int | str) -> int:
    """Return a number of bytes from ``64MiB``, ``1.5GiB``, ``4096`` or an int.

    Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (kB, MB, GB, TB)
    powers of 1000; units are case-insensitive and a bare number means bytes.
    """
    return _parse(value, _SIZE_UNITS, "bytes", 'a size like "64MiB", "512KiB" or a number of bytes')


def parse_duration_ms(value: int | str) -> int:
    """Return milliseconds from ``10s``, ``500ms``, ``2m``, ``1h``, ``250`` or an int (ms)."""
    return _parse(
        value,
        _DURATION_UNITS_MS,
        "milliseconds",
        'a duration like "10s", "500ms", "2m" or a number of ms',
    )


def format_size(n: int) -> str:
    """Render bytes in the largest binary unit that divides them exactly (``67108864`` ->
    ``64MiB``), so ``parse_size(format_size(n)) == n``."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"


def human_size(n: int) -> str:
    """Bytes for people: ``1 GiB`` when a unit divides them, else one decimal in the largest
    unit not above them (``23.5 GiB``): what the peers table and the console show."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor:
            return f"{n // factor} {unit}" if n % factor == 0 else f"{n / factor:.1f} {unit}"
    return f"{n} B"


def _parse(value: int | str, units: dict[str, int], quantum: str, expected: str) -> int:
    if isinstance(value, bool):
        raise UnitError(f"expected {expected}, got {_quote(value)}")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"expected {expected}, got a negative number {value}")
        return value
    if not isinstance(value, str):
        raise UnitError(f"expected {expected}, got {_quote(value)}")
    match = _NUMBER_WITH_UNIT.fullmatch(value)
    if match is None:
        raise UnitError(f"expected {expected}, got {_quote(value)}")
    factor = next((f for u, f in units.items() if u.lower() == match["unit"].lower()), None)
    if factor is None:
        known = ", ".join(sorted({u for u in units if u}, key=lambda u: (units[u], u)))
        raise UnitError(
            f"unknown unit {_quote(match['unit'])} in {_quote(value)}; use one of {known}"
        )
    try:
        exact = Decimal(match["number"].replace("_", "")) * factor
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
        raise UnitError(f"expected {expected}, got {_quote(value)}") from exc
    if exact != exact.to_integral_value():
        raise UnitError(f"{_quote(value)} is not a whole number of {quantum}")
    return int(exact)


def _quote(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)
