"""Verified reuse, local: a daemon answers a job it already ran with the earlier verified
result, without running it again, across a restart; a job that differs in any part of its
description runs."""

from __future__ import annotations

import base64
import re
import sqlite3

import orjson
import pytest
from daemon_checks import checked_result, example_bytes

from plasm.client import ApiRequestError
from plasm.protocol.receipt import verify_envelope
from plasm.protocol.schemas import validator
from plasm.protocol.verification import expectations_from_saved, verify_saved

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FILES = [("/input/a.txt", b"alpha\n"), ("/input/b/c.txt", b"gamma\n")]


def executed(client) -> int:
    """Jobs this daemon's executors ran, whatever their outcome (GET /metrics)."""
    text = client.metrics()
    return sum(int(n) for n in re.findall(r'^plasm_jobs_total\{[^}]*\} (\d+)$', text, re.M))


def reused(client) -> int:
    return int(re.search(r"^plasm_jobs_reused_total (\d+)$", client.metrics(), re.M).group(1))


def copy_job(client, reuse: str = "local", **changes):
    job = {"module": example_bytes("copyfiles"), "files": FILES, "stdin": b"in",
           "limits": {"fuel": 10**9}, "extra": {"reuse": reuse}, "wait": 30}
    job.update(changes)
    return client.submit(**job)


def test_local_reuse_returns_the_earlier_receipt_without_running(daemon_factory) -> None:
    first = daemon_factory()
    with first.client() as client:
        original = copy_job(client)
        assert original["status"] == "done" and "reused" not in original
        assert executed(client) == 1
        again = copy_job(client)
        assert executed(client) == 1 and reused(client) == 1
        job = client.job(again["job_id"])
        output = client.output(again["job_id"], "/output/b/c.txt")
    # A new job on this node, answered with the first run's receipt, unchanged.
    assert again["job_id"] != original["job_id"]
    assert again["reused"] == {"job_id": original["job_id"], "executor": original["executor"]}
    assert again["receipt"]["cose"] == original["receipt"]["cose"]
    for name in ("stdout", "stderr", "outputs", "fuel_consumed", "outcome"):
        assert again[name] == original[name]
    assert job["status"] == "done" and job["result"]["reused"] == again["reused"]
    assert output == b"gamma\n"
    # The reused result verifies as saved (plasmd verify's check) and fits the schema.
    verdict = verify_saved(*expectations_from_saved(_json(again)))
    assert verdict["valid"], verdict
    receipt = verify_envelope(base64.b64decode(again["receipt"]["cose"]))
    assert receipt.job_id == original["job_id"]
    checked_result(original)
    assert list(validator("job-result").iter_errors(again)) == []

    # It survives a restart: the index is in the journal.
    assert first.stop() == 0
    second = daemon_factory(first.state_dir)
    with second.client() as client:
        after = copy_job(client)
        assert executed(client) == 0 and reused(client) == 1
        # reuse off always runs
        fresh = copy_job(client, reuse="off")
        assert executed(client) == 1
    assert after["reused"]["job_id"] == original["job_id"]
    assert after["receipt"]["cose"] == original["receipt"]["cose"]
    assert "reused" not in fresh and fresh["receipt"]["cose"] != original["receipt"]["cose"]


def test_a_job_that_differs_in_limits_input_files_or_profile_runs(daemon) -> None:
    with daemon.client() as client:
        copy_job(client)
        variants = [
            {"limits": {"fuel": 10**9 + 1}},
            {"stdin": b"other"},
            {"files": [("/input/a.txt", b"alpha\n"), ("/input/b/c.txt", b"delta\n")]},
            {"args": ["x"]},
            {"extra": {"reuse": "local", "seed": "01"}},
        ]
        for n, change in enumerate(variants, start=2):
            result = copy_job(client, **change)
            assert "reused" not in result, change
            assert executed(client) == n
        assert reused(client) == 0
        # A run that is not reusable is never indexed: timeout depends on when it stopped.
        spin = {"module": example_bytes("loop"), "limits": {"timeout_ms": 50, "fuel": 10**10},
                "extra": {"reuse": "local"}, "wait": 30}
        assert client.submit(**spin)["outcome"]["kind"] == "timeout"
        assert "reused" not in client.submit(**spin)
        assert reused(client) == 0
        # determinism off cannot be reused: a clear refusal, and the node keeps serving
        with pytest.raises(ApiRequestError) as refused:
            copy_job(client, extra={"reuse": "local", "determinism": "off"})
        assert refused.value.status == 400 and "determinism" in str(refused.value)
        assert client.health()["status"] == "ok"


def _json(result) -> bytes:
    return orjson.dumps(result)


def test_a_wrong_index_entry_never_returns_another_jobs_result(daemon_factory) -> None:
    """The index is a hint: the receipt is checked against the job, not only the key."""
    first = daemon_factory()
    with first.client() as client:
        a = copy_job(client)
        b = copy_job(client, stdin=b"b's input")
    assert first.stop() == 0
    with sqlite3.connect(first.state_dir / "journal.sqlite3") as db:
        # Point A's key at B's job, as an index bug would.
        changed = db.execute("UPDATE memos SET job_id = ? WHERE job_id = ?",
                             (b["job_id"], a["job_id"])).rowcount
    assert changed == 1
    second = daemon_factory(first.state_dir)
    with second.client() as client:
        rerun = copy_job(client)
        assert executed(client) == 1 and reused(client) == 0
    assert "reused" not in rerun and rerun["stdout"] == a["stdout"]
    assert f"not reusing job {b['job_id']}" in second.log()


def test_a_job_that_ran_without_asking_for_reuse_can_answer_a_later_one(daemon) -> None:
    with daemon.client() as client:
        ran = copy_job(client, reuse="off", stdin=b"plain")
        later = copy_job(client, stdin=b"plain")
        assert executed(client) == 1 and reused(client) == 1
        # Another module is another job.
        other = client.submit(module=example_bytes("hello"), stdin=b"plain",
                              limits={"fuel": 10**9}, extra={"reuse": "local"}, wait=30)
        assert "reused" not in other and executed(client) == 2
    assert later["reused"] == {"job_id": ran["job_id"], "executor": ran["executor"]}
