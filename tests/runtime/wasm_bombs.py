"""Valid WebAssembly modules that are cheap to send and costly to compile.

``many_functions(count)``: a WASI command (``_start`` exported) with ``count`` empty
functions, written byte by byte (wasm binary format: type, function, export and code
sections, LEB128 lengths). A million functions is ~4 MB of wasm and took wasmtime ~88 s and
~5.9 GiB to compile in process. ``salt`` goes into a custom section, so modules that differ
only by it have different sha256s (a cache never knows them).
"""

from __future__ import annotations


def leb128(value: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + leb128(len(payload)) + payload


def many_functions(count: int, salt: int = 0) -> bytes:
    """A command module of ``count`` empty functions of type () -> (), the first one
    exported as ``_start``."""
    types = section(1, b"\x01\x60\x00\x00")  # one type: () -> ()
    functions = section(3, leb128(count) + b"\x00" * count)  # all of type 0
    exports = section(7, b"\x01\x06_start\x00\x00")  # "_start" = function 0
    empty_body = b"\x02\x00\x0b"  # 2 bytes: no locals, end
    code = section(10, leb128(count) + empty_body * count)
    custom = section(0, b"\x04salt" + salt.to_bytes(8, "little"))
    return b"\x00asm\x01\x00\x00\x00" + types + functions + exports + code + custom
