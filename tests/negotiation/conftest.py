"""Fixtures of the actor tests: one shared sandbox, a switchboard, nodes stopped at teardown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plasm.actors._mailbox import ask
from plasm.actors.messages import ListPeers, PeerList
from plasm.protocol.negotiation import ExecutorPolicy
from plasm.runtime.sandbox import Sandbox
from tests.negotiation.cluster import Switchboard, TestNode

WAIT_S = 30.0
MakeNode = Callable[..., TestNode]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    yield box
    box.close()


@pytest.fixture
def board() -> Switchboard:
    return Switchboard()


@pytest.fixture
def make_node(sandbox: Sandbox, board: Switchboard) -> Iterator[MakeNode]:
    nodes: list[TestNode] = []

    def make(name: str, policy: ExecutorPolicy | None = None) -> TestNode:
        node = TestNode(name, board, sandbox, policy)
        nodes.append(node)
        return node

    yield make
    for node in reversed(nodes):
        node.stop()


def peers_of(node: TestNode) -> PeerList:
    peers = ask(node.discovery, ListPeers(), timeout=WAIT_S)
    assert isinstance(peers, PeerList)
    return peers


def wait_for(node: TestNode, condition: Callable[[PeerList], Any]) -> PeerList:
    """Poll `node`'s peer table until `condition` holds (bounded; not a timing assertion)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        peers = peers_of(node)
        if condition(peers):
            return peers
        assert time.monotonic() < deadline, f"the peer table never got there: {peers}"
        time.sleep(0.01)


def record_of(peers: PeerList, peer_id: str) -> Any:
    return next((p.capabilities for p in peers.peers if p.peer_id == peer_id), None)
