"""The journal actor: group commit, and a failing write in a batch fails alone."""

from __future__ import annotations

from pathlib import Path

import pykka
import pytest

from plasm.actors._mailbox import ask_async
from plasm.actors.journal import JournalActor
from plasm.actors.journal_store import DuplicateJobError, JournalStore
from plasm.actors.messages import Ok, RecordJob


def record(job_id: str) -> RecordJob:
    return RecordJob(job_id=job_id, manifest=b"{}", module_sha256="ab" * 32, created_at_ms=1)


@pytest.fixture
def journal(tmp_path: Path) -> pykka.ActorRef[JournalActor]:
    ref = JournalActor.start(tmp_path / "journal.sqlite3")
    yield ref
    ref.stop()


def test_writes_sent_together_are_all_committed_and_a_duplicate_fails_alone(
    journal: pykka.ActorRef[JournalActor], tmp_path: Path
) -> None:
    ids = [f"{i:032x}" for i in range(20)]
    futures = [ask_async(journal, record(job_id)) for job_id in ids]
    duplicate = ask_async(journal, record(ids[3]))
    answers = [future.get(timeout=10) for future in futures]
    assert all(isinstance(answer, Ok) for answer in answers)
    with pytest.raises(DuplicateJobError):
        duplicate.get(timeout=10)
    journal.stop()
    with JournalStore(tmp_path / "journal.sqlite3") as store:
        assert sorted(job.job_id for job in store.list_jobs(None, 100)) == ids
