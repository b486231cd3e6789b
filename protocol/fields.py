"""Dataclasses to and from the CBOR data model, driven by their type hints.

Encoding follows the value: a dataclass becomes a map of its fields, an enum its value, a
tuple a list. Decoding follows the *declared* type, because the bytes come from a peer: every
field must be present, no other key may be, and each value must have exactly the declared type
(``True`` is not an int, a list is not bytes) before the dataclass is built. Errors name the
path of the offending field.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from typing import Any

from plasm.protocol.errors import DecodeError

_SCALARS = frozenset({int, str, bytes, bool, type(None)})


def to_data(value: Any) -> Any:
    """A value made of plain CBOR-model types (dicts, lists, ints, text, bytes, bools, None)."""
    if type(value) in _SCALARS:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_data(getattr(value, field.name)) for field in _fields(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_data(item) for item in value]
    if isinstance(value, dict):
        return {key: to_data(item) for key, item in value.items()}
    return value


@functools.cache
def _fields(cls: Any) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """Resolved field types of ``cls`` (resolved once: ``get_type_hints`` is slow)."""
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = typing.get_type_hints(cls)
        hints = _HINTS[cls] = {field.name: resolved[field.name] for field in _fields(cls)}
    return hints


def from_data(cls: type[Any], raw: Any, path: str = "$") -> Any:
    """Build dataclass ``cls`` from decoded CBOR ``raw``; ``DecodeError`` naming the path."""
    if not isinstance(raw, dict):
        raise DecodeError(f"{path}: expected a map for {cls.__name__}, got {_kind(raw)}")
    hints = _hints(cls)
    missing = sorted(set(hints) - set(raw))
    extra = sorted(set(raw) - set(hints))
    if missing or extra:
        raise DecodeError(
            f"{path}: {cls.__name__} fields do not match (missing {missing}, unexpected {extra})"
        )
    values = {name: _value(hint, raw[name], f"{path}.{name}") for name, hint in hints.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise DecodeError(f"{path}: invalid {cls.__name__}: {exc}") from exc


def _value(hint: Any, raw: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(hint), raw, path)
    if origin is tuple:
        return _tuple(typing.get_args(hint), raw, path)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if key_hint is not str or not isinstance(raw, dict):
            raise DecodeError(f"{path}: expected a map with text keys, got {_kind(raw)}")
        return {key: _value(value_hint, item, f"{path}.{key}") for key, item in raw.items()}
    if hint is type(None):
        if raw is not None:
            raise DecodeError(f"{path}: expected null, got {_kind(raw)}")
        return None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(raw)
        except ValueError:
            raise DecodeError(f"{path}: {raw!r} is not a {hint.__name__} value") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_data(hint, raw, path)
    if hint in (bool, int, str, bytes):
        if type(raw) is not hint:
            raise DecodeError(f"{path}: expected {hint.__name__}, got {_kind(raw)}")
        return raw
    raise TypeError(f"{path}: type {hint!r} is not supported in messages")


def _union(options: tuple[Any, ...], raw: Any, path: str) -> Any:
    errors = []
    for option in options:
        try:
            return _value(option, raw, path)
        except DecodeError as exc:
            errors.append(str(exc))
    raise DecodeError(" / ".join(errors))


def _tuple(args: tuple[Any, ...], raw: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(raw, list):
        raise DecodeError(f"{path}: expected a list, got {_kind(raw)}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_value(args[0], item, f"{path}[{i}]") for i, item in enumerate(raw))
    if len(raw) != len(args):
        raise DecodeError(f"{path}: expected {len(args)} items, got {len(raw)}")
    pairs = enumerate(zip(args, raw, strict=True))
    return tuple(_value(arg, item, f"{path}[{i}]") for i, (arg, item) in pairs)


def _kind(raw: Any) -> str:
    return {dict: "a map", list: "a list", type(None): "null"}.get(type(raw), type(raw).__name__)
