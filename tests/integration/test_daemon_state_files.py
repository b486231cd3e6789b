"""The files a daemon trusts: a bad state dir, key path or token file is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from daemon_checks import write_config

from tests.conftest import plasmd_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _run(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        plasmd_command("run", "--state-dir", str(state), "--socket", str(state.parent / "s.sock"),
                       "--no-network", *extra),
        capture_output=True, text=True, timeout=45, stdin=subprocess.DEVNULL,
    )


def _one_line_refusal(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("plasmd")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_token_file_others_can_read_is_refused_like_the_key(tmp_path: Path) -> None:
    token = tmp_path / "api.token"
    token.write_text("t" * 32 + "\n")
    os.chmod(token, 0o644)
    config = write_config(
        tmp_path, f'[api]\ntcp_listen = "127.0.0.1:0"\ntoken_file = "{token}"\n'
    )
    line = _one_line_refusal(_run(tmp_path / "state", "--config", str(config)))
    assert str(token) in line and "chmod 600" in line


def test_a_key_path_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "node.key").mkdir(parents=True)
    line = _one_line_refusal(_run(state))
    assert "node.key" in line


def test_a_read_only_state_dir_is_one_line(tmp_path: Path) -> None:
    state = tmp_path / "ro"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(state)], check=True)
    try:
        line = _one_line_refusal(_run(state))
        assert str(state) in line
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


