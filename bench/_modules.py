"""WebAssembly modules made big for measurements and tests of large transfers."""

from __future__ import annotations

import os


def padded(module: bytes, size: int, *, random: bool = True) -> bytes:
    """`module` with a custom section of `size` bytes appended: valid wasm of about
    `len(module) + size` bytes with nothing more to compile. `random` fills it with random
    bytes (nothing compresses or deduplicates them); else with zeros."""
    name = b"pad"
    payload = bytes([len(name)]) + name + (os.urandom(size) if random else bytes(size))
    length, encoded = len(payload), b""
    while True:  # unsigned LEB128
        byte, length = length & 0x7F, length >> 7
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return module + b"\x00" + encoded + payload
