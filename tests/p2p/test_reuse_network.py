"""Verified reuse over the network, with real daemons on loopback: a node publishes a
signed memo record of a job it ran; another node answers the same job with that result
without running it; a forged record (validly signed but for another job, or unsigned) is
refused with a log line and the job runs."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from plasm.protocol.reuse import describe
from plasm.runtime.job import JobInput, Limits
from tests.p2p.conftest import peer_id_of, seed_address, start_pair, verified_peers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
COPYFILES = (REPO / "wasm-examples" / "copyfiles.wasm").read_bytes()
FILES = [("/input/a.txt", b"alpha\n"), ("/input/b/c.txt", b"gamma\n")]
FORGER = (sys.executable, str(Path(__file__).with_name("memo_forger.py")))


def executed(client) -> int:
    return sum(int(n) for n in re.findall(r"^plasm_jobs_total\{[^}]*\} (\d+)$",
                                          client.metrics(), re.M))


def copy_job(client, stdin: bytes = b"in", reuse: str = "network"):
    return client.submit(module=COPYFILES, files=FILES, stdin=stdin, limits={"fuel": 10**9},
                         extra={"reuse": reuse}, wait=60)


def memo_key(client, stdin: bytes = b"in") -> bytes:
    """The memo key of `copy_job(stdin)` on this daemon (its default limits)."""
    limits = Limits.from_json({**client.node()["limits"]["default"], "fuel": 10**9})
    job_input = JobInput(stdin=stdin, files=tuple(FILES))
    return describe(hashlib.sha256(COPYFILES).hexdigest(), job_input, limits).key()


def test_a_second_node_reuses_the_first_nodes_verified_run(daemon_factory) -> None:
    pair = start_pair(daemon_factory)
    with pair.executor.client() as e, pair.requester.client() as r:
        original = copy_job(e)
        assert "reused" not in original and executed(e) == 1
        wait_until(lambda: "published memo record" in pair.executor.log(),
                   "the executor to publish its memo record")
        hit = copy_job(r)
        assert executed(r) == 0 and executed(e) == 1  # nobody ran it again
        output = r.output(hit["job_id"], "/output/b/c.txt")
        # Indexed on the requester too: the next one is a local hit.
        again = copy_job(r, reuse="local")
        assert executed(r) == 0
        key = memo_key(e)
        # A job this node ran on a peer is indexed too, from the peer's verified receipt.
        remote = r.submit(module=COPYFILES, files=FILES, stdin=b"remote", limits={"fuel": 10**9},
                          placement={"mode": "any", "exclude_self": True}, wait=60)
        assert remote["executor"] == pair.executor_id
        before = executed(r)  # plasm_jobs_total counts the remote run's outcome too
        local_hit = copy_job(r, stdin=b"remote", reuse="local")
        assert executed(r) == before
    assert local_hit["reused"] == {"job_id": remote["job_id"], "executor": pair.executor_id}
    assert hit["reused"] == {"job_id": original["job_id"], "executor": pair.executor_id}
    assert hit["receipt"]["cose"] == original["receipt"]["cose"]
    assert hit["executor"] == pair.executor_id and hit["outputs"] == original["outputs"]
    assert hit["stdout"] == original["stdout"] and output == b"gamma\n"
    assert again["reused"] == hit["reused"]
    with sqlite3.connect(pair.executor.state_dir / "journal.sqlite3") as db:
        assert db.execute("SELECT job_id FROM memos WHERE key = ?", (key,)).fetchone() == (
            original["job_id"],)


@pytest.mark.parametrize("mode", ["wrong_key", "unsigned"])
def test_a_forged_memo_record_is_refused_and_the_job_runs(daemon_factory, mode: str) -> None:
    # The key of the job the requester will ask for, computed as the daemon does.
    with daemon_factory().client() as plain:
        key = memo_key(plain)
    forger = daemon_factory(network=True, program=FORGER,
                            env={"PLASM_FORGE_MEMO": f"{mode}:{key.hex()}"})
    requester = daemon_factory(None, "--bootstrap", seed_address(forger), network=True)
    forger_id = peer_id_of(forger)
    wait_until(lambda: forger_id in verified_peers(requester), "the requester to verify F")
    with forger.client() as f, requester.client() as r:
        # F runs another job and files its (genuine) run under the key of ours.
        other = copy_job(f, stdin=b"the forger's own job")
        assert other["status"] == "done"
        wait_until(lambda: "published memo record" in forger.log(), "F to publish")
        result = copy_job(r)
        assert executed(r) == 1  # it ran: the record was refused
    assert "reused" not in result
    assert result["executor"] == peer_id_of(requester)
    assert result["receipt"]["cose"] != other["receipt"]["cose"]
    assert "refused memo record" in requester.log()
