"""A devnet of 20 real daemons (separate processes, loopback): every node places an `any`
job on a peer and has its receipt verified, and no node holds more connections than
`network.max_connections`, the bootstrap node that all of them joined through included.
Marked `scale` (about a minute here); it runs in CI."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from plasm.client import Client
from plasm.devnet import Devnet
from tests.conftest import example

pytestmark = [pytest.mark.integration, pytest.mark.scale, pytest.mark.timeout(420)]

NODES = 20
MAX_CONNECTIONS = 64


def test_twenty_nodes_each_place_a_job_on_a_peer_within_the_connection_cap(
    tmp_path: Path,
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        f'[executor]\ncpu_affinity = "off"\ncount = 1\n'
        f"[network]\nmax_connections = {MAX_CONNECTIONS}\n"
    )
    hello = example("hello").read_bytes()
    with Devnet(NODES, tmp_path / "net", config=config) as devnet:
        devnet.start(timeout=300)
        ids = {node.peer_id for node in devnet.nodes}
        assert len(ids) == NODES
        for node in devnet.nodes:
            with Client(node.socket, timeout=90) as client:
                result = client.submit(module=hello, stdin=node.name.encode(), wait=60,
                                       placement={"mode": "any", "exclude_self": True})
                assert result["status"] == "done", (node.name, result)
                assert result["executor"] in ids - {node.peer_id}
                assert base64.b64decode(result["stdout"]) == node.name.encode()[::-1] + b"\n"
                assert client.verify(result)["valid"], result
        for node in devnet.nodes:
            with Client(node.socket, timeout=30) as client:
                connected = client.node()["network"]["connected_peers"]
            assert 1 <= connected <= MAX_CONNECTIONS, (node.name, connected)
        assert devnet.exited() == []
