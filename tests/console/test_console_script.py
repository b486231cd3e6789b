"""`plasm-console -c COMMAND`: commands from a script, and the program's --help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import example

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def plasm_console(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plasm.console", *args], capture_output=True,
                          text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_commands_run_in_order_and_exit_zero(daemon, console_env) -> None:
    done = plasm_console("--socket", str(daemon.socket), "-c",
                         f"run {example('hello')} --stdin abc", "-c", "jobs", env=console_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("cba") < done.stdout.index("done")


def test_a_failing_command_stops_the_script_with_status_one(daemon, console_env) -> None:
    done = plasm_console("--socket", str(daemon.socket), "-c", "cancel nothing", "-c", "id",
                         env=console_env)
    assert done.returncode == 1
    assert "no job id starts with 'nothing'" in done.stderr
    assert "peer id" not in done.stdout


def test_plasm_socket_names_the_daemon(daemon, console_env) -> None:
    done = plasm_console("-c", "status", env={**console_env, "PLASM_SOCKET": str(daemon.socket)})
    assert f"ok at {daemon.socket}" in done.stdout


def test_run_detach_prints_the_job_id_without_waiting(daemon, console_env) -> None:
    done = plasm_console("--socket", str(daemon.socket), "-c",
                         f"run {example('loop')} --timeout 60 --detach", env=console_env)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[1]
    with daemon.client() as client:
        assert client.job(job_id)["status"] in ("queued", "running")
        client.cancel(job_id)


def test_help_names_the_options_and_commands(console_env) -> None:
    done = plasm_console("--help", env=console_env)
    assert done.returncode == 0
    for text in ("--socket PATH", "-c COMMAND", "receipt", "verify", "PLASM_CONSOLE_HISTORY"):
        assert text in done.stdout


def test_console_script_is_installed() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "plasm-console")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
    assert done.stdout.startswith("plasm-console ")


def test_piped_lines_run_without_a_prompt(daemon, console_env) -> None:
    done = subprocess.run([sys.executable, "-m", "plasm.console", "--socket", str(daemon.socket)],
                          input="id\nbogus\njobs\n", capture_output=True, text=True,
                          env=console_env, timeout=60)
    assert "plasm> " not in done.stdout
    assert done.stdout.startswith("peer id")
    assert "unknown command 'bogus'" in done.stderr
    assert done.returncode == 1  # one of the lines failed


def test_piped_tables_are_not_cut_at_80_columns(daemon, console_env) -> None:
    env = {k: v for k, v in console_env.items() if k != "COLUMNS"}
    done = plasm_console("--socket", str(daemon.socket), "-c",
                         f"run {example('hello')} --stdin abc", "-c", "jobs", env=env)
    assert done.returncode == 0, done.stderr
    with daemon.client() as client:
        job_id = client.jobs(limit=1)[0]["job_id"]
    assert job_id in done.stdout  # a full 32-character id, not an ellipsis
    assert "…" not in done.stdout


def test_run_without_a_module_and_with_a_file_that_is_not_wasm_say_what_to_do(
    daemon, console_env, tmp_path
) -> None:
    done = plasm_console("--socket", str(daemon.socket), "-c", "run", env=console_env)
    assert done.returncode == 1
    assert "run needs the module to run" in done.stderr and "ARGS" not in done.stderr.split(
        "run needs")[0]
    text = tmp_path / "README.md"
    text.write_text("# not wasm\n")
    done = plasm_console("--socket", str(daemon.socket), "-c", f"run {text}", env=console_env)
    assert done.returncode == 1
    assert "is not a WebAssembly module" in done.stderr
    assert "verified" not in done.stdout
    with daemon.client() as client:
        assert client.jobs() == []  # nothing was submitted


def test_caps_shows_memory_as_peers_does_and_clear_exists(daemon, console_env) -> None:
    done = plasm_console("--socket", str(daemon.socket), "-c", "caps", "-c", "clear",
                         env=console_env)
    assert done.returncode == 0, done.stderr
    memory = next(line for line in done.stdout.splitlines() if "memory" in line)
    assert "iB" in memory and "," not in memory, memory  # 23.5 GiB, not 25,275,990,016
