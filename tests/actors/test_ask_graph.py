"""The ask graph: no actor handler blocks on an actor that could ask it back.

Two real nodes in this process (real libp2p on loopback, real journal and sandbox) run a
local job, an upload and a job on the other node, in strict mode, which records every
blocking ask made from an actor thread. Every recorded edge must be in the documented
graph (`ASK_GRAPH`, drawn in docs/architecture.md), and that graph must have no cycle.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from plasm.actors._mailbox import ASK_GRAPH, asks_seen
from plasm.actors.messages import JobFinished
from plasm.actors.node import NetworkSettings, Node, NodeSettings
from plasm.protocol.p2p_messages import Placement
from plasm.runtime.job import JobInput, Limits
from tests.conftest import example

WAIT_S = 60


def _cycle(graph: dict[str, frozenset[str]]) -> list[str] | None:
    """A cycle of the graph as a path, or None."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for callee in graph.get(node, frozenset()):
            if state.get(callee) == 1:
                return [*path, node, callee]
            if callee not in state and (found := visit(callee, [*path, node])):
                return found
        state[node] = 2
        return None

    for start in graph:
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_the_documented_ask_graph_has_no_cycle() -> None:
    assert _cycle(ASK_GRAPH) is None
    assert _cycle({"A": frozenset({"B"}), "B": frozenset({"A"})}) == ["A", "B", "A"]


def _node(tmp_path: Path, name: str, seed: int, bootstrap: tuple[str, ...] = ()) -> Node:
    settings = NodeSettings(
        executor_count=1,
        strict_messages=True,
        journal_path=tmp_path / f"{name}.sqlite",
        module_cache_dir=tmp_path / f"{name}-cache",
        network=NetworkSettings(listen=("/ip4/127.0.0.1/tcp/0",), bootstrap=bootstrap),
    )
    return Node(SigningKey(bytes([seed]) * 32), settings).start()


def _run(node: Node, placement: Placement | None = None) -> JobFinished:
    submission = node.submit(
        module=example("hello").read_bytes(),
        module_sha256=None,
        job_input=JobInput(stdin=b"graph"),
        limits=Limits(),
        placement=placement,
    )
    finished = submission.done.get(timeout=WAIT_S)
    assert isinstance(finished, JobFinished)
    return finished


@pytest.mark.timeout(120)
def test_every_ask_an_actor_makes_is_an_edge_of_the_graph(tmp_path: Path) -> None:
    asks_seen(clear=True)  # what earlier tests' stand-in actors asked does not count
    a = _node(tmp_path, "a", 1)
    b = None
    try:
        address = f"{a.network_info().listen_addresses[0]}/p2p/{a.peer_id}"
        b = _node(tmp_path, "b", 2, (address,))
        assert _run(a).status == "done"
        a.put_module(example("exit3").read_bytes())
        deadline = time.monotonic() + WAIT_S
        while True:  # until b's discovery has verified a's capability record
            finished = _run(b, Placement(mode="peer", peer_id=a.peer_id))
            if finished.status == "done" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert finished.status == "done" and finished.executor == a.peer_id
        assert _run(b, Placement(mode="any", exclude_self=True)).status == "done"
    finally:
        if b is not None:
            b.stop(grace_s=1)
        a.stop(grace_s=1)
    seen = asks_seen()
    assert seen, "strict mode recorded no ask at all"
    outside = {(caller, callee) for caller, callee in seen if callee not in ASK_GRAPH[caller]}
    assert not outside, f"asks outside the documented graph: {sorted(outside)}"


@pytest.mark.timeout(120)
def test_a_failure_in_the_network_actor_ends_the_remote_job_and_the_next_one_runs(
    tmp_path: Path,
) -> None:
    import orjson

    from plasm.actors import _faults

    a = _node(tmp_path, "a", 3)
    b = None
    try:
        address = f"{a.network_info().listen_addresses[0]}/p2p/{a.peer_id}"
        b = _node(tmp_path, "b", 4, (address,))
        on_a = Placement(mode="peer", peer_id=a.peer_id)
        deadline = time.monotonic() + WAIT_S
        while _run(b, on_a).status != "done":  # b knows a: the next request is the job's
            assert time.monotonic() < deadline, "b never ran a job on a"
            time.sleep(0.2)
        failed = None
        for _ in range(3):  # a discovery request may take the fault first: arm again
            _faults.arm("NetworkActor.PeerRequest=1")
            finished = _run(b, on_a)
            if finished.status == "failed":
                failed = finished
                break
        assert failed is not None and failed.error is not None, "the fault never hit a job"
        error = orjson.loads(failed.error)
        assert error["code"] == "internal_error" and "NetworkActor" in error["message"]
        _faults.disarm()
        assert _run(b, on_a).status == "done"
        assert b.stats().running == 0
    finally:
        _faults.disarm()
        started = time.monotonic()
        if b is not None:
            b.stop(grace_s=1)
        a.stop(grace_s=1)
        assert time.monotonic() - started < 2 * (1 + 5)
