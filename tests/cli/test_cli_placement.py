"""`plasmd submit --on/--anywhere/--require` and `plasmd peers` against a node without the
network: the options are checked before anything is sent, and the node's refusal is clear.
(With real peers: tests/p2p/test_user_surface.py.)"""

from __future__ import annotations

import pytest
from cli_runs import example, one_line_error, plasmd

from plasm.commands._options import UsageError
from plasm.commands.submit import failure_lines, parse_requirements

pytestmark = pytest.mark.timeout(60)

OTHER_PEER = "12D3KooWBijfga2o1ickZA9pJYcJehC44SNoXyE11gfe4cADSRWA"  # valid, belongs to no one


def test_requirements_are_parsed_with_numbers_as_ints() -> None:
    wanted = parse_requirements(["min_fuel=5_000_000_000", "arch=x86_64", "os=linux"])
    assert wanted == {"min_fuel": 5_000_000_000, "arch": "x86_64", "os": "linux"}


@pytest.mark.parametrize("pair", ["min_fuel", "min_fuel=", "colour=blue", "min_fuel=lots"])
def test_a_malformed_requirement_is_refused(pair: str) -> None:
    with pytest.raises(UsageError, match="--require"):
        parse_requirements([pair])


def test_a_failure_lists_every_peer_tried_with_its_result() -> None:
    lines = failure_lines({
        "job_id": "j", "status": "failed",
        "error": {"code": "no_executor", "message": "no peer ran the job",
                  "attempts": [{"peer_id": "P1", "result": "busy"},
                               {"peer_id": "P2", "result": "receipt_hash_mismatch"}]},
    })
    assert lines == ["job j failed: no peer ran the job (no_executor)",
                     "  tried P1: busy", "  tried P2: receipt_hash_mismatch"]


def test_on_and_anywhere_cannot_be_given_together() -> None:
    run = plasmd("submit", example("hello"), "--on", OTHER_PEER, "--anywhere")
    assert run.returncode == 2
    assert b"not allowed with argument" in run.stderr


def test_require_without_anywhere_is_a_usage_error(daemon) -> None:
    run = plasmd("submit", example("hello"), "--require", "min_fuel=5", "--socket", daemon.socket)
    assert "--require only applies with --anywhere" in one_line_error(run)


def test_submit_on_a_peer_without_the_network_is_refused_by_the_node(daemon) -> None:
    run = plasmd("submit", example("hello"), "--on", OTHER_PEER, "--wait=10",
                 "--socket", daemon.socket)
    last = one_line_error(run, 125)
    assert "needs the peer-to-peer network" in last
    assert "unsupported_placement" in last


def test_peers_on_a_node_without_the_network_says_so_and_exits_1(daemon) -> None:
    run = plasmd("peers", "--socket", daemon.socket)
    assert run.returncode == 1
    assert "this node runs without the peer-to-peer network" in run.stderr.decode()
    assert run.stdout == b""


def test_help_of_submit_explains_the_placement_options() -> None:
    shown = plasmd("submit", "--help").stdout.decode()
    for option in ("--on PEER_ID", "--anywhere", "--require KEY=VALUE", "min_fuel"):
        assert option in shown


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--quorum", "2"), "--include-self only apply with --replicas"),
        (("--max-replicas", "4"), "--include-self only apply with --replicas"),
        (("--include-self",), "--include-self only apply with --replicas"),
        (("--replicas", "2", "--on", OTHER_PEER), "it does not go with --on"),
    ],
)
def test_quorum_options_are_checked_before_anything_is_sent(
    daemon, options: tuple[str, ...], says: str
) -> None:
    run = plasmd("submit", example("hello"), *options, "--socket", daemon.socket)
    assert run.returncode == 2
    assert says in one_line_error(run)


def test_a_quorum_job_on_a_node_without_the_network_is_refused_by_the_node(daemon) -> None:
    run = plasmd("submit", example("hello"), "--replicas", "3", "--quorum", "2", "--wait=10",
                 "--socket", daemon.socket)
    assert "unsupported_placement" in one_line_error(run, 125)


def test_a_disputed_job_says_who_agreed_with_whom() -> None:
    lines = failure_lines({
        "job_id": "j", "status": "disputed",
        "error": {"code": "disputed", "message": "no 3 of the 3 receipts agree (at most 2 do)",
                  "attempts": [],
                  "quorum": {"agreed": False, "quorum": 3, "agreeing": ["A", "B"],
                             "dissenting": ["L"], "receipts": [{}, {}, {}]}},
    })
    assert lines == ["job j disputed: no 3 of the 3 receipts agree (at most 2 do) (disputed)",
                     "  quorum 3 of 3 receipt(s): no quorum",
                     "  agrees:    A", "  agrees:    B", "  dissents:  L"]


def test_help_of_submit_explains_the_quorum_options() -> None:
    shown = plasmd("submit", "--help").stdout.decode()
    for option in ("--replicas K", "--quorum M", "--max-replicas N"):
        assert option in shown
