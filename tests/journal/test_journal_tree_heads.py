"""The journal actor's tree heads: one signed in each commit batch that added leaves, each job
answered with a proof that verifies against it; a head that cannot be signed costs the
proofs of that batch, never its answers, and the next head covers its leaves."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka
import pytest
from nacl.signing import SigningKey

from plasm.actors._future import Future
from plasm.actors._mailbox import JobTicket, ask, tell
from plasm.actors.journal import JournalActor
from plasm.actors.journal_store import JournalStore
from plasm.actors.messages import (
    FinishJob,
    JobFinished,
    RecordJob,
)
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.transparency import TreeHead, head_signer, verify_log_proof, verify_tree_head

pytestmark = pytest.mark.timeout(60)

KEY = SigningKey(bytes(range(32)))
NODE = peer_id_from_public_key(bytes(KEY.verify_key))


def start(tmp_path: Path, sign: Callable[[TreeHead], bytes]) -> pykka.ActorRef[Any]:
    return JournalActor.start(tmp_path / "journal.sqlite3", "normal", None, sign, NODE)


def finish(journal: pykka.ActorRef[Any], n: int) -> tuple[bytes, Future[Any]]:
    """Record job n and tell its end with a receipt this node signed: (receipt, done)."""
    job_id = f"{n:032x}"
    ask(journal, RecordJob(job_id=job_id, manifest=b"{}", module_sha256="ab" * 32,
                           created_at_ms=n), timeout=10)  # fmt: skip
    envelope = os.urandom(64)  # the log stores receipt bytes; it does not read them
    result = b'{"job_id":"' + job_id.encode() + b'"}'
    ticket = JobTicket(job_id, Future())
    finished = JobFinished(job_id=job_id, status="done", executor=NODE, executed=None,
                           envelope=envelope, result=result)  # fmt: skip
    tell(journal, FinishJob(job_id=job_id, status="done", finished_at_ms=n, outcome="ok",
                            result=result, envelope=envelope, error=None, logged=True),
         job=ticket, finished=finished)  # fmt: skip
    return envelope, ticket.done


def test_every_job_is_answered_with_a_proof_that_verifies_and_heads_are_stored(
    tmp_path: Path,
) -> None:
    journal = start(tmp_path, head_signer(KEY))
    try:
        jobs = [finish(journal, n) for n in range(1, 301)]
        answers = [(envelope, done.get(timeout=30)) for envelope, done in jobs]
    finally:
        journal.stop()
    sizes = set()
    for index, (envelope, answer) in enumerate(answers):
        assert answer.log is not None, f"job {index} answered without a proof"
        assert answer.log.index == index
        assert verify_log_proof(envelope, answer.log, NODE).size == answer.log.size
        assert b'"log":' in answer.result
        sizes.add(answer.log.size)
    with JournalStore(tmp_path / "journal.sqlite3") as store:
        latest = store.latest_head()
        assert latest is not None and latest[0].size == 300
        assert verify_tree_head(latest[1], node=NODE).root == store.log_root(300)
        # Every answer's head is one the journal stored.
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        heads = {size for (size,) in db.execute("SELECT size FROM log_heads")}
    assert sizes <= heads


def test_a_head_that_cannot_be_signed_costs_the_proofs_not_the_answers(tmp_path: Path) -> None:
    def fail(head: TreeHead) -> bytes:
        raise RuntimeError("the key is gone")

    journal = start(tmp_path, fail)
    try:
        answers = [done.get(timeout=30) for _, done in [finish(journal, n) for n in (1, 2, 3)]]
        assert [answer.log for answer in answers] == [None, None, None]
        assert [answer.status for answer in answers] == ["done"] * 3
    finally:
        journal.stop()
    with JournalStore(tmp_path / "journal.sqlite3") as store:
        assert store.log_size == 3 and store.latest_head() is None  # the leaves kept
    # Signing works again: the next head covers the leaves that went without one.
    journal = start(tmp_path, head_signer(KEY))
    try:
        envelope, done = finish(journal, 4)
        answer = done.get(timeout=30)
    finally:
        journal.stop()
    assert answer.log is not None and answer.log.size == 4 and answer.log.index == 3
    assert verify_log_proof(envelope, answer.log, NODE).size == 4


def test_the_head_signer_signs_only_its_own_nodes_heads() -> None:
    other = peer_id_from_public_key(bytes(SigningKey(bytes(32)).verify_key))
    with pytest.raises(ValueError, match="refusing"):
        head_signer(KEY)(TreeHead(1, bytes(32), 0, other))
