"""The local path of a job: ingress -> executor pool -> signer (-> journal)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest
from nacl.signing import SigningKey

from plasm.actors import _mailbox
from plasm.actors.errors import (
    LimitsExceededError,
    QueueFullError,
    ShuttingDownError,
    UnknownJobError,
    UnknownModuleError,
)
from plasm.actors.ingress import SHORT_JOB_US
from plasm.actors.messages import JobFinished
from plasm.actors.node import Node, NodeSettings, result_json
from plasm.protocol.errors import DecodeError
from plasm.protocol.receipt import verify_envelope
from plasm.protocol.schemas import validator
from plasm.runtime.job import JobInput, Limits, OutcomeKind
from tests.conftest import example

LONG = Limits(fuel=10**11, timeout_ms=60_000)
WAIT_S = 30


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(bytes(range(32)))


@pytest.fixture
def node(key: SigningKey, tmp_path: Path) -> Iterator[Node]:
    settings = NodeSettings(
        executor_count=2, queue_length=4, strict_messages=True, module_cache_dir=tmp_path / "cache"
    )
    with Node(key, settings) as started:
        yield started


def run(node: Node, name: str, stdin: bytes = b"", limits: Limits | None = None) -> JobFinished:
    submission = node.submit(
        module=example(name).read_bytes(),
        module_sha256=None,
        job_input=JobInput(stdin=stdin, module_name=f"{name}.wasm"),
        limits=limits or Limits(),
    )
    finished = submission.done.get(timeout=WAIT_S)
    assert isinstance(finished, JobFinished)
    return finished


def wait_until_running(node: Node, count: int = 1) -> None:
    deadline = time.monotonic() + WAIT_S
    while node.stats().running < count:
        assert time.monotonic() < deadline, "job did not start"
        time.sleep(0.01)


def test_a_job_runs_through_the_actors_and_comes_back_signed_by_the_node(node: Node) -> None:
    finished = run(node, "hello", b"Hello, World")
    assert finished.status == "done"
    assert finished.executed is not None and finished.envelope is not None
    assert finished.executed.outcome.stdout == b"dlroW ,olleH\n"
    receipt = verify_envelope(
        finished.envelope,
        expected_executor=node.peer_id,
        stdout=b"dlroW ,olleH\n",
        expected_job_id=finished.job_id,
    )
    assert receipt.requester == node.peer_id
    assert receipt.outcome == OutcomeKind.OK


def test_the_result_json_matches_the_job_result_schema(node: Node) -> None:
    document = result_json(run(node, "exit3"))
    validator("job-result").validate(document)
    assert document["outcome"] == {"kind": "exit", "exit_code": 3, "message": None}


def test_strict_mode_refuses_a_message_that_cannot_cross_the_wire() -> None:
    broken = dataclasses.replace(
        JobFinished(job_id="0" * 32, status="done", executor="x", executed=None, envelope=None)
    )
    object.__setattr__(broken, "envelope", 1.5)  # a float: CBOR rules forbid it
    assert _mailbox.is_strict()
    with pytest.raises((DecodeError, ValueError)):
        _mailbox.checked(broken)


def test_a_full_queue_refuses_new_jobs_and_keeps_the_accepted_ones(node: Node) -> None:
    loop = example("loop").read_bytes()
    accepted = []
    with pytest.raises(QueueFullError):
        for _ in range(20):  # 2 executors x 2 prefetched + 4 queued, then refusal
            accepted.append(
                node.submit(module=loop, module_sha256=None, job_input=JobInput(), limits=LONG)
            )
    assert len(accepted) == 8
    for submission in accepted:
        node.cancel(submission.job_id)
    statuses = [s.done.get(timeout=WAIT_S).status for s in accepted]
    assert statuses == ["cancelled"] * len(accepted)


def test_an_unconfirmed_submission_runs_and_its_id_is_the_node_s(node: Node) -> None:
    submission = node.submit(
        module=example("hello").read_bytes(),
        module_sha256=None,
        job_input=JobInput(stdin=b"abc"),
        limits=Limits(),
        confirm=False,
    )
    finished = submission.wait(WAIT_S)
    assert finished is not None and finished.job_id == submission.job_id
    assert finished.executed is not None and finished.executed.outcome.stdout == b"cba\n"
    submission.confirm()  # it was admitted: nothing to raise


def test_an_unconfirmed_submission_that_is_refused_raises_from_wait_and_confirm(
    node: Node,
) -> None:
    submission = node.submit(
        module=None, module_sha256="ab" * 32, job_input=JobInput(), limits=Limits(), confirm=False
    )
    with pytest.raises(UnknownModuleError):
        submission.wait(WAIT_S)
    with pytest.raises(UnknownModuleError):
        submission.confirm()


def test_an_executor_holds_four_jobs_while_its_jobs_are_short_and_two_after_a_long_one(
    key: SigningKey,
) -> None:
    with Node(key, NodeSettings(executor_count=1, queue_length=10)) as one:
        # hello.wasm takes ~0.3 ms, but a first job or a busy machine can take longer.
        for _ in range(50):
            executed = run(one, "hello").executed
            assert executed is not None
            if executed.outcome.wall_time_us < SHORT_JOB_US:
                break
        else:
            raise AssertionError("no hello.wasm job took under a millisecond in 50 tries")
        loop = example("loop").read_bytes()
        spinning = [
            one.submit(module=loop, module_sha256=None, job_input=JobInput(), limits=LONG)
            for _ in range(6)
        ]
        stats = one.stats()
        assert (stats.running, stats.queue_depth) == (4, 2)
        wait_until_running(one)
        time.sleep(0.05)  # the first one has now run for far more than a millisecond
        one.cancel(spinning[0].job_id)
        assert spinning[0].done.get(timeout=WAIT_S).status == "cancelled"
        stats = one.stats()
        assert (stats.running, stats.queue_depth) == (3, 2)  # nothing new handed over
        for submission in spinning[1:]:
            one.cancel(submission.job_id)
        assert {s.done.get(timeout=WAIT_S).status for s in spinning} == {"cancelled"}


def test_cancelling_a_running_job_gives_a_cancelled_receipt(node: Node) -> None:
    submission = node.submit(
        module=example("loop").read_bytes(), module_sha256=None, job_input=JobInput(), limits=LONG
    )
    wait_until_running(node)
    node.cancel(submission.job_id)
    finished = submission.done.get(timeout=WAIT_S)
    assert finished.status == "cancelled"
    assert finished.envelope is not None
    receipt = verify_envelope(finished.envelope, expected_executor=node.peer_id)
    assert receipt.outcome == OutcomeKind.CANCELLED


def test_cancelling_an_unknown_job_says_so(node: Node) -> None:
    with pytest.raises(UnknownJobError):
        node.cancel("f" * 32)


def test_limits_above_the_node_maximum_are_refused(key: SigningKey) -> None:
    settings = NodeSettings(executor_count=1, max_limits=Limits(fuel=1000))
    with Node(key, settings) as small, pytest.raises(LimitsExceededError, match="fuel"):
        small.submit(
            module=example("hello").read_bytes(),
            module_sha256=None,
            job_input=JobInput(),
            limits=Limits(fuel=1001),
        )


def test_a_module_named_only_by_an_unknown_hash_is_refused(node: Node) -> None:
    with pytest.raises(UnknownModuleError):
        node.submit(module=None, module_sha256="ab" * 32, job_input=JobInput(), limits=Limits())


def test_an_uploaded_module_runs_by_its_hash(node: Node) -> None:
    sha256 = node.put_module(example("hello").read_bytes())
    submission = node.submit(
        module=None, module_sha256=sha256, job_input=JobInput(), limits=Limits()
    )
    assert submission.done.get(timeout=WAIT_S).executed.outcome.stdout == b"Hello, World!\n"


def test_an_invalid_module_fails_with_a_signed_receipt(node: Node) -> None:
    submission = node.submit(
        module=b"\0asm garbage", module_sha256=None, job_input=JobInput(), limits=Limits()
    )
    finished = submission.done.get(timeout=WAIT_S)
    assert finished.status == "failed"
    assert finished.executed.outcome.kind == OutcomeKind.INVALID_MODULE


def test_a_stopping_node_cancels_jobs_that_outlive_the_grace(key: SigningKey) -> None:
    started = Node(key, NodeSettings(executor_count=1)).start()
    try:
        running = started.submit(
            module=example("loop").read_bytes(),
            module_sha256=None,
            job_input=JobInput(),
            limits=LONG,
        )
        wait_until_running(started)
    finally:
        started.stop(grace_s=0.2)
    assert running.done.get(timeout=WAIT_S).status == "cancelled"
    assert not pykka.ActorRegistry.get_all()


def test_a_stopped_node_takes_no_jobs(key: SigningKey) -> None:
    started = Node(key, NodeSettings(executor_count=1)).start()
    ingress = started.ingress
    started._drain(grace_s=1)
    with pytest.raises(ShuttingDownError):
        started.submit(
            module=example("hello").read_bytes(),
            module_sha256=None,
            job_input=JobInput(),
            limits=Limits(),
        )
    started.stop()
    assert not ingress.is_alive()


def test_jobs_and_receipts_are_journaled_before_results_return(
    key: SigningKey, tmp_path: Path
) -> None:
    settings = NodeSettings(executor_count=1, journal_path=tmp_path / "journal.sqlite3")
    with Node(key, settings) as journaled:
        finished = run(journaled, "hello")
        info = journaled.job(finished.job_id)
        assert info.status == "done"
        listed = journaled.jobs()
    assert [job.job_id for job in listed.jobs] == [finished.job_id]
    from plasm.actors.journal_store import JournalStore

    with JournalStore(tmp_path / "journal.sqlite3") as store:
        record = store.get_job(finished.job_id)
    assert record is not None and record.envelope == finished.envelope


def test_a_failing_handler_answers_the_error_and_the_actor_keeps_serving(node: Node) -> None:
    with pytest.raises(UnknownJobError):
        node.cancel("e" * 32)
    assert node.ingress.is_alive()
    assert run(node, "hello").status == "done"


def test_the_signer_refuses_a_receipt_that_names_another_executor(key: SigningKey) -> None:
    from plasm.actors._mailbox import ask
    from plasm.actors.messages import SignReceipt
    from plasm.actors.signer import SignerActor, SignerError
    from plasm.protocol.receipt import build_receipt
    from plasm.runtime.sandbox import Sandbox

    other = SigningKey(bytes(32))
    with Sandbox() as sandbox:
        outcome = sandbox.run(example("hello").read_bytes(), JobInput(), Limits())
    from plasm.protocol.identity import peer_id_from_public_key

    receipt = build_receipt(
        job_id="0" * 32,
        module_sha256="00" * 32,
        job_input=JobInput(),
        limits=Limits(),
        outcome=outcome,
        engine_name="wasmtime",
        engine_version="x",
        executor=peer_id_from_public_key(bytes(other.verify_key)),
        requester=peer_id_from_public_key(bytes(key.verify_key)),
        nonce=bytes(16),
    )
    signer = SignerActor.start(key)
    try:
        with pytest.raises(SignerError, match="refusing to sign"):
            ask(signer, SignReceipt(receipt=receipt), timeout=WAIT_S)
        assert signer.is_alive()
    finally:
        signer.stop()


def test_a_burst_of_jobs_is_journaled_in_shared_commits_and_every_one_lands(
    key: SigningKey, tmp_path: Path
) -> None:
    settings = NodeSettings(executor_count=2, journal_path=tmp_path / "journal.sqlite3")
    with Node(key, settings) as journaled:
        module = example("hello").read_bytes()
        submissions = [
            journaled.submit(
                module=module, module_sha256=None, job_input=JobInput(), limits=Limits()
            )
            for _ in range(50)
        ]
        finished = [s.done.get(timeout=WAIT_S) for s in submissions]
    from plasm.actors.journal_store import JournalStore

    with JournalStore(tmp_path / "journal.sqlite3") as store:
        for job in finished:
            record = store.get_job(job.job_id)
            assert record is not None and record.status == "done"
            assert record.envelope == job.envelope


def test_an_executor_refuses_bytes_that_are_not_the_module_the_job_names(
    key: SigningKey,
) -> None:
    import os

    from plasm.actors._future import Future
    from plasm.actors._mailbox import Delivery, JobTicket, PlasmActor, handles, tell
    from plasm.actors.executor import ExecutorActor
    from plasm.actors.messages import JobCompleted
    from plasm.actors.signer import SignerActor
    from plasm.protocol.messages import ExecuteJob
    from plasm.runtime.sandbox import Sandbox

    class Collector(PlasmActor):
        @handles(JobCompleted)
        def on_completed(self, message: JobCompleted, delivery: Delivery) -> None:
            assert delivery.job is not None
            delivery.job.done.set(message)

    peer = Node(key).peer_id
    hello = example("hello").read_bytes()
    job = ExecuteJob(
        job_id="0" * 32,
        module=hello,
        module_sha256="ab" * 32,
        job_input=JobInput(),
        limits=Limits(),
        requester=peer,
        nonce=os.urandom(16),
    )
    with Sandbox() as sandbox:
        signer = SignerActor.start(key)
        executor = ExecutorActor.start(sandbox, signer, peer)
        collector = Collector.start()
        try:
            done: Future[JobCompleted] = Future()
            tell(executor, job, job=JobTicket(job.job_id, done), reply_to=collector)
            outcome = done.get(timeout=WAIT_S).executed.outcome
        finally:
            for ref in (collector, executor, signer):
                ref.stop()
    assert outcome.kind == OutcomeKind.INVALID_MODULE
    assert "do not match module_sha256" in (outcome.message or "")
    assert outcome.stdout == b""
