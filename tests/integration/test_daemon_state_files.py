"""The files a daemon trusts: a bad state dir, key path or token file is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_checks import write_config

from tests.conftest import Daemon, plasmd_command

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




def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_an_open_state_dir_and_its_files_are_tightened_at_start(
    tmp_path: Path, daemon_factory: Callable[..., Daemon], hello_wasm: bytes
) -> None:
    # A state dir left 0755 with journal files 0644 (made under a loose umask, or copied in).
    state = tmp_path / "state"
    first = daemon_factory(state)
    with first.client() as client:
        client.submit(module=hello_wasm, wait=10)
    first.stop()
    os.chmod(state, 0o755)
    # The key is left alone: one others could read is refused (it may have leaked).
    loose = [p for p in state.rglob("*") if p.is_file() and p.name != "node.key"]
    assert any(p.name.startswith("journal") for p in loose), loose
    for path in loose:
        os.chmod(path, 0o644)

    daemon_factory(state)

    assert _mode(state) == 0o700
    for path in state.rglob("*"):
        if path.is_dir():
            assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)))
        elif path.is_file():
            assert _mode(path) == 0o600, (path, oct(_mode(path)))

