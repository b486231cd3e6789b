"""Build the example modules: every ``*.wat`` here becomes the ``.wasm`` next to it.

``python wasm-examples/build.py`` rewrites the ``.wasm`` files; ``--check`` rebuilds in memory
and exits 1 if a committed ``.wasm`` is missing or differs from what its ``.wat`` gives (CI runs
this so the committed bytes, which receipts and tests pin, always match the sources). The only
tool used is ``wasmtime.wat2wasm``: no external toolchain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import wasmtime

HERE = Path(__file__).resolve().parent


def build(wat_path: Path) -> bytes:
    return bytes(wasmtime.wat2wasm(wat_path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="verify the committed .wasm files, write nothing"
    )
    args = parser.parse_args(argv)
    stale: list[str] = []
    for wat_path in sorted(HERE.glob("*.wat")):
        wasm_path = wat_path.with_suffix(".wasm")
        wasm = build(wat_path)
        if args.check:
            if not wasm_path.exists() or wasm_path.read_bytes() != wasm:
                stale.append(wasm_path.name)
        else:
            wasm_path.write_bytes(wasm)
            print(f"built {wasm_path.name} ({len(wasm)} bytes)")
    if stale:
        print(
            f"stale or missing: {', '.join(stale)}; run python wasm-examples/build.py and commit",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
