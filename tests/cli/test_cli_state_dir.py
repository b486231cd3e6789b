"""A state dir that is missing, misspelt, unmakeable or a file: one line, exit 2, nothing made."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import example, one_line_error, plasmd

pytestmark = pytest.mark.timeout(60)


def test_id_on_a_missing_directory_says_how_to_make_an_identity_and_makes_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "typo"
    message = one_line_error(plasmd("id", "--state-dir", missing))
    assert "no node identity" in message
    assert f"plasmd keygen --state-dir {missing}" in message
    assert not missing.exists()


def test_id_on_a_directory_without_a_key_makes_no_key(tmp_path: Path) -> None:
    message = one_line_error(plasmd("id", "--state-dir", tmp_path, "--json"))
    assert f"plasmd keygen --state-dir {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []


def test_keygen_then_id_shows_the_key_keygen_made(tmp_path: Path) -> None:
    made = plasmd("keygen", "--state-dir", tmp_path / "new")
    assert made.returncode == 0, made.stderr
    shown = plasmd("id", "--state-dir", tmp_path / "new")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] in made.stdout.splitlines()


@pytest.mark.parametrize(
    "command",
    [("id",), ("keygen",), ("execute-job", str(example("hello")))],
    ids=["id", "keygen", "execute-job"],
)
def test_a_file_as_state_dir_is_refused_in_one_line(command: tuple[str, ...]) -> None:
    message = one_line_error(plasmd(*command, "--state-dir", "/etc/passwd"))
    assert "/etc/passwd is not a directory" in message


@pytest.mark.parametrize(
    "command",
    [("keygen",), ("execute-job", str(example("hello")))],
    ids=["keygen", "execute-job"],
)
def test_a_state_dir_that_cannot_be_made_is_refused_in_one_line(command: tuple[str, ...]
                                                                ) -> None:
    message = one_line_error(plasmd(*command, "--state-dir", "/proc/plasm-nope"))
    assert "cannot make the state dir /proc/plasm-nope" in message


def test_execute_job_still_makes_its_state_dir_and_key_on_first_use(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    run = plasmd("execute-job", example("hello"), "--state-dir", fresh)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"Hello, World!\n"
    assert (fresh / "node.key").stat().st_mode & 0o777 == 0o600
