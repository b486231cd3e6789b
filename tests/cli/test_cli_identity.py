"""`plasmd id` and `plasmd keygen`: a stable identity that is never overwritten or leaked."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from cli_runs import example, one_line_error, plasmd

from plasm.protocol.identity import peer_id_from_public_key

pytestmark = pytest.mark.timeout(60)


def test_id_is_the_same_on_every_run(tmp_path: Path) -> None:
    assert plasmd("keygen", "--state-dir", tmp_path).returncode == 0
    first = plasmd("id", "--state-dir", tmp_path)
    second = plasmd("id", "--state-dir", tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith(b"peer ID     12D3KooW")


def test_id_json_gives_a_peer_id_that_names_the_public_key(tmp_path: Path) -> None:
    assert plasmd("keygen", "--state-dir", tmp_path).returncode == 0
    answer = orjson.loads(plasmd("id", "--state-dir", tmp_path, "--json").stdout)
    assert answer["peer_id"] == peer_id_from_public_key(bytes.fromhex(answer["public_key"]))


def test_keygen_makes_a_key_readable_by_its_owner_only(tmp_path: Path) -> None:
    run = plasmd("keygen", "--state-dir", tmp_path)
    assert run.returncode == 0, run.stderr
    assert (os.stat(tmp_path / "node.key").st_mode & 0o777) == 0o600
    shown = orjson.loads(plasmd("id", "--state-dir", tmp_path, "--json").stdout)
    assert shown["peer_id"] in run.stdout.decode()


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    plasmd("keygen", "--state-dir", tmp_path)
    before = (tmp_path / "node.key").read_bytes()
    again = plasmd("keygen", "--state-dir", tmp_path)
    assert "never overwritten" in one_line_error(again)
    assert (tmp_path / "node.key").read_bytes() == before


@pytest.mark.parametrize("command", [("id",), ("execute-job", str(example("hello")))])
def test_a_key_file_readable_by_others_is_refused(tmp_path: Path, command: tuple[str, ...]
                                                  ) -> None:
    plasmd("keygen", "--state-dir", tmp_path)
    os.chmod(tmp_path / "node.key", 0o644)
    run = plasmd(*command, "--state-dir", tmp_path)
    message = one_line_error(run)
    assert "0644" in message
    assert "chmod 600" in message
    assert run.stdout == b""


def test_a_key_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "node.key"
    key.write_bytes(b"short")
    os.chmod(key, 0o600)
    assert "32-byte" in one_line_error(plasmd("id", "--state-dir", tmp_path))
