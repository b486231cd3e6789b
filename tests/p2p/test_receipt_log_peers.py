"""Receipt logs between two real daemons: a peer's result carries its log proof, which the
requester checked before accepting it; the requester keeps the peer's heads, proves each new
one consistent with the last over /plasm/log/1.0.0, and shows them in GET /v1/peers/{id}."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from plasm.protocol import merkle
from plasm.protocol.transparency import LogProof, verify_log_proof
from tests.conftest import Daemon, example, running_daemons
from tests.p2p.conftest import Pair, start_pair, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_daemons(tmp_path_factory) as make:
        yield start_pair(make)


def _on_peer(requester: Daemon, executor_id: str, word: str) -> dict:
    with requester.client(timeout=60) as client:
        result = client.submit(
            module=example("hello").read_bytes(),
            args=[word],
            placement={"mode": "peer", "peer_id": executor_id},
            wait=45,
        )
    assert result["executor"] == executor_id, result
    return result


def test_a_peers_result_carries_its_log_proof_and_the_requester_tracks_its_heads(
    pair: Pair,
) -> None:
    executor, requester, executor_id = pair.executor, pair.requester, pair.executor_id
    with executor.client() as client:  # a local job on E first: E's log is not only ours
        client.submit(module=example("hello").read_bytes(), args=["own"], wait=30)
    results = [_on_peer(requester, executor_id, f"w{i}") for i in range(3)]
    for result in results:
        envelope = base64.b64decode(result["receipt"]["cose"])
        head = verify_log_proof(envelope, LogProof.from_json(result["log"]), executor_id)
        assert head.node == executor_id
    assert [r["log"]["index"] for r in results] == [1, 2, 3]

    def tracked() -> dict:
        with requester.client() as client:
            return client.peer(executor_id)

    wait_until(lambda: tracked()["log_size"] == 4, "the requester to hold E's head of size 4")
    peer = tracked()
    assert peer["log_inconsistencies"] == 0 and peer["log_problem"] is None
    with executor.client() as client:
        assert client.log("head")["root"] == peer["log_root"]
    # The requester's own log holds none of them: it signed no receipt.
    with requester.client() as client:
        assert client.log("head")["size"] == 0
        stored = client.job(results[0]["job_id"])["result"]
    assert stored["log"] == results[0]["log"]  # journaled as received: verifiable offline
    root = bytes.fromhex(stored["log"]["root"])
    assert merkle.verify_inclusion(
        stored["log"]["index"],
        stored["log"]["size"],
        merkle.leaf_hash(base64.b64decode(stored["receipt"]["cose"])),
        [bytes.fromhex(p) for p in stored["log"]["path"]],
        root,
    )
