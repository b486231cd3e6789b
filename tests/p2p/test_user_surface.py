"""What a person sees of the network: `plasmd submit --on/--anywhere`, `plasmd peers`,
GET /v1/peers/{id}, and the console's `peers`, `caps` and `run --anywhere`, against
three real daemons on loopback.

  A  the seed; default maximum limits
  B  bootstraps from A; maximum fuel 1e9, so it refuses jobs that need more
  R  bootstraps from A; the node every test talks to
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from plasm.client import ApiRequestError
from plasm.protocol.verification import expectations_from_saved, verify_saved
from tests.conftest import EXAMPLES, Daemon, example, plasmd_command, running_daemons
from tests.console.conftest import (  # noqa: F401 - fixtures used by name
    ConsoleFactory,
    ConsoleTerminal,
    console_env,
    console_factory,
)
from tests.p2p.conftest import peer_id_of, seed_address, verified_peers, wait_until, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

B_MAX_FUEL = 1_000_000_000


@dataclass
class Trio:
    a: Daemon
    b: Daemon
    r: Daemon
    a_id: str
    b_id: str
    r_id: str


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    tmp = tmp_path_factory.mktemp("surface")
    with running_daemons(tmp_path_factory) as make:
        a = make(network=True)
        seed = seed_address(a)
        b = make(None, "--bootstrap", seed, network=True,
                 config=write_config(tmp, "b", f"[limits.max]\nfuel = {B_MAX_FUEL}\n"))
        r = make(None, "--bootstrap", seed, network=True)
        found = Trio(a, b, r, peer_id_of(a), peer_id_of(b), peer_id_of(r))
        wait_until(lambda: {found.a_id, found.b_id} <= verified_peers(r),
                   "R to verify the capability records of A and B")
        yield found


def plasmd_at(node: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(plasmd_command(*args, "--socket", str(node.socket)),
                          capture_output=True, text=True, timeout=60, check=False)


def verified(result: dict[str, Any]) -> bool:
    envelope, expected = expectations_from_saved(orjson.dumps(result))
    return bool(verify_saved(envelope, expected)["valid"])


def test_submit_on_a_peer_runs_the_job_there(nodes: Trio) -> None:
    run = plasmd_at(nodes.r, "submit", str(example("hello")), "--stdin", "abc",
                    "--on", nodes.a_id, "--wait=30", "--json")
    assert run.returncode == 0, run.stderr
    result = orjson.loads(run.stdout)
    assert (result["executor"], result["stdout_text"]) == (nodes.a_id, "cba\n")
    assert result["receipt"]["body"]["requester"] == nodes.r_id
    assert verified(result)


def test_submit_on_a_peer_prints_the_output_and_who_ran_it(nodes: Trio) -> None:
    run = plasmd_at(nodes.r, "submit", str(example("hello")), "--on", nodes.b_id,
                    "--wait=30")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Hello, World!\n"
    assert f"ran on peer {nodes.b_id}" in run.stderr


def test_submit_anywhere_picks_the_peer_that_meets_the_requirements(nodes: Trio) -> None:
    # Only A may burn 5e9 fuel (B's maximum is 1e9), and R itself is excluded.
    run = plasmd_at(nodes.r, "submit", str(example("hello")), "--anywhere",
                    "--require", "min_fuel=5000000000", "--fuel", "5000000000",
                    "--wait=30", "--json")
    assert run.returncode == 0, run.stderr
    result = orjson.loads(run.stdout)
    assert result["executor"] == nodes.a_id
    assert verified(result)


def test_submit_prints_the_peers_rejection_reason_and_exits_1(nodes: Trio) -> None:
    run = plasmd_at(nodes.r, "submit", str(example("hello")), "--on", nodes.b_id,
                    "--fuel", str(2 * B_MAX_FUEL), "--wait=30")
    assert run.returncode == 125  # the job did not run: plasmd's own status
    assert "(no_executor)" in run.stderr
    assert f"tried {nodes.b_id}: limits_exceeded" in run.stderr
    assert "Traceback" not in run.stderr


def test_submit_anywhere_with_an_unmet_requirement_says_no_peer_fits(nodes: Trio) -> None:
    run = plasmd_at(nodes.r, "submit", str(example("hello")), "--anywhere",
                    "--require", "arch=no-such-arch", "--wait=30")
    assert run.returncode == 125  # the job did not run: plasmd's own status
    assert "no_executor" in run.stderr


def test_peers_lists_each_peer_with_what_it_offers(nodes: Trio) -> None:
    run = plasmd_at(nodes.r, "peers")
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    assert header.split()[:3] == ["peer", "id", "connected"]
    by_id = {row.split()[0]: row for row in rows}
    assert {nodes.a_id, nodes.b_id} <= set(by_id)
    assert re.search(r"\byes\b.*wasi-preview1\s+1,000,000,000\s", by_id[nodes.b_id])
    assert f"/p2p/{nodes.a_id}" in by_id[nodes.a_id]


def test_peers_json_is_the_apis_peer_list(nodes: Trio) -> None:
    run = plasmd_at(nodes.r, "peers", "--json")
    assert run.returncode == 0, run.stderr
    peers = {peer["peer_id"]: peer for peer in orjson.loads(run.stdout)["peers"]}
    assert peers[nodes.b_id]["capabilities"]["max_limits"]["fuel"] == B_MAX_FUEL
    assert peers[nodes.a_id]["connected"] is True


def test_the_api_answers_one_peer_by_its_id(nodes: Trio) -> None:
    with nodes.r.client() as client:
        peer = client.peer(nodes.a_id)
        assert peer["peer_id"] == nodes.a_id
        assert peer["capabilities"]["peer_id"] == nodes.a_id
        with pytest.raises(ApiRequestError) as refused:
            client.peer("12D3KooWBijfga2o1ickZA9pJYcJehC44SNoXyE11gfe4cADSRWA")
    assert (refused.value.status, refused.value.code) == (404, "unknown_peer")


@pytest.fixture
def console(console_factory: ConsoleFactory, nodes: Trio) -> ConsoleTerminal:  # noqa: F811
    terminal = console_factory("--socket", str(nodes.r.socket), cwd=EXAMPLES)
    terminal.expect("connected to plasmd")
    terminal.expect_prompt()
    return terminal


def test_console_peers_shows_the_peer_table(console: ConsoleTerminal, nodes: Trio) -> None:
    shown = console.command("peers")
    assert nodes.a_id in shown and nodes.b_id in shown
    assert re.search(rf"{nodes.b_id}\s+yes\s.*wasi-preview1\s+1G\s", shown)


def test_console_caps_shows_a_peers_capability_record(
        console: ConsoleTerminal, nodes: Trio) -> None:
    shown = console.command(f"caps {nodes.b_id[:20]}")
    assert re.search(rf"peer id\s+{nodes.b_id}", shown)
    assert re.search(rf"max limits\s+fuel={B_MAX_FUEL},", shown)
    assert re.search(r"runtimes\s+wasi-preview1", shown)


def test_console_caps_of_an_unknown_peer_says_so(console: ConsoleTerminal) -> None:
    shown = console.command("caps 12D3KooWnobody")
    assert "this node knows no peer '12D3KooWnobody'" in shown


def test_console_run_anywhere_runs_on_a_peer_and_verifies_its_receipt(
        console: ConsoleTerminal, nodes: Trio) -> None:
    shown = console.command("run hello.wasm --stdin xyz --anywhere", timeout=60)
    assert "zyx" in shown
    executor = re.search(r"executor\s+(\S+) \(remote peer\)", shown)
    assert executor is not None, shown
    assert executor.group(1) in (nodes.a_id, nodes.b_id)
    assert re.search(r"receipt\s+verified: signed by the executor's peer-ID key", shown)


def test_console_run_on_a_refusing_peer_shows_its_reason(
        console: ConsoleTerminal, nodes: Trio) -> None:
    shown = console.command(
        f"run hello.wasm --on {nodes.b_id} --fuel {2 * B_MAX_FUEL}", timeout=60)
    assert f"tried {nodes.b_id}: limits_exceeded" in shown
