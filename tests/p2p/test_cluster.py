"""Real plasmd processes on loopback, finding and running jobs for one another.

The cluster (one per module, it takes a few seconds to form):
  A  honest, 1 executor, the default maximum limits; the others bootstrap from it
  B  honest, 1 executor, maximum fuel 1e9 (so it cannot take jobs that need more)
  L  a liar: real daemon, but its receipts carry a forged stdout hash; 2 executors,
     so it advertises more free slots than A and is tried first
  R  the requester the tests submit to
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plasm.protocol.receipt import verify_envelope
from plasm.protocol.schemas import validator
from tests.conftest import Daemon, example, running_daemons

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

LIAR = (sys.executable, str(Path(__file__).with_name("liar_node.py")))
ANY_PEER = {"mode": "any", "exclude_self": True}
FORM_TIMEOUT_S = 60


def config(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def peers_of(daemon: Daemon) -> dict[str, dict[str, Any]]:
    with daemon.client() as client:
        return {p["peer_id"]: p for p in client.request("GET", "/v1/peers")["peers"]}


def peer_id(daemon: Daemon) -> str:
    with daemon.client() as client:
        return str(client.node()["peer_id"])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = FORM_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Cluster:
    def __init__(self, a: Daemon, b: Daemon, liar: Daemon, r: Daemon) -> None:
        self.a, self.b, self.liar, self.r = a, b, liar, r
        self.ids = {name: peer_id(d) for name, d in (("a", a), ("b", b), ("liar", liar), ("r", r))}

    def submit(self, **kwargs: Any) -> dict[str, Any]:
        with self.r.client(timeout=90) as client:
            return client.submit(
                module=example("hello").read_bytes(),
                module_name="hello.wasm",
                stdin=b"Hello, World",
                wait=60,
                **kwargs,
            )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    with running_daemons(tmp_path_factory) as make:
        a = make(config=config(tmp, "a", "[executor]\ncount = 1\n"), network=True)
        with a.client() as client:
            seed = client.node()["addresses"][0]
        b = make(
            None,
            "--bootstrap",
            seed,
            config=config(tmp, "b", "[executor]\ncount = 1\n[limits.max]\nfuel = 1000000000\n"),
            network=True,
        )
        liar = make(
            None,
            "--bootstrap",
            seed,
            config=config(tmp, "l", "[executor]\ncount = 2\n"),
            network=True,
            program=LIAR,
        )
        r = make(None, "--bootstrap", seed, network=True)
        found = Cluster(a, b, liar, r)
        others = {found.ids["a"], found.ids["b"], found.ids["liar"]}
        wait_until(
            lambda: others <= {p for p, info in peers_of(r).items() if info.get("capabilities")},
            "R to know the capabilities of A, B and L",
        )
        yield found


def check_receipt(result: dict[str, Any], executor: str, requester: str) -> None:
    validator("job-result").validate(result)
    envelope = base64.b64decode(result["receipt"]["cose"])
    receipt = verify_envelope(
        envelope, expected_executor=executor, stdout=base64.b64decode(result["stdout"])
    )
    assert receipt.requester == requester


def test_a_forged_receipt_is_rejected_and_the_job_runs_elsewhere(cluster: Cluster) -> None:
    # Only A and the liar may burn 5e9 fuel, and the liar advertises more free slots, so
    # it is offered the job first; its receipt fails and A runs the job.
    result = cluster.submit(
        limits={"fuel": 5_000_000_000},
        placement={**ANY_PEER, "requirements": {"min_fuel": 5_000_000_000}},
    )
    assert result["status"] == "done"
    assert result["executor"] == cluster.ids["a"]
    check_receipt(result, cluster.ids["a"], cluster.ids["r"])
    liar = peers_of(cluster.r)[cluster.ids["liar"]]
    assert liar["receipts_rejected"] == 1
    with cluster.r.client() as client:
        stored = client.job(result["job_id"])
    assert stored["status"] == "done"


def test_a_peer_is_chosen_by_its_capabilities(cluster: Cluster) -> None:
    # Only A may burn 5e9 fuel: B's maximum is 1e9, and the liar's receipts never pass
    # (after the test above, it ranks last).
    for _ in range(2):
        result = cluster.submit(
            limits={"fuel": 5_000_000_000},
            placement={
                "mode": "any",
                "exclude_self": True,
                "requirements": {"min_fuel": 5_000_000_000},
            },
        )
        assert result["executor"] == cluster.ids["a"]
        check_receipt(result, cluster.ids["a"], cluster.ids["r"])


def test_a_remote_receipt_is_signed_by_the_executors_peer_id_key(cluster: Cluster) -> None:
    result = cluster.submit(placement={"mode": "peer", "peer_id": cluster.ids["b"]})
    assert result["status"] == "done"
    assert result["stdout_text"] == "dlroW ,olleH\n"
    assert result["executor"] == cluster.ids["b"]
    check_receipt(result, cluster.ids["b"], cluster.ids["r"])
    with cluster.r.client() as client:
        assert client.verify(result)["valid"]


def test_module_bytes_cross_the_network_only_when_the_executor_lacks_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    # A module no node has seen yet: the first job ships it, the second does not.
    module = example("env_args").read_bytes()
    placement = {"mode": "peer", "peer_id": cluster.ids["b"]}
    with cluster.r.client(timeout=90) as client:
        first = client.submit(module=module, args=["one"], placement=placement, wait=60)
        second = client.submit(module=module, args=["two"], placement=placement, wait=60)
    assert first["stdout_text"].splitlines()[1] == "one"
    assert second["stdout_text"].splitlines()[1] == "two"
    sent = [
        entry
        for entry in map(orjson.loads, cluster.r.log().splitlines())
        if entry.get("event") == "job_sent"
        and entry.get("job_id") in (first["job_id"], second["job_id"])
    ]
    by_job = {entry["job_id"]: entry["module_sent"] for entry in sent}
    assert by_job == {first["job_id"]: True, second["job_id"]: False}


def test_a_lying_peer_named_alone_fails_the_job_with_the_reason(cluster: Cluster) -> None:
    result = cluster.submit(placement={"mode": "peer", "peer_id": cluster.ids["liar"]})
    assert result["status"] == "failed"
    attempts = result["error"]["attempts"]
    assert attempts == [{"peer_id": cluster.ids["liar"], "result": "receipt_hash_mismatch"}]


def test_rejection_reasons_reach_the_client(cluster: Cluster) -> None:
    # B's maximum fuel is 1e9; asking it for more is refused with a reason code.
    result = cluster.submit(
        limits={"fuel": 2_000_000_000}, placement={"mode": "peer", "peer_id": cluster.ids["b"]}
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "no_executor"
    assert result["error"]["attempts"] == [
        {"peer_id": cluster.ids["b"], "result": "limits_exceeded"}
    ]
    with cluster.r.client() as client:
        stored = client.job(result["job_id"])
    assert stored["status"] == "failed"
    assert stored["error"]["attempts"][0]["result"] == "limits_exceeded"


def test_the_peer_list_reports_what_each_peer_did(cluster: Cluster) -> None:
    peers = peers_of(cluster.r)
    a = peers[cluster.ids["a"]]
    assert a["connected"] is True
    assert a["capabilities"]["runtimes"] == ["wasi-preview1"]
    assert a["addresses"]
    assert a["latency_us"] is None or a["latency_us"] > 0
    with cluster.r.client() as client:
        node = client.node()
    assert node["addresses"][0].endswith(f"/p2p/{cluster.ids['r']}")
    assert node["reachability"] in ("public", "private", "unknown")
