"""tighten_state_dir: group and other access go; what cannot be tightened is one clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plasm.keystore import KeyStoreError, tighten_state_dir

pytestmark = pytest.mark.timeout(30)


def _mode(path: Path) -> int:
    return path.lstat().st_mode & 0o777


def test_dirs_and_files_lose_group_and_other_bits_key_socket_and_links_are_left(
    tmp_path: Path,
) -> None:
    import socket

    state = tmp_path / "state"
    (state / "cache" / "modules").mkdir(parents=True)
    journal = state / "journal.sqlite3"
    journal.write_bytes(b"x")
    cached = state / "cache" / "modules" / "ab.cwasm"
    cached.write_bytes(b"x")
    key = state / "node.key"
    key.write_bytes(b"k" * 32)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not ours")
    (state / "link").symlink_to(elsewhere)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(state / "api.sock"))
    for path in (state, state / "cache", state / "cache" / "modules"):
        os.chmod(path, 0o755)
    for path in (journal, cached, key, elsewhere, state / "api.sock"):
        os.chmod(path, 0o644)
    try:
        tighten_state_dir(state)
    finally:
        sock.close()

    assert [_mode(p) for p in (state, state / "cache", state / "cache" / "modules")] == [0o700] * 3
    assert _mode(journal) == _mode(cached) == 0o600
    assert _mode(key) == 0o644  # refused later by load_key, not silently "fixed"
    assert _mode(elsewhere) == 0o644  # a symlink's target is not the state dir's
    assert _mode(state / "api.sock") == 0o644


def test_a_path_that_cannot_be_chmodded_is_one_error_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o777)

    def refuse(path: object, mode: int, **_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(KeyStoreError) as raised:
        tighten_state_dir(state)
    message = str(raised.value)
    assert str(state) in message and "0777" in message and "chmod -R go-rwx" in message
