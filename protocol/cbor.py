"""Canonical CBOR encoding and strict decoding of untrusted bytes.

The data model is deliberately small: int (64-bit range), bool, None, text, bytes, lists
(tuples encode as lists) and maps with text keys. No floats (they make equal values encode
differently across languages), no sets, no tags, no indefinite lengths.

``loads`` is meant for hostile input. It checks, in this order: the size cap (before any
decoding, since cbor2 spends ~0.5 s and 80 MB on 1 MB of tiny items), then decodes one item
through ``cbor2.CBORDecoder`` on a ``BytesIO`` (``cbor2.loads`` silently ignores trailing
bytes, so we check the position reached the end), with duplicate keys refused, nesting depth
capped, indefinite lengths refused and every tag refused before its content is interpreted.
Finally it walks the result so nothing outside the data model gets through. Any failure is a
``DecodeError``; no other exception escapes.
"""

from __future__ import annotations

import io
from typing import Any, NoReturn

import cbor2

from plasm.protocol.errors import DecodeError

MAX_DEPTH = 32
DEFAULT_MAX_SIZE = 16 * 2**20
_INT_MIN = -(2**64)
_INT_MAX = 2**64 - 1


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as canonical CBOR; raise ``ValueError`` for anything outside the model."""
    _check_encodable(obj, 0)
    return cbor2.dumps(obj, canonical=True)


def _check_encodable(obj: Any, depth: int) -> None:
    if obj is None or isinstance(obj, bool | str | bytes):
        return
    if isinstance(obj, int):
        if not _INT_MIN <= obj <= _INT_MAX:
            raise ValueError(f"integer {obj} does not fit in 64 bits; CBOR bignums are refused")
        return
    if isinstance(obj, float):
        raise ValueError("floats are not allowed in plasm CBOR; use integers (ms, us, bytes)")
    if isinstance(obj, set | frozenset):
        raise ValueError("sets are not allowed in plasm CBOR; use a sorted list")
    if isinstance(obj, list | tuple | dict):
        if depth >= MAX_DEPTH:
            raise ValueError(f"nesting deeper than {MAX_DEPTH} levels is not allowed")
        if isinstance(obj, dict):
            for key, value in obj.items():
                if not isinstance(key, str):
                    raise ValueError(f"map keys must be text, got {type(key).__name__}")
                _check_encodable(value, depth + 1)
        else:
            for item in obj:
                _check_encodable(item, depth + 1)
        return
    raise ValueError(f"type {type(obj).__name__} cannot be encoded in plasm CBOR")


class _RefuseEveryTag(dict[int, Any]):
    """A ``semantic_decoders`` mapping that claims every tag, so cbor2 calls us *before*
    building a datetime, bignum, shared reference or anything else a tag can mean."""

    def __contains__(self, tag: object) -> bool:
        return True

    def __getitem__(self, tag: int) -> Any:
        return self.get(tag)

    def get(self, tag: int, default: Any = None) -> Any:
        def refuse(*_args: Any) -> NoReturn:
            raise DecodeError(f"CBOR tag {tag} is not allowed")

        return refuse


_REFUSE_EVERY_TAG = _RefuseEveryTag()


def _refuse_tag_hook(_decoder: Any, tag: Any) -> NoReturn:
    raise DecodeError(f"CBOR tag {getattr(tag, 'tag', '?')} is not allowed")


def loads(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, max_depth: int = MAX_DEPTH) -> Any:
    """Decode exactly one CBOR item from ``data`` strictly; raise ``DecodeError`` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes to decode, got {type(data).__name__}")
    size = len(data)
    if size > max_size:
        raise DecodeError(f"CBOR item of {size} bytes exceeds the {max_size}-byte cap")
    if size == 0:
        raise DecodeError("no bytes to decode: a CBOR item is at least one byte")
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(
            stream,
            tag_hook=_refuse_tag_hook,
            semantic_decoders=_REFUSE_EVERY_TAG,
            max_depth=max_depth,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        ).decode()
    except DecodeError:
        raise
    except Exception as exc:  # hostile bytes may trip any error inside the decoder
        cause = exc.__cause__
        if isinstance(cause, DecodeError):
            raise DecodeError(str(cause)) from exc
        raise DecodeError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != size:
        raise DecodeError(f"{size - stream.tell()} trailing bytes after the CBOR item")
    _check_decoded(value, 0, max_depth)
    return value


def _check_decoded(value: Any, depth: int, max_depth: int) -> None:
    if value is None or isinstance(value, bool | int | str | bytes):
        return
    if isinstance(value, list | dict):
        if depth >= max_depth:  # also stops cycles, should a reference ever get through
            raise DecodeError(f"CBOR nesting deeper than {max_depth} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise DecodeError(f"CBOR map key of type {type(key).__name__}; keys are text")
                _check_decoded(item, depth + 1, max_depth)
        else:
            for item in value:
                _check_decoded(item, depth + 1, max_depth)
        return
    raise DecodeError(f"CBOR value of type {type(value).__name__} is not allowed")
