"""The C example modules (clang + wasi-libc) run in the sandbox and rebuild byte for byte."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from plasm.runtime.job import Limits, Outcome, OutcomeKind

RunExample = Callable[..., Outcome]  # the run_example fixture of conftest.py
EXAMPLES = Path(__file__).resolve().parents[2] / "wasm-examples"

BUILD = EXAMPLES / "build.py"
C_MODULES = ("clock_floats", "copyfiles", "primes", "sha256sum", "wc")


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wasm_examples_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("n", "count"), [("1000", b"168\n"), ("100000", b"9592\n"),
                                          ("2", b"0\n"), ("3", b"1\n")])
def test_primes_counts_the_primes_below_n(run_example: RunExample, n: str, count: bytes) -> None:
    outcome = run_example("primes", args=(n,))
    assert (outcome.kind, outcome.stdout, outcome.stderr) == (OutcomeKind.OK, count, b"")


def test_primes_without_an_argument_counts_below_100000(run_example: RunExample) -> None:
    assert run_example("primes").stdout == b"9592\n"


def test_primes_fuel_is_deterministic_and_grows_with_n(run_example: RunExample) -> None:
    small = run_example("primes", args=("1000",))
    again = run_example("primes", args=("1000",))
    large = run_example("primes", args=("100000",))
    assert small.fuel_consumed == again.fuel_consumed
    assert large.fuel_consumed > 10 * small.fuel_consumed


def test_primes_rejects_a_bad_n(run_example: RunExample) -> None:
    outcome = run_example("primes", args=("12x",))
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXIT, 2)
    assert outcome.stderr.startswith(b"usage: primes")


@pytest.mark.parametrize(("stdin", "counts"), [
    (b"a b\nc\n", b"2 3 6\n"),
    (b"", b"0 0 0\n"),
    (b"  one\ttwo  \r\nthree", b"1 3 18\n"),
    (b"x" * 200_000 + b"\n", b"1 1 200001\n"),
])
def test_wc_counts_lines_words_and_bytes(run_example: RunExample, stdin: bytes,
                                         counts: bytes) -> None:
    outcome = run_example("wc", stdin=stdin)
    assert (outcome.kind, outcome.stdout) == (OutcomeKind.OK, counts)


def test_sha256sum_writes_the_manifest_of_the_input_files(run_example: RunExample) -> None:
    files = (("/input/b.txt", b"hello\n"), ("/input/a/empty", b""), ("/other/x", b"x"))
    outcome = run_example("sha256sum", files=files)
    manifest = (
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a/empty\n"
        b"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  b.txt\n"
    )
    assert (outcome.kind, outcome.stdout, outcome.stderr) == (OutcomeKind.OK, manifest, b"")
    assert outcome.output_files == (("/output/SHA256SUMS", manifest),)


def test_copyfiles_copies_the_input_tree_to_output(run_example: RunExample) -> None:
    files = (("/input/a/b/deep.bin", bytes(range(256)) * 1000), ("/input/top.txt", b"top\n"),
             ("/input/empty", b""), ("/elsewhere/skipped", b"s"))
    outcome = run_example("copyfiles", files=files)
    assert (outcome.kind, outcome.stderr) == (OutcomeKind.OK, b"")
    assert outcome.stdout == b"256000 a/b/deep.bin\n0 empty\n4 top.txt\n"
    assert outcome.output_files == (("/output/a/b/deep.bin", files[0][1]),
                                    ("/output/empty", b""), ("/output/top.txt", b"top\n"))


def test_copyfiles_fails_with_edquot_when_output_is_full(run_example: RunExample) -> None:
    outcome = run_example("copyfiles", files=(("/input/big", b"x" * 200_000),),
                          limits=Limits(max_output_files_bytes=100_000))
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXIT, 1)
    assert outcome.stderr.startswith(b"copyfiles: cannot write /output/big: ")  # EDQUOT
    assert outcome.outputs_truncated
    assert outcome.output_files == (("/output/big", b"x" * 100_000),)


def test_sha256sum_without_input_files_writes_an_empty_manifest(run_example: RunExample) -> None:
    outcome = run_example("sha256sum")
    assert (outcome.kind, outcome.stdout, outcome.stderr) == (OutcomeKind.OK, b"", b"")
    assert outcome.output_files == (("/output/SHA256SUMS", b""),)


def test_sha256sum_says_so_when_it_cannot_write_its_manifest(run_example: RunExample) -> None:
    outcome = run_example("sha256sum", files=(("/input/b", b"b"),),
                          limits=Limits(max_output_files_bytes=10))
    assert (outcome.kind, outcome.exit_code) == (OutcomeKind.EXIT, 1)
    assert outcome.stderr.startswith(b"sha256sum: ")
    assert outcome.outputs_truncated


@pytest.mark.timeout(120)
def test_c_modules_rebuild_byte_identical_from_another_place(tmp_path: Path) -> None:
    build = load_build()
    builds = []
    for place in ("first", "second/deeper"):
        source_dir = tmp_path / place / "src"
        out_dir = tmp_path / place / "out"
        source_dir.mkdir(parents=True)
        out_dir.mkdir()
        for name in C_MODULES:
            shutil.copy(EXAMPLES / f"{name}.c", source_dir)
        builds.append(build.build_all(source_dir, out_dir))
    assert sorted(builds[0]) == [f"{name}.wasm" for name in C_MODULES]
    assert builds[0] == builds[1]
    for name in C_MODULES:
        assert builds[0][f"{name}.wasm"] == (EXAMPLES / f"{name}.wasm").read_bytes()
        assert b"/tmp" not in builds[0][f"{name}.wasm"]


@pytest.mark.timeout(120)
def test_check_without_clang_fails_naming_the_apt_packages(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin)}
    result = subprocess.run([sys.executable, str(BUILD), "--check"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert "clang lld wasi-libc libclang-rt-dev-wasm32" in result.stderr
    first = sorted(p.name for p in BUILD.parent.glob("*.c"))[0]
    assert f"building {first} needs clang" in result.stderr  # the first C source, by name


@pytest.mark.timeout(120)
def test_check_fails_when_sha256sums_is_wrong(tmp_path: Path) -> None:
    copy = tmp_path / "build.py"
    copy.write_bytes(BUILD.read_bytes())
    (tmp_path / "tiny.wat").write_text('(module (func (export "_start")))')
    assert subprocess.run([sys.executable, str(copy)], capture_output=True,
                          timeout=120).returncode == 0
    assert subprocess.run([sys.executable, str(copy), "--check"], capture_output=True,
                          timeout=120).returncode == 0
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  tiny.wasm\n")
    result = subprocess.run([sys.executable, str(copy), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "SHA256SUMS" in result.stderr
