"""The committed example .wasm files are what their .wat sources build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[2] / "wasm-examples" / "build.py"


@pytest.mark.timeout(60)
def test_build_check_passes_on_committed_examples() -> None:
    result = subprocess.run(
        [sys.executable, str(BUILD), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(60)
def test_build_check_fails_on_a_stale_module(tmp_path: Path) -> None:
    copy = tmp_path / "build.py"
    copy.write_bytes(BUILD.read_bytes())
    (tmp_path / "tiny.wat").write_text('(module (func (export "_start")))')
    (tmp_path / "tiny.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00")
    result = subprocess.run(
        [sys.executable, str(copy), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "tiny.wasm" in result.stderr
