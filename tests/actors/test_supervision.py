"""Supervision: whatever an actor raises while it holds a job, the job ends and the node serves.

Each test injects a failure (actors/_faults.py) into one actor's handler for the message
that carries a job, on a node with a real journal, sandbox and signer, and checks what a
user would: the job's answer is `failed` with `internal_error` naming the actor, the
journal holds it final, the executor slot is free (the next job runs), and `stop` returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pykka
import pytest
from nacl.signing import SigningKey

from plasm.actors import _faults
from plasm.actors._future import Future
from plasm.actors._mailbox import Delivery, PlasmActor, ask, ask_async, handles
from plasm.actors.journal_store import JournalStore
from plasm.actors.messages import JobFinished, Ok
from plasm.actors.node import Node, NodeSettings
from plasm.runtime.job import JobInput, Limits
from tests.conftest import example

WAIT_S = 30


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(bytes(range(32)))


@pytest.fixture(autouse=True)
def _disarm() -> Iterator[None]:
    yield
    _faults.disarm()


def _settings(tmp_path: Path, executors: int = 1) -> NodeSettings:
    return NodeSettings(
        executor_count=executors,
        queue_length=16,
        strict_messages=True,
        journal_path=tmp_path / "journal.sqlite",
        module_cache_dir=tmp_path / "cache",
    )


def _submit(node: Node, name: str = "hello", limits: Limits | None = None) -> Future[JobFinished]:
    submission = node.submit(
        module=example(name).read_bytes(),
        module_sha256=None,
        job_input=JobInput(stdin=b"abc", module_name=f"{name}.wasm"),
        limits=limits or Limits(),
    )
    return submission.done  # type: ignore[return-value]


def _journal_status(path: Path, job_id: str) -> str:
    store = JournalStore(path)
    try:
        record = store.get_job(job_id)
        assert record is not None
        return record.status
    finally:
        store.close()


FAULTS = [
    ("ExecutorActor", "ExecuteJob"),
    ("SignerActor", "SignReceipt"),
    ("IngressActor", "JobCompleted"),
    ("JournalActor", "FinishJob"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("actor", "message"), FAULTS)
def test_a_failure_in_any_actor_ends_the_job_it_held_and_the_node_keeps_serving(
    key: SigningKey, tmp_path: Path, actor: str, message: str
) -> None:
    node = Node(key, _settings(tmp_path)).start()
    try:
        _faults.arm(f"{actor}.{message}=1")
        finished = _submit(node).get(timeout=WAIT_S)
        assert finished.status == "failed"
        assert finished.error is not None
        error = orjson.loads(finished.error)
        assert error["code"] == "internal_error"
        assert actor in error["message"]
        # The one executor is free again: the next job runs and is done.
        after = _submit(node).get(timeout=WAIT_S)
        assert after.status == "done"
        assert node.stats().running == 0
    finally:
        started = time.monotonic()
        node.stop(grace_s=2)
        assert time.monotonic() - started < 2 + 10
    assert _journal_status(tmp_path / "journal.sqlite", finished.job_id) == "failed"
    assert _journal_status(tmp_path / "journal.sqlite", after.job_id) == "done"


@pytest.mark.timeout(60)
def test_a_failing_record_refuses_the_job_and_journals_nothing(
    key: SigningKey, tmp_path: Path
) -> None:
    with Node(key, _settings(tmp_path)) as node:
        _faults.arm("JournalActor.RecordJob=1")
        with pytest.raises(_faults.InjectedFault):
            node.submit(
                module=example("hello").read_bytes(),
                module_sha256=None,
                job_input=JobInput(),
                limits=Limits(),
            )
        assert _submit(node).get(timeout=WAIT_S).status == "done"
        assert {k: v for k, v in node.job_counts().items() if v} == {"done": 1}


@pytest.mark.timeout(60)
def test_stop_returns_in_its_deadline_and_journals_a_stuck_job_interrupted(
    key: SigningKey, tmp_path: Path
) -> None:
    node = Node(key, _settings(tmp_path)).start()
    try:
        # The signer hangs on the receipt: the job is stuck between actors and no cancel
        # can reach it.
        _faults.arm("SignerActor.SignReceipt=hang")
        stuck = _submit(node)
        deadline = time.monotonic() + WAIT_S
        while not _faults.hanging():
            assert time.monotonic() < deadline, "the signer never got the job"
            time.sleep(0.01)
    finally:
        started = time.monotonic()
        node.stop(grace_s=0.5)
        took = time.monotonic() - started
        _faults.disarm()  # lets the hung signer thread end
    finished = stuck.get(timeout=1)
    assert finished.status == "interrupted"
    assert took < 0.5 + 2 + 5 + 5
    assert _journal_status(tmp_path / "journal.sqlite", finished.job_id) == "interrupted"


class _Slow(PlasmActor):
    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self._entered, self._release = entered, release

    @handles(Ok)
    def on_ok(self, message: Ok, delivery: Delivery) -> str:
        self._entered.set()
        self._release.wait(WAIT_S)
        return "answered"


@pytest.mark.timeout(30)
def test_an_ask_left_in_the_inbox_of_a_stopping_actor_fails_at_once() -> None:
    entered, release = threading.Event(), threading.Event()
    slow = _Slow.start(entered, release)
    first = ask_async(slow, Ok())
    assert entered.wait(WAIT_S)
    stopped = slow.stop(block=False)
    behind = ask_async(slow, Ok())  # queued after the stop: it will never be handled
    release.set()
    started = time.monotonic()
    with pytest.raises(pykka.ActorDeadError):
        behind.get(timeout=10)
    assert time.monotonic() - started < 5  # at once, not after the ask's timeout
    assert first.get(timeout=1) == "answered"
    stopped.get(timeout=WAIT_S)
    with pytest.raises(pykka.ActorDeadError):
        ask(slow, Ok(), timeout=1)
