"""`verify FILE`: saved results checked offline, tampering caught."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import example, plasmd_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def saved_result(tmp_path: Path) -> Path:
    """A job result as `plasmd execute-job --json` writes it."""
    done = subprocess.run(
        plasmd_command("execute-job", "--state-dir", str(tmp_path / "node"), "--json",
                       "--stdin", "Hello, World", str(example("hello"))),
        capture_output=True, check=True, timeout=60)
    path = tmp_path / "result.json"
    path.write_bytes(done.stdout)
    return path


def test_verify_says_a_saved_result_is_verified(console, saved_result: Path) -> None:
    shown = " ".join(console.command(f"verify {saved_result}").split())
    assert ("verdict verified: signed by the executor's peer-ID key; "
            "every field of the result matches it") in shown


def test_verify_says_a_result_with_changed_output_is_not_verified(
        console, saved_result: Path) -> None:
    result = orjson.loads(saved_result.read_bytes())
    result["stdout"] = base64.b64encode(b"Goodbye\n").decode()
    saved_result.write_bytes(orjson.dumps(result))
    shown = console.command(f"verify {saved_result}")
    assert "NOT verified: hash_mismatch" in shown


def test_verify_of_a_json_object_that_is_no_receipt_says_so(console, tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    shown = " ".join(console.command(f"verify {tmp_path / 'notes.json'}").split())
    assert ("notes.json is no job result or receipt: malformed: "
            "a receipt in JSON has a 'cose' string") in shown


def test_verify_of_bytes_that_are_no_envelope_says_not_verified(console, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("just some words")
    shown = console.command(f"verify {tmp_path / 'notes.txt'}")
    assert "NOT verified: malformed: the receipt cannot be decoded" in shown


def test_verify_works_without_a_daemon(console_factory, tmp_path: Path,
                                       saved_result: Path) -> None:
    terminal = console_factory("--socket", str(tmp_path / "nobody.sock"))
    terminal.expect_prompt()
    assert "verified: signed" in terminal.command(f"verify {saved_result}")
