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


def test_blob_collection_keeps_what_jobs_name_and_drops_old_unnamed_blobs(tmp_path: Path) -> None:
    import json
    import os

    from plasm.actors._mailbox import ask, tell
    from plasm.actors.blob_store import BlobStore
    from plasm.actors.messages import CollectBlobs

    blobs = BlobStore(tmp_path / "blobs", 2**30, 2**20)
    named_input, named_output, stale, young = (
        blobs.put(data) for data in (b"input", b"output", b"stale", b"young")
    )
    for digest in (named_input, named_output, stale):
        old = os.stat(blobs.path_for(digest)).st_mtime - 7200
        os.utime(blobs.path_for(digest), (old, old))
    ref = JournalActor.start(tmp_path / "journal.sqlite3", "normal", blobs)
    try:
        manifest = json.dumps({"files": [{"path": "/input/a", "sha256": named_input}]}).encode()
        ask(ref, RecordJob(job_id="1" * 32, manifest=manifest, module_sha256="ab" * 32,
                           created_at_ms=1), timeout=10)
        ask(ref, RecordJob(job_id="2" * 32, manifest=b"{}", module_sha256="ab" * 32,
                           created_at_ms=2), timeout=10)
    finally:
        ref.stop()
    with JournalStore(tmp_path / "journal.sqlite3") as store:
        result = json.dumps({"outputs": [{"path": "/output/o", "sha256": named_output}]})
        store.finish_job("2" * 32, "done", finished_at_ms=3, outcome="ok",
                         result=result.encode(), envelope=None, error=None,
                         blobs=[named_output])
        assert store.blob_references() == {named_input, named_output}
    ref = JournalActor.start(tmp_path / "journal.sqlite3", "normal", blobs)
    try:
        tell(ref, CollectBlobs())
        ask(ref, RecordJob(job_id="3" * 32, manifest=b"{}", module_sha256="ab" * 32,
                           created_at_ms=4), timeout=10)  # after the collection, in order
    finally:
        ref.stop()
    assert sorted(blobs.hashes()) == sorted([named_input, named_output, young])
    assert stale not in blobs.hashes()
