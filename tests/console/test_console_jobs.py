"""Running jobs from the console and looking at them: output, receipts, the job list, cancel."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import example

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

JOB_ID = r"[0-9a-f]{32}"
OTHER_PEER = "12D3KooWBijfga2o1ickZA9pJYcJehC44SNoXyE11gfe4cADSRWA"  # a valid id, not the node's


def run_hello(console: Any) -> tuple[str, str]:
    """Run hello.wasm on "Hello, World"; (what the console printed, the job id)."""
    shown = console.command(f"run {example('hello')} --stdin 'Hello, World'")
    match = re.search(rf"job\s+({JOB_ID})", shown)
    assert match, shown
    return shown, match.group(1)


def test_run_prints_the_output_and_a_verified_receipt(console) -> None:
    shown, _ = run_hello(console)
    assert "dlroW ,olleH\n" in shown
    assert re.search(r"outcome\s+ok", shown)
    assert re.search(r"receipt\s+verified: signed by the executor's peer-ID key", shown)


def test_run_passes_arguments_after_the_module(console) -> None:
    shown = console.command(f"run {example('env_args')} first --env COLOUR=blue -- --second")
    assert "first" in shown and "--second" in shown and "COLOUR=blue" in shown


def test_run_reports_a_non_zero_exit_in_the_summary(console) -> None:
    shown = console.command(f"run {example('exit3')}")
    assert re.search(r"outcome\s+exit \(exit code 3\)", shown)
    assert "verified" in shown


def test_run_of_a_missing_file_says_so(console) -> None:
    assert "cannot read module nowhere.wasm: No such file or directory" in console.command(
        "run nowhere.wasm")


def test_run_out_of_fuel_shows_that_outcome(console) -> None:
    shown = console.command(f"run {example('loop')} --fuel 1000")
    assert re.search(r"outcome\s+out_of_fuel", shown)


def test_run_on_another_peer_without_the_network_answers_the_daemons_placement_error(
        console) -> None:
    shown = console.command(f"run {example('hello')} --on {OTHER_PEER}")
    assert "placement mode 'peer' needs the peer-to-peer network" in shown
    assert "run it without --on or --anywhere" in shown


def test_run_on_this_nodes_own_peer_id_runs_here(console, daemon) -> None:
    with daemon.client() as client:
        peer_id = client.node()["peer_id"]
    shown = console.command(f"run {example('hello')} --on {peer_id}")
    assert "Hello, World!" in shown
    assert re.search(rf"executor\s+{peer_id} \(this node\)", shown)


def test_run_with_a_requirement_but_not_anywhere_is_a_usage_error(console) -> None:
    shown = console.command(f"run {example('hello')} --require min_fuel=5")
    assert "--require only applies with --anywhere" in shown


def test_run_anywhere_answers_with_the_daemons_placement_error(console) -> None:
    shown = console.command(f"run {example('hello')} --anywhere")
    assert "placement mode 'any' needs the peer-to-peer network" in shown


def test_jobs_lists_the_job_just_run(console) -> None:
    _, job_id = run_hello(console)
    assert re.search(rf"{job_id}\s+done\s+ok", console.command("jobs"))


def test_receipt_shows_the_receipt_verified(console) -> None:
    _, job_id = run_hello(console)
    shown = console.command(f"receipt {job_id}")
    assert f"receipt of job {job_id}" in shown
    assert re.search(r"verdict\s+verified", shown)
    assert re.search(r"stdout sha256\s+[0-9a-f]{64} \(13 bytes\)", shown)


def test_receipt_accepts_the_first_characters_of_a_job_id(console) -> None:
    _, job_id = run_hello(console)
    assert f"receipt of job {job_id}" in console.command(f"receipt {job_id[:20]}")


def test_job_shows_status_output_and_verdict(console) -> None:
    _, job_id = run_hello(console)
    shown = console.command(f"job {job_id}")
    assert re.search(r"status\s+done", shown)
    assert "dlroW ,olleH" in shown
    assert "verified" in shown


def test_job_of_an_unknown_id_says_it_is_not_in_the_journal(console) -> None:
    assert f"no job {'0' * 32} in this node's journal" in console.command(f"job {'0' * 32}")


def test_ctrl_c_stops_waiting_and_cancel_stops_the_job(console) -> None:
    console.send(f"run {example('loop')} --fuel 100000000000 --timeout 120\n")
    job_id = console.expect(rf"job ({JOB_ID}) is (queued|running); waiting").group(1)
    console.send("\x03")
    console.expect(f"stopped waiting for job {job_id}; it keeps running")
    console.expect_prompt()
    assert f"job {job_id}: cancelled" in console.command(f"cancel {job_id}")
    assert re.search(rf"{job_id}\s+cancelled", console.command("jobs"))


def test_cancel_of_a_finished_job_says_nothing_is_left_to_cancel(console) -> None:
    _, job_id = run_hello(console)
    assert f"job {job_id} is already done; nothing to cancel" in console.command(
        f"cancel {job_id}")


def test_peers_says_the_node_runs_without_the_network(console) -> None:
    assert "this node runs without the peer-to-peer network" in console.command("peers")


def test_caps_of_another_peer_says_the_node_runs_without_the_network(console) -> None:
    shown = console.command(f"caps {OTHER_PEER}")
    assert "this node runs without the peer-to-peer network" in shown


def test_caps_without_a_peer_shows_this_nodes_capabilities(console) -> None:
    shown = console.command("caps")
    assert re.search(r"runtimes\s+wasi-preview1", shown)


def test_run_shows_a_spinner_while_it_waits_on_a_colour_terminal(
        console_factory, console_env, daemon) -> None:
    console_env.update(TERM="xterm-256color")
    del console_env["NO_COLOR"]
    terminal = console_factory("--socket", str(daemon.socket))
    terminal.expect_prompt()
    terminal.send(f"run {example('loop')} --fuel 100000000000 --timeout 2\n")
    terminal.expect(rf"running job {JOB_ID}  \(Ctrl-C stops waiting\)")
    terminal.expect(r"outcome\s+timeout")
    terminal.expect_prompt()


def test_verified_is_green_on_a_colour_terminal(console_factory, console_env, daemon) -> None:
    console_env.update(TERM="xterm-256color")
    del console_env["NO_COLOR"]
    terminal = console_factory("--socket", str(daemon.socket))
    terminal.expect_prompt()
    terminal.send(f"run {example('hello')}\n")
    terminal.expect("verified")
    assert b"\x1b[1;32mverified\x1b[0m" in terminal.raw


def test_run_with_reuse_local_shows_the_earlier_run_that_answered(console) -> None:
    command = f"run {example('hello')} --stdin 'once' --reuse local"
    _, first = re.search(rf"job\s+({JOB_ID})", console.command(command)).group(0).split()
    shown = console.command(command)
    assert f"did not run: the verified result of job {first}" in shown
    assert "ecno\n" in shown and "verified" in shown
