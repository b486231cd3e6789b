"""The journal actor's tree heads: asked of the signer without waiting, answered into its
inbox; jobs are answered once a committed head covers them, with a proof that verifies; a
signer that fails or never answers costs the proofs of the jobs waiting, never their answers.
The signer is the real one, or (for the failures) a stand-in."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pykka
import pytest
from nacl.signing import SigningKey

from plasm.actors import journal as journal_module
from plasm.actors._future import Future
from plasm.actors._mailbox import Delivery, JobTicket, PlasmActor, ask, handles, tell
from plasm.actors.journal import JournalActor
from plasm.actors.journal_store import JournalStore
from plasm.actors.messages import (
    FinishJob,
    JobFinished,
    RecordJob,
    SignTreeHead,
    TreeHeadSigned,
)
from plasm.actors.signer import SignerActor
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.transparency import TreeHead, sign_tree_head, verify_log_proof, verify_tree_head

pytestmark = pytest.mark.timeout(60)

KEY = SigningKey(bytes(range(32)))
NODE = peer_id_from_public_key(bytes(KEY.verify_key))


class FailingSigner(PlasmActor):
    @handles(SignTreeHead)
    def on_sign(self, message: SignTreeHead, delivery: Delivery) -> None:
        raise RuntimeError("the key is gone")


class SilentSigner(PlasmActor):
    """Takes every request and answers none (a signer stuck for good)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Delivery] = []

    @handles(SignTreeHead)
    def on_sign(self, message: SignTreeHead, delivery: Delivery) -> Any:
        self.held.append(delivery)
        return delivery.defer()


def start(tmp_path: Path, signer: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
    return JournalActor.start(tmp_path / "journal.sqlite3", "normal", None, signer, NODE)


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
    signer = SignerActor.start(KEY)
    journal = start(tmp_path, signer)
    try:
        jobs = [finish(journal, n) for n in range(1, 301)]
        answers = [(envelope, done.get(timeout=30)) for envelope, done in jobs]
    finally:
        journal.stop()
        signer.stop()
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


def test_a_failing_signer_costs_the_proofs_not_the_answers(tmp_path: Path) -> None:
    signer = FailingSigner.start()
    journal = start(tmp_path, signer)
    try:
        answers = [done.get(timeout=30) for _, done in [finish(journal, n) for n in (1, 2, 3)]]
        assert [answer.log for answer in answers] == [None, None, None]
        assert [answer.status for answer in answers] == ["done"] * 3
    finally:
        journal.stop()
        signer.stop()
    with JournalStore(tmp_path / "journal.sqlite3") as store:
        assert store.log_size == 3 and store.latest_head() is None  # the leaves kept


def test_a_signer_that_never_answers_is_given_up_on_and_a_late_head_still_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SIGN_HEAD_TIMEOUT_S", 0.3)
    signer = SilentSigner.start()
    journal = start(tmp_path, signer)
    try:
        _, done = finish(journal, 1)
        answer = done.get(timeout=20)  # after the timeout, without a proof
        assert answer.status == "done" and answer.log is None
        # The journal still serves: the next job asks for a new head (none answered).
        _, second = finish(journal, 2)
        assert second.get(timeout=20).log is None
        held = signer.proxy().held.get()
        assert [d.message.size for d in held] == [1, 2]
        # The signer wakes up: its late answer is a good head, stored (not thrown away).
        late = held[1].message
        cose = sign_tree_head(TreeHead(late.size, late.root, late.timestamp_ms, NODE), KEY)
        held[1].reply.set(
            TreeHeadSigned(
                size=late.size, root=late.root, timestamp_ms=late.timestamp_ms, cose=cose
            )
        )
        _, third = finish(journal, 3)  # a write after the late head: it has been handled
        third.get(timeout=20)
    finally:
        journal.stop()
        signer.stop()
    with JournalStore(tmp_path / "journal.sqlite3") as store:
        latest = store.latest_head()
        assert latest is not None and (latest[0].size, latest[1]) == (2, cose)
