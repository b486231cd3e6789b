"""Quorum jobs with real plasmd processes on loopback, two of them lying.

The cluster (one per module):
  A, B   honest executors (A is the seed the others bootstrap from)
  L1, L2 liars whose receipts are *valid*: each prefixes what the job prints with its own
         text and signs those bytes (tests/p2p/liar_node.py, PLASM_LIE=output:...), so
         they disagree with the honest pair and with each other
  R      the requester the tests submit to; dispute_threshold 1, so one dispute cools a
         peer down (for an hour)

The tests run in order: the disputed job first (no peer has a dispute yet), then the agreed
one that records the dissenters, then what their cool-down and R's restart do.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plasm.client import ApiRequestError
from plasm.protocol.quorum import agreement_key
from plasm.protocol.receipt import envelope_from_json, verify_envelope
from plasm.protocol.schemas import validator
from tests.conftest import Daemon, example, plasmd_command, running_daemons
from tests.p2p.conftest import peer_id_of, seed_address, wait_until, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

LIAR = (sys.executable, str(Path(__file__).with_name("liar_node.py")))
HONEST = "dlroW ,olleH\n"  # what hello.wasm prints for "Hello, World"


class Cluster:
    def __init__(self, daemons: dict[str, Daemon]) -> None:
        self.daemons = daemons
        self.ids = {name: peer_id_of(d) for name, d in daemons.items()}
        self.r = daemons["r"]

    @property
    def liars(self) -> set[str]:
        return {self.ids["l1"], self.ids["l2"]}

    @property
    def honest(self) -> set[str]:
        return {self.ids["a"], self.ids["b"]}

    def submit(self, placement: dict[str, Any]) -> dict[str, Any]:
        with self.r.client(timeout=120) as client:
            return client.submit(
                module=example("hello").read_bytes(),
                module_name="hello.wasm",
                stdin=b"Hello, World",
                placement=placement,
                wait=90,
            )

    def peer(self, name: str) -> dict[str, Any]:
        with self.r.client() as client:
            return client.request("GET", f"/v1/peers/{self.ids[name]}")

    def name_of(self, peer_id: str) -> str:
        return next(name for name, known in self.ids.items() if known == peer_id)


def executors_of(quorum: dict[str, Any]) -> list[str]:
    return [receipt["executor"] for receipt in quorum["receipts"]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("quorum")
    one = write_config(tmp, "one", "[executor]\ncount = 1\n")
    with running_daemons(tmp_path_factory) as make:
        a = make(config=one, network=True)
        seed = seed_address(a)
        daemons = {"a": a, "b": make(None, "--bootstrap", seed, config=one, network=True)}
        for name in ("l1", "l2"):
            daemons[name] = make(
                None, "--bootstrap", seed, config=one, network=True, program=LIAR,
                env={"PLASM_LIE": f"output:{name} says: "},
            )
        requester = write_config(
            tmp, "r", '[network]\ndispute_threshold = 1\ndispute_cooldown_ms = "1h"\n'
        )
        daemons["r"] = make(None, "--bootstrap", seed, config=requester, network=True)
        found = Cluster(daemons)
        others = found.honest | found.liars

        def known() -> set[str]:
            with found.r.client() as client:
                return {p["peer_id"] for p in client.peers() if p.get("capabilities")}

        wait_until(lambda: others <= known(), "R to verify the four executors' records")
        yield found


def test_a_quorum_of_three_among_a_lying_peer_is_disputed_after_trying_more_peers(
    cluster: Cluster, tmp_path: Path
) -> None:
    result = cluster.submit({"mode": "any", "replicas": 3, "quorum": 3})
    assert result["status"] == "disputed", result
    error = result["error"]
    assert error["code"] == "disputed"
    quorum = error["quorum"]
    assert quorum["agreed"] is False
    assert quorum["quorum"] == 3
    # Three replicas could not agree, so R added the fourth peer before it gave up.
    assert sorted(executors_of(quorum)) == sorted(cluster.honest | cluster.liars)
    assert set(quorum["agreeing"]) == cluster.honest
    for receipt in quorum["receipts"]:
        verify_envelope(envelope_from_json(receipt), expected_executor=receipt["executor"])
    # The job is kept disputed, every receipt with it; no quorum agreed, so nobody dissented.
    with cluster.r.client() as client:
        stored = client.job(result["job_id"])
        assert [j["job_id"] for j in client.jobs(status="disputed")] == [result["job_id"]]
    assert stored["status"] == "disputed"
    assert len(stored["error"]["quorum"]["receipts"]) == 4
    assert all(cluster.peer(name)["receipts_disputed"] == 0 for name in ("l1", "l2"))
    saved = tmp_path / "disputed.json"
    saved.write_bytes(orjson.dumps(stored))
    verify = subprocess.run(
        plasmd_command("verify", str(saved)), capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "no_quorum" in verify.stdout or "2 of 4" in verify.stdout


def test_replicas_three_quorum_two_gives_the_honest_output_and_names_the_liar(
    cluster: Cluster, tmp_path: Path
) -> None:
    result = cluster.submit({"mode": "any", "replicas": 3, "quorum": 2})
    assert result["status"] == "done", result
    validator("job-result").validate(result)
    assert result["stdout_text"] == HONEST
    quorum = result["quorum"]
    assert quorum["agreed"] is True
    assert quorum["quorum"] == 2
    assert set(quorum["agreeing"]) == cluster.honest
    dissenting = set(quorum["dissenting"])
    assert dissenting and dissenting <= cluster.liars
    executors = executors_of(quorum)
    assert len(executors) == len(set(executors)) >= 3  # distinct peers, never R itself
    assert cluster.ids["r"] not in executors
    assert result["executor"] in cluster.honest
    # Every receipt is valid; the liars' ones sign other output than the honest ones.
    keys = {
        r["executor"]: agreement_key(verify_envelope(envelope_from_json(r)))
        for r in quorum["receipts"]
    }
    assert len({keys[peer] for peer in cluster.honest}) == 1
    assert all(keys[peer] != keys[result["executor"]] for peer in dissenting)
    # Each dissenter's dispute count rose (and with threshold 1 it is cooling down).
    for peer in dissenting:
        wait_until(lambda p=peer: cluster.peer(cluster.name_of(p))["receipts_disputed"] == 1,
                   "R to record the dissent")
        assert cluster.peer(cluster.name_of(peer))["cooldown_until_ms"] > time.time() * 1000
    assert all(cluster.peer(name)["receipts_disputed"] == 0 for name in ("a", "b"))
    # Offline: every receipt valid, 2 agree, distinct executors.
    saved = tmp_path / "agreed.json"
    saved.write_bytes(orjson.dumps(result))
    verify = subprocess.run(
        plasmd_command("verify", str(saved), "--json"), capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    verdict = orjson.loads(verify.stdout)
    assert verdict["checked_quorum"] == {"agreeing": 2, "quorum": 2, "receipts": len(executors)}
    # A result that claims a liar agrees does not pass.
    forged = orjson.loads(orjson.dumps(result))
    forged["quorum"]["agreeing"] = [result["executor"], sorted(dissenting)[0]]
    with cluster.r.client() as client:
        assert client.verify(result)["valid"] is True
        answer = client.verify(forged)
    assert (answer["valid"], answer["reason"]) == (False, "quorum_mismatch")


def test_a_peer_cooling_down_is_offered_no_replica(cluster: Cluster) -> None:
    cooling = {
        cluster.ids[name]
        for name in ("l1", "l2")
        if (cluster.peer(name).get("cooldown_until_ms") or 0) > time.time() * 1000
    }
    assert cooling  # the test above cooled at least one liar down
    result = cluster.submit({"mode": "any", "replicas": 4, "quorum": 2})
    assert result["status"] == "done", result
    assert result["stdout_text"] == HONEST
    executors = set(executors_of(result["quorum"]))
    assert cluster.honest <= executors
    assert not executors & cooling


def test_bad_quorum_placements_are_refused_with_a_reason_and_the_node_keeps_serving(
    cluster: Cluster,
) -> None:
    from plasm.client import ClientError

    bad = [
        ({"mode": "any", "replicas": 2, "quorum": 3}, "quorum 3 is more than the 2 replicas"),
        ({"mode": "any", "replicas": 3, "max_replicas": 2}, "max_replicas 2 is fewer"),
        ({"mode": "any", "replicas": 17}, "replicas"),
        ({"mode": "any", "quorum": 2}, "need replicas"),
        ({"mode": "peer", "peer_id": cluster.ids["a"], "replicas": 2}, "placement mode"),
    ]
    for placement, says in bad:
        with pytest.raises(ClientError) as info:
            cluster.submit(placement)
        assert info.value.status == 400, placement
        assert says in str(info.value), (placement, str(info.value))
    assert cluster.submit({"mode": "peer", "peer_id": cluster.ids["a"]})["status"] == "done"


def test_the_cli_runs_a_quorum_job_and_shows_disputes(cluster: Cluster) -> None:
    submit = subprocess.run(
        plasmd_command(
            "submit", str(example("hello")), "--stdin", "Hello, World", "--wait", "--json",
            "--replicas", "2", "--quorum", "2", "--socket", str(cluster.r.socket),
        ),
        capture_output=True, text=True, timeout=120,
    )
    assert submit.returncode == 0, submit.stdout + submit.stderr
    result = orjson.loads(submit.stdout)
    assert base64.b64decode(result["stdout"]).decode() == HONEST
    assert set(result["quorum"]["agreeing"]) == cluster.honest
    peers = subprocess.run(
        plasmd_command("peers", "--socket", str(cluster.r.socket)),
        capture_output=True, text=True, timeout=60,
    )
    assert peers.returncode == 0, peers.stderr
    assert "disputed" in peers.stdout.splitlines()[0]
    assert "(cooling down)" in peers.stdout


def test_the_console_runs_a_quorum_job_and_lists_disputed_jobs(cluster: Cluster) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLASM_")}
    env.update(TERM="dumb", NO_COLOR="1", COLUMNS="200", HOME=str(cluster.r.state_dir.parent))
    done = subprocess.run(
        [sys.executable, "-m", "plasm.console", "--socket", str(cluster.r.socket),
         "-c", f"run {example('hello')} --stdin abc --replicas 2 --quorum 2",
         "-c", "jobs --status disputed", "-c", "peers"],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cba" in done.stdout
    assert "2 of 2 receipts agree (quorum 2)" in done.stdout
    assert "disputed" in done.stdout  # the disputed job of the first test, and the column
    assert "(cooling down)" in done.stdout


def test_dispute_records_survive_a_restart(cluster: Cluster) -> None:
    before = {name: cluster.peer(name) for name in ("l1", "l2")}
    assert any(p["receipts_disputed"] for p in before.values())
    cluster.r.stop()
    cluster.r.start()
    for name, was in before.items():
        if not was["receipts_disputed"]:
            continue
        wait_until(lambda n=name: _known(cluster, n), f"R to know {name} again")
        now = cluster.peer(name)
        assert now["receipts_disputed"] == was["receipts_disputed"]
        assert now["cooldown_until_ms"] == was["cooldown_until_ms"]


def _known(cluster: Cluster, name: str) -> bool:
    with cluster.r.client() as client:
        return any(p["peer_id"] == cluster.ids[name] for p in client.peers())


def _executed(daemon: Daemon) -> int:
    with daemon.client() as client:
        text = client.metrics()
    return sum(int(n) for n in re.findall(r"^plasm_jobs_total\{[^}]*\} (\d+)$", text, re.M))


def test_a_quorum_job_with_reuse_counts_the_earlier_run_as_one_replica(
    cluster: Cluster, tmp_path: Path
) -> None:
    def submit(replicas: int, quorum: int) -> dict[str, Any]:
        with cluster.r.client(timeout=120) as client:
            return client.submit(
                module=example("hello").read_bytes(), module_name="hello.wasm",
                stdin=b"reuse in a quorum", wait=90, extra={"reuse": "local"},
                placement={"mode": "any", "replicas": replicas, "quorum": quorum},
            )

    def verified() -> set[str]:
        with cluster.r.client() as client:
            return {p["peer_id"] for p in client.peers() if p.get("capabilities")}

    # R restarted in the test before: it must know both honest peers again
    wait_until(lambda: cluster.honest <= verified(), "R to verify A's and B's records")
    first = submit(2, 2)
    assert first["status"] == "done", first
    earlier = first["executor"]
    earlier_name = cluster.name_of(earlier)
    runs = {name: _executed(cluster.daemons[name]) for name in ("a", "b", "l1", "l2")}

    again = submit(2, 2)
    assert again["status"] == "done", again
    assert "reused" not in again  # the result is a live replica's, not the earlier run
    assert again["executor"] != earlier and again["executor"] in cluster.honest
    assert base64.b64decode(again["stdout"]) == b"reuse in a quorum"[::-1] + b"\n"
    quorum = again["quorum"]
    assert quorum["agreed"] is True and earlier in quorum["agreeing"]
    assert executors_of(quorum).count(earlier) == 1  # one replica at most
    mine = [r for r in quorum["receipts"] if r["executor"] == earlier]
    assert mine[0]["body"]["job_id"] == first["job_id"]  # the earlier run's own receipt
    assert mine[0]["cose"] == first["receipt"]["cose"]
    assert _executed(cluster.daemons[earlier_name]) == runs[earlier_name]  # it did not run
    saved = tmp_path / "quorum-reuse.json"
    saved.write_bytes(orjson.dumps(again))
    verify = subprocess.run(plasmd_command("verify", str(saved)), capture_output=True,
                            text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # With a quorum of one, the earlier run is the quorum: nothing runs.
    before = {name: _executed(cluster.daemons[name]) for name in ("a", "b", "l1", "l2")}
    alone = submit(1, 1)
    assert alone["status"] == "done", alone
    assert alone["reused"]["job_id"] in {first["job_id"], again["job_id"]}
    assert alone["quorum"]["agreed"] is True and alone["quorum"]["quorum"] == 1
    assert len(alone["quorum"]["receipts"]) == 1
    assert {n: _executed(cluster.daemons[n]) for n in before} == before
    saved.write_bytes(orjson.dumps(alone))
    verify = subprocess.run(plasmd_command("verify", str(saved)), capture_output=True,
                            text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_include_self_runs_one_replica_on_the_requesting_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    r_id = cluster.ids["r"]

    def submit(replicas: int, quorum: int) -> dict[str, Any]:
        with cluster.r.client(timeout=120) as client:
            return client.submit(
                module=example("hello").read_bytes(), module_name="hello.wasm",
                stdin=b"self and others", wait=90,
                placement={"mode": "any", "replicas": replicas, "quorum": quorum,
                           "include_self": True},
            )

    runs = {name: _executed(cluster.daemons[name]) for name in cluster.daemons}
    result = submit(2, 2)
    assert result["status"] == "done", result
    quorum = result["quorum"]
    assert quorum["agreed"] is True and r_id in quorum["agreeing"]
    assert sorted(executors_of(quorum)) == sorted({r_id, result["executor"]})
    assert result["executor"] in cluster.honest  # the result is the peer's that agreed
    assert base64.b64decode(result["stdout"]) == b"self and others"[::-1] + b"\n"
    grew = {n for n in cluster.daemons if _executed(cluster.daemons[n]) > runs[n]}
    assert grew == {"r", cluster.name_of(result["executor"])}, grew
    saved = tmp_path / "include-self.json"
    saved.write_bytes(orjson.dumps(result))
    verify = subprocess.run(plasmd_command("verify", str(saved)), capture_output=True,
                            text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    runs = {name: _executed(cluster.daemons[name]) for name in cluster.daemons}
    alone = submit(1, 1)  # the node's own run is the quorum
    assert alone["status"] == "done", alone
    assert alone["executor"] == r_id and alone["quorum"]["agreeing"] == [r_id]
    grew = {n for n in cluster.daemons if _executed(cluster.daemons[n]) > runs[n]}
    assert grew == {"r"}, grew

    # include_self is a quorum field only
    with cluster.r.client() as client, pytest.raises(ApiRequestError) as refused:
        client.submit(module=example("hello").read_bytes(), wait=10,
                      placement={"mode": "any", "include_self": True})
    assert refused.value.status == 400 and "include_self" in str(refused.value)
