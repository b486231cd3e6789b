"""The console as a shell: help, identity, mistakes, leaving, history, Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_help_lists_every_command(console) -> None:
    shown = console.command("help")
    for name in ("id", "status", "run", "jobs", "job", "receipt", "verify", "cancel",
                 "peers", "caps", "quit"):
        assert f"\n{name}" in "\n" + shown, f"help does not list {name}"


def test_help_for_run_explains_its_options(console) -> None:
    shown = console.command("help run")
    for option in ("--stdin", "--fuel", "--on PEER", "--anywhere", "--detach"):
        assert option in shown


def test_id_prints_the_daemons_peer_id(console, daemon) -> None:
    with daemon.client() as client:
        peer_id = client.node()["peer_id"]
    assert f"peer id     {peer_id}" in console.command("id")


def test_status_says_the_daemon_is_ok(console, daemon) -> None:
    shown = console.command("status")
    assert f"ok at {daemon.socket}" in shown
    assert "wasmtime" in shown


def test_unknown_command_suggests_the_close_one(console) -> None:
    shown = console.command("runn hello.wasm")
    assert "unknown command 'runn'; did you mean 'run'? (type help for the list)" in shown


def test_missing_argument_prints_the_usage(console) -> None:
    shown = console.command("receipt")
    assert "the following arguments are required: ID; usage: receipt ID" in shown


def test_unbalanced_quote_is_refused_clearly(console) -> None:
    assert "cannot read that line: no closing quotation" in console.command("run 'hello.wasm")


def test_quit_exits_with_status_zero(console) -> None:
    console.send("quit\n")
    assert console.wait_exit() == 0


def test_ctrl_d_exits_with_status_zero_after_a_failed_command(console) -> None:
    console.command("nonsense")
    console.send("\x04")
    assert console.wait_exit() == 0


def test_ctrl_c_at_the_prompt_drops_the_line_and_keeps_the_console(console) -> None:
    console.send("half a line")
    console.expect("half a line")  # readline's echo
    console.wait_until_reading_keys()
    console.send("\x03")
    console.expect_prompt()
    assert "peer id" in console.command("id")


def test_history_is_saved_on_quit(console, console_env) -> None:
    console.command("id")
    console.command("help")
    console.send("quit\n")
    assert console.wait_exit() == 0
    history = Path(console_env["PLASM_CONSOLE_HISTORY"]).read_text().splitlines()
    assert history[-3:] == ["id", "help", "quit"]


def test_up_arrow_recalls_the_previous_command(console) -> None:
    console.command("id")
    console.send("\x1b[A\n")  # the up-arrow key, then Enter
    console.expect("peer id")
    console.expect_prompt()
