"""Remote job deadlines: one timer serves every job in flight, earliest deadline first."""

from __future__ import annotations

import time
from typing import Any

import pykka
import pytest

from plasm.actors._future import Future
from plasm.actors._mailbox import JobTicket, tell
from plasm.actors.messages import RemoteJobDone, RunRemote
from plasm.protocol.p2p_messages import PROTOCOL_NEGOTIATE, Placement
from tests.negotiation.cluster import TestNode
from tests.negotiation.conftest import WAIT_S, MakeNode
from tests.negotiation.test_remote_jobs import hello_job


def start_remote(requester: TestNode, peer_id: str, deadline_s: float) -> pykka.Future[Any]:
    done: pykka.Future[Any] = Future()
    deadline_ms = time.time_ns() // 1_000_000 + int(deadline_s * 1000)
    run = RunRemote(
        job=hello_job(requester),
        placement=Placement(mode="peer", peer_id=peer_id),
        deadline_ms=deadline_ms,
    )
    tell(
        requester.negotiator,
        run,
        job=JobTicket(run.job.job_id, done),
        reply_to=requester.ingress,
    )
    return done


@pytest.mark.timeout(60)
def test_a_job_with_an_earlier_deadline_fails_at_it_while_a_later_one_still_waits(
    make_node: MakeNode,
) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    alice.wire.silent.add((bob.peer_id, PROTOCOL_NEGOTIATE))
    patient = start_remote(alice, bob.peer_id, deadline_s=30)
    hasty = start_remote(alice, bob.peer_id, deadline_s=0.5)
    finished = hasty.get(timeout=WAIT_S)
    assert isinstance(finished, RemoteJobDone)
    assert finished.error_code == "deadline_exceeded"
    with pytest.raises(pykka.Timeout):
        patient.get(timeout=0.2)


@pytest.mark.timeout(60)
def test_every_job_past_its_deadline_fails_when_the_timer_fires(make_node: MakeNode) -> None:
    alice, bob = make_node("alice"), make_node("bob")
    alice.wire.silent.add((bob.peer_id, PROTOCOL_NEGOTIATE))
    jobs = [start_remote(alice, bob.peer_id, deadline_s=0.3 + i * 0.1) for i in range(3)]
    codes = [job.get(timeout=WAIT_S).error_code for job in jobs]
    assert codes == ["deadline_exceeded"] * 3
