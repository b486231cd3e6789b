"""`plasmd` itself: version, help, and what the light commands import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from cli_runs import example, plasmd

from plasm._version import __version__
from plasm.cli import COMMANDS

pytestmark = pytest.mark.timeout(60)


def test_version_prints_the_package_version() -> None:
    run = plasmd("--version")
    assert (run.returncode, run.stdout.decode().strip()) == (0, f"plasmd {__version__}")


def test_help_lists_every_command() -> None:
    run = plasmd("--help")
    assert run.returncode == 0
    for name in ("run", "execute-job", "submit", "jobs", "job", "cancel", "peers", "verify",
                 "id", "keygen"):
        assert name in COMMANDS
        assert f"    {name}" in run.stdout.decode()


def test_no_command_prints_help_and_exits_2() -> None:
    run = plasmd()
    assert run.returncode == 2
    assert b"COMMAND" in run.stderr


def test_an_unknown_command_exits_2() -> None:
    run = plasmd("frobnicate")
    assert run.returncode == 2
    assert b"invalid choice" in run.stderr


@pytest.mark.parametrize("command", ["execute-job", "submit", "verify", "run"])
def test_each_command_has_help(command: str) -> None:
    run = plasmd(command, "--help")
    assert run.returncode == 0
    assert b"usage: plasmd " + command.encode() in run.stdout


def modules_loaded_by(argv: list[str], tmp_path: Path) -> list[str]:
    """The top-level modules loaded in a fresh interpreter after `plasmd ARGV` ran."""
    out = tmp_path / "modules.json"
    script = textwrap.dedent(f"""
        import sys, json
        from plasm.cli import main
        code = main({argv!r})
        loaded = sorted({{name.split(".")[0] for name in sys.modules}})
        with open({str(out)!r}, "w") as f:
            json.dump({{"code": code, "modules": loaded}}, f)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stderr.decode()
    answer = orjson.loads(out.read_bytes())
    assert answer["code"] == 0
    return list(answer["modules"])


def test_execute_job_does_not_import_the_network_stack(tmp_path: Path) -> None:
    loaded = modules_loaded_by(
        ["execute-job", str(example("hello")), "--state-dir", str(tmp_path / "s")], tmp_path)
    assert "wasmtime" in loaded  # it did run the job
    assert not {"libp2p", "trio", "multiaddr"} & set(loaded)


def test_verify_imports_neither_wasmtime_nor_the_network_stack(tmp_path: Path) -> None:
    state = tmp_path / "s"
    result = plasmd("execute-job", example("hello"), "--state-dir", state, "--json")
    saved = tmp_path / "result.json"
    saved.write_bytes(result.stdout)
    loaded = modules_loaded_by(["verify", str(saved)], tmp_path)
    assert not {"libp2p", "trio", "wasmtime", "pykka"} & set(loaded)
