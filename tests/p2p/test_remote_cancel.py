"""A job a peer runs is first-class on the node that sent it: `running` there with the
executor's peer ID and start time, cancelled from there (the executor is told over
/plasm/cancel/1.0.0 and both journals end `cancelled`), and a requester that dies mid-job
leaves the executor to end it by its own deadline. Real daemons on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plasm.client import ApiRequestError, Client
from plasm.protocol.verification import expectations_from_saved, verify_saved
from tests.conftest import running_daemons
from tests.integration.daemon_checks import SPIN_LIMITS, example_bytes, wait_for_status
from tests.p2p.conftest import Pair, start_pair, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _status_on(client: Client, job_id: str) -> str | None:
    try:
        return str(client.job(job_id)["status"])
    except ApiRequestError as exc:
        if exc.code != "unknown_job":
            raise
        return None


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_daemons(tmp_path_factory) as make:
        yield start_pair(make)


def test_a_remote_job_runs_and_is_cancelled_from_the_requester(pair: Pair) -> None:
    import orjson

    with pair.requester.client() as r, pair.executor.client() as e:
        accepted = r.submit(module=example_bytes("loop"), limits=SPIN_LIMITS,
                            placement={"mode": "peer", "peer_id": pair.executor_id})
        job_id = accepted["job_id"]
        running = wait_for_status(r, job_id, frozenset({"running"}))
        assert running["executor"] == pair.executor_id
        assert isinstance(running["started_at_ms"], int)
        assert running["started_at_ms"] >= running["created_at_ms"]
        # the requester shows it running once the request went out: the executor may
        # journal it a moment later
        wait_until(lambda: _status_on(e, job_id) == "running", "the executor to run it", 60)
        assert r.cancel(job_id)["status"] == "cancelling"
        mine = wait_for_status(r, job_id)
        theirs = wait_for_status(e, job_id)
        assert mine["status"] == "cancelled", mine
        assert theirs["status"] == "cancelled", theirs
        # the executor's signed receipt of the cancelled run came back and verifies
        result = mine["result"]
        assert result["outcome"]["kind"] == "cancelled"
        assert result["executor"] == pair.executor_id
        verdict = verify_saved(*expectations_from_saved(orjson.dumps(result)))
        assert verdict["valid"], verdict
        assert "executor" not in mine  # shown while running; the result names it now
        # both keep serving
        done = r.submit(module=example_bytes("hello"), wait=30,
                        placement={"mode": "peer", "peer_id": pair.executor_id})
        assert done["status"] == "done", done


def test_cancelling_a_job_no_peer_took_yet_ends_it_at_once(pair: Pair) -> None:
    with pair.requester.client() as r:
        # a requirement nobody meets: the job waits for a candidate, then fails
        accepted = r.submit(module=example_bytes("hello"),
                            placement={"mode": "any", "exclude_self": True,
                                       "requirements": {"arch": "riscv64"}})
        job_id = accepted["job_id"]
        try:
            answer = r.cancel(job_id)  # within the candidate search (2 s)
        except ApiRequestError as exc:  # a machine so loaded the search ended first
            assert exc.code == "not_cancellable", exc
            assert wait_for_status(r, job_id)["error"]["code"] == "no_executor"
            return
        final = wait_for_status(r, job_id)
    assert answer["status"] == "cancelling", answer
    assert final["status"] == "cancelled", final
    assert final["error"]["code"] == "cancelled"


def test_a_requester_that_dies_leaves_the_executor_to_end_the_job_by_its_deadline(
    pair: Pair,
) -> None:
    with pair.requester.client() as r:
        accepted = r.submit(module=example_bytes("loop"),
                            limits={"fuel": 10**11, "timeout_ms": 3000},
                            placement={"mode": "peer", "peer_id": pair.executor_id})
        job_id = accepted["job_id"]
        wait_for_status(r, job_id, frozenset({"running"}))
    pair.requester.kill()
    with pair.executor.client() as e:
        final = wait_for_status(e, job_id, timeout=30)
        assert final["status"] == "done" and final["outcome"] == "timeout", final
        assert e.health()["status"] == "ok"
        again = e.submit(module=example_bytes("hello"), wait=30)
        assert again["status"] == "done", again
