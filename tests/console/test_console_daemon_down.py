"""No daemon: one clear line, the console stays, and finds the daemon once it runs."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_start_without_a_daemon_says_so_and_gives_a_prompt(console_factory, tmp_path) -> None:
    terminal = console_factory("--socket", str(tmp_path / "nobody.sock"))
    terminal.expect(f"no plasmd answers at {tmp_path / 'nobody.sock'}: is the daemon running?")
    terminal.expect_prompt()


def test_commands_without_a_daemon_fail_clearly_and_the_prompt_stays(
        console_factory, tmp_path) -> None:
    terminal = console_factory("--socket", str(tmp_path / "nobody.sock"))
    terminal.expect_prompt()
    assert "no plasmd answers at" in terminal.command("jobs")
    assert "unknown command" in terminal.command("bogus")
    terminal.send("quit\n")
    assert terminal.wait_exit() == 0


def test_a_daemon_started_later_is_found_by_the_next_command(console_factory,
                                                             daemon_factory) -> None:
    daemon = daemon_factory(start=False)
    terminal = console_factory("--socket", str(daemon.socket))
    terminal.expect_prompt()
    assert "no plasmd answers at" in terminal.command("id")
    daemon.start()
    assert "peer id     12D3KooW" in terminal.command("id")


def test_a_daemon_stopped_under_the_console_is_reported(console, daemon) -> None:
    daemon.stop()
    assert "no plasmd answers at" in console.command("status")
