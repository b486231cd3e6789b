"""Supervision on the requester side: a failure while the negotiator holds a remote job ends it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest

from plasm.actors import _faults
from plasm.actors.messages import JobFinished
from plasm.protocol.p2p_messages import Placement
from tests.negotiation.conftest import WAIT_S, MakeNode
from tests.negotiation.test_remote_jobs import ANY, connect, hello_job, run_remote_future


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    _faults.disarm()


@pytest.mark.timeout(60)
def test_a_failure_on_a_peers_answer_ends_that_job_and_the_next_one_runs(
    make_node: MakeNode,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    on_bob = Placement(mode="peer", peer_id=bob.peer_id)
    _faults.arm("NegotiatorActor.PeerResponse=1")
    ended = run_remote_future(alice, on_bob, job=hello_job(alice)).get(timeout=WAIT_S)
    # No supervisor in the ticket here: the failing actor completes `done` itself.
    assert isinstance(ended, JobFinished) and ended.status == "failed"
    assert ended.error is not None
    error = orjson.loads(ended.error)
    assert error["code"] == "internal_error" and "NegotiatorActor" in error["message"]
    after = run_remote_future(alice, on_bob, job=hello_job(alice)).get(timeout=WAIT_S)
    assert after.error_code is None, after.error_message


@pytest.mark.timeout(60)
def test_a_failure_in_discovery_on_the_jobs_search_ends_the_job_with_internal_error(
    make_node: MakeNode,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    deadline = time.monotonic() + WAIT_S
    while not bob.wire.announced:  # bob signed its record: it answers alice's fetch of it
        assert time.monotonic() < deadline, "bob never announced its record"
        time.sleep(0.01)
    connect(alice, bob)
    _faults.arm("DiscoveryActor.FindCandidates=1")
    done = run_remote_future(alice, ANY, job=hello_job(alice)).get(timeout=WAIT_S)
    assert done.error_code == "internal_error"
    assert "DiscoveryActor" in (done.error_message or "")
