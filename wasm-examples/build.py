"""Build the example modules: every ``*.wat`` and ``*.c`` here becomes the ``.wasm`` next to it.

``python wasm-examples/build.py`` rewrites the ``.wasm`` files and ``SHA256SUMS``; ``--check``
rebuilds everything into a temporary directory and exits 1 if a committed ``.wasm`` is missing or
differs from what its source gives, or if ``SHA256SUMS`` does not list exactly the committed
``.wasm`` files with their digests (CI runs this: receipts and tests pin the committed bytes).

WAT is assembled with ``wasmtime.wat2wasm``. C is compiled by Debian bookworm's clang with
wasi-libc (apt packages ``clang lld wasi-libc libclang-rt-dev-wasm32``) with the fixed flags in
``CLANG_FLAGS``: no debug info, every custom section stripped, the source directory mapped to
``.``, so a rebuild anywhere gives the same bytes. Without clang, building or checking a C module
fails with a message naming those packages.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import wasmtime

HERE = Path(__file__).resolve().parent
SUMS = "SHA256SUMS"
APT_PACKAGES = "clang lld wasi-libc libclang-rt-dev-wasm32"
# Debian installs wasi-libc under /usr with target subdirectories (/usr/include/wasm32-wasi,
# /usr/lib/wasm32-wasi), which is the layout clang expects of --sysroot=/usr.
CLANG_FLAGS = (
    "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
    "-g0", "-Wl,--strip-all",
)  # fmt: skip


class ToolchainMissing(Exception):
    """clang or wasi-libc is not installed."""


def build_wat(source: Path) -> bytes:
    return bytes(wasmtime.wat2wasm(source.read_text(encoding="utf-8")))


def build_c(source: Path) -> bytes:
    clang = shutil.which("clang")
    if clang is None or not Path("/usr/lib/wasm32-wasi/libc.a").exists():
        raise ToolchainMissing(
            f"building {source.name} needs clang with wasi-libc: "
            f"apt-get install {APT_PACKAGES}"
        )
    with tempfile.TemporaryDirectory(prefix="plasm-cbuild-") as scratch:
        out = Path(scratch) / source.with_suffix(".wasm").name
        command = [clang, *CLANG_FLAGS, f"-ffile-prefix-map={source.parent}=.", "-o", str(out),
                   str(source)]
        run = subprocess.run(command, capture_output=True, text=True, check=False,
                             cwd=source.parent)
        if run.returncode != 0:
            if "libclang_rt" in run.stderr or "wasm32-wasi" in run.stderr:
                raise ToolchainMissing(
                    f"building {source.name} failed; install apt-get install {APT_PACKAGES}:\n"
                    + run.stderr
                )
            raise RuntimeError(f"clang failed on {source.name}:\n{run.stderr}")
        return out.read_bytes()


BUILDERS = {".wat": build_wat, ".c": build_c}


def sources(directory: Path) -> list[Path]:
    found = sorted(p for p in directory.iterdir() if p.suffix in BUILDERS and p.is_file())
    stems = [p.stem for p in found]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        raise SystemExit(f"two sources build the same module: {', '.join(clashes)}")
    return found


def build_all(directory: Path, out_dir: Path) -> dict[str, bytes]:
    """Build every source in ``directory`` into ``out_dir``; returns module name -> bytes."""
    built: dict[str, bytes] = {}
    for source in sources(directory):
        wasm = BUILDERS[source.suffix](source)
        name = source.with_suffix(".wasm").name
        (out_dir / name).write_bytes(wasm)
        built[name] = wasm
    return built


def sums_text(modules: dict[str, bytes]) -> str:
    return "".join(f"{hashlib.sha256(modules[name]).hexdigest()}  {name}\n"
                   for name in sorted(modules))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="verify the committed .wasm files, write nothing"
    )
    args = parser.parse_args(argv)
    try:
        if not args.check:
            built = build_all(HERE, HERE)
            for name, wasm in built.items():
                print(f"built {name} ({len(wasm)} bytes)")
            (HERE / SUMS).write_text(sums_text(built), encoding="utf-8")
            return 0
        with tempfile.TemporaryDirectory(prefix="plasm-examples-") as scratch:
            built = build_all(HERE, Path(scratch))
    except ToolchainMissing as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 1
    stale = [name for name, wasm in built.items()
             if not (HERE / name).exists() or (HERE / name).read_bytes() != wasm]
    committed = {p.name: p.read_bytes() for p in HERE.glob("*.wasm")}
    problems: list[str] = []
    if stale:
        problems.append(f"stale or missing: {', '.join(stale)}")
    orphans = sorted(set(committed) - set(built))
    if orphans:
        problems.append(f"no source for: {', '.join(orphans)}")
    sums = HERE / SUMS
    if not sums.exists() or sums.read_text(encoding="utf-8") != sums_text(committed):
        problems.append(f"{SUMS} does not list the committed .wasm files")
    if problems:
        print("; ".join(problems) + "; run python wasm-examples/build.py and commit",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
