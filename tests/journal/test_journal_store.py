from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from plasm.actors.journal_store import (
    INTERRUPTED_ERROR,
    JOB_STATUSES,
    SCHEMA_VERSION,
    DuplicateJobError,
    JobNotFoundError,
    JobStateError,
    JournalDamagedError,
    JournalError,
    JournalSchemaError,
    JournalStore,
    ModuleHashError,
    ReceiptConflictError,
)

MODULE = b"\x00asm\x01\x00\x00\x00"
MODULE_SHA = hashlib.sha256(MODULE).hexdigest()
# An envelope with bytes that any re-encoding or text round trip would mangle.
ENVELOPE = b"\xa4av\x01dbody\x00\xff\xfe" + bytes(range(256))
RESULT = b'{"job_id":"x","status":"done"}'


def job_id(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def store(journal_path: Path) -> Iterator[JournalStore]:
    store = JournalStore(journal_path)
    yield store
    store.close()


def finish_done(store: JournalStore, jid: str, envelope: bytes = ENVELOPE) -> None:
    store.finish_job(
        jid,
        "done",
        finished_at_ms=300,
        outcome="ok",
        result=RESULT,
        envelope=envelope,
        error=None,
    )


def test_new_journal_is_created_in_wal_mode_with_the_current_schema(
    store: JournalStore, journal_path: Path
) -> None:
    with sqlite3.connect(journal_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_added_job_reads_back_queued_with_its_manifest(store: JournalStore) -> None:
    store.add_job(job_id(1), b'{"module_sha256":"ab"}', MODULE_SHA, created_at_ms=100)

    record = store.get_job(job_id(1))

    assert record is not None
    assert record.status == "queued"
    assert record.manifest == b'{"module_sha256":"ab"}'
    assert record.module_sha256 == MODULE_SHA
    assert record.created_at_ms == 100
    assert (record.started_at_ms, record.finished_at_ms, record.envelope) == (None, None, None)


def test_unknown_job_reads_back_as_none(store: JournalStore) -> None:
    assert store.get_job(job_id(404)) is None


def test_finished_job_reads_back_with_times_outcome_and_result(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    store.mark_running(job_id(1), started_at_ms=200)
    finish_done(store, job_id(1))

    record = store.get_job(job_id(1))

    assert record is not None
    assert record.status == "done"
    assert (record.started_at_ms, record.finished_at_ms) == (200, 300)
    assert record.outcome == "ok"
    assert record.result == RESULT
    assert record.error is None


def test_receipt_envelope_comes_back_byte_identical_after_reopening(journal_path: Path) -> None:
    with JournalStore(journal_path) as store:
        store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
        store.mark_running(job_id(1), started_at_ms=200)
        finish_done(store, job_id(1))

    with JournalStore(journal_path) as reopened:
        record = reopened.get_job(job_id(1))

    assert record is not None
    assert record.envelope == ENVELOPE
    assert type(record.envelope) is bytes


def test_adding_a_job_id_twice_is_refused(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)

    with pytest.raises(DuplicateJobError, match=job_id(1)):
        store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=101)


def test_marking_an_unknown_job_running_raises_not_found(store: JournalStore) -> None:
    with pytest.raises(JobNotFoundError, match=job_id(9)):
        store.mark_running(job_id(9), started_at_ms=1)


def test_marking_a_running_job_running_again_is_refused(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    store.mark_running(job_id(1), started_at_ms=200)

    with pytest.raises(JobStateError, match="it is running, not queued"):
        store.mark_running(job_id(1), started_at_ms=201)


def test_finishing_a_finished_job_with_another_envelope_raises_receipt_conflict(
    store: JournalStore,
) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    finish_done(store, job_id(1))

    with pytest.raises(ReceiptConflictError, match="never replaced"):
        finish_done(store, job_id(1), envelope=b"another envelope")

    record = store.get_job(job_id(1))
    assert record is not None and record.envelope == ENVELOPE


def test_finishing_a_finished_job_again_is_refused_and_changes_nothing(
    store: JournalStore,
) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    finish_done(store, job_id(1))

    with pytest.raises(JobStateError, match="already finished as done"):
        store.finish_job(
            job_id(1),
            "failed",
            finished_at_ms=999,
            outcome=None,
            result=None,
            envelope=None,
            error=b'{"code":"x","message":"y"}',
        )

    record = store.get_job(job_id(1))
    assert record is not None
    assert (record.status, record.finished_at_ms, record.error) == ("done", 300, None)


def test_receipts_table_refuses_updates_even_from_another_client(
    store: JournalStore, journal_path: Path
) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    finish_done(store, job_id(1))

    with (
        sqlite3.connect(journal_path) as raw,
        pytest.raises(sqlite3.IntegrityError, match="receipts are immutable"),
    ):
        raw.execute("UPDATE receipts SET envelope = x'00' WHERE job_id = ?", (job_id(1),))


def test_a_failed_finish_rolls_back_the_job_row_too(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)

    with pytest.raises(JournalError):
        # The job UPDATE succeeds, then the receipt INSERT fails: SQLite cannot bind an object.
        store.finish_job(
            job_id(1),
            "done",
            finished_at_ms=300,
            outcome="ok",
            result=RESULT,
            envelope=cast(bytes, object()),
            error=None,
        )

    record = store.get_job(job_id(1))
    assert record is not None
    assert (record.status, record.result, record.finished_at_ms) == ("queued", None, None)


def test_finishing_with_an_error_that_is_not_code_and_message_json_is_refused(
    store: JournalStore,
) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)

    with pytest.raises(JournalError, match="code, message"):
        store.finish_job(
            job_id(1),
            "failed",
            finished_at_ms=300,
            outcome=None,
            result=None,
            envelope=None,
            error=b'{"reason":"peer vanished"}',
        )


def test_finishing_as_a_status_that_is_not_an_end_is_refused(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)

    with pytest.raises(JournalError, match="use one of done, failed, cancelled, rejected"):
        store.finish_job(
            job_id(1),
            "running",
            finished_at_ms=300,
            outcome=None,
            result=None,
            envelope=None,
            error=None,
        )


def test_a_job_cancelled_while_running_can_still_be_finished_with_its_receipt(
    store: JournalStore,
) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    store.mark_running(job_id(1), started_at_ms=200)
    store.set_status(job_id(1), "cancelled")
    store.finish_job(
        job_id(1),
        "cancelled",
        finished_at_ms=300,
        outcome="cancelled",
        result=RESULT,
        envelope=ENVELOPE,
        error=None,
    )

    record = store.get_job(job_id(1))
    assert record is not None
    assert (record.status, record.outcome, record.envelope) == ("cancelled", "cancelled", ENVELOPE)


def test_cancelling_a_cancelled_job_again_is_a_no_op(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    store.set_status(job_id(1), "cancelled")
    store.set_status(job_id(1), "cancelled")

    record = store.get_job(job_id(1))
    assert record is not None and record.status == "cancelled"


def test_rejecting_a_finished_job_is_refused(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    finish_done(store, job_id(1))

    with pytest.raises(JobStateError, match="already finished"):
        store.set_status(job_id(1), "rejected")


def test_set_status_only_cancels_or_rejects(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)

    with pytest.raises(JournalError, match="cancelled or rejected"):
        store.set_status(job_id(1), "done")


def test_list_jobs_returns_newest_first(store: JournalStore) -> None:
    for n, created in [(1, 100), (2, 300), (3, 200)]:
        store.add_job(job_id(n), b"{}", MODULE_SHA, created_at_ms=created)

    assert [r.job_id for r in store.list_jobs()] == [job_id(2), job_id(3), job_id(1)]


def test_list_jobs_keeps_only_the_status_asked_for(store: JournalStore) -> None:
    for n in range(1, 5):
        store.add_job(job_id(n), b"{}", MODULE_SHA, created_at_ms=100 + n)
    store.mark_running(job_id(2), started_at_ms=200)
    store.mark_running(job_id(4), started_at_ms=200)

    assert [r.job_id for r in store.list_jobs("running")] == [job_id(4), job_id(2)]
    assert [r.job_id for r in store.list_jobs("queued")] == [job_id(3), job_id(1)]
    assert store.list_jobs("done") == []


def test_list_jobs_stops_at_the_limit(store: JournalStore) -> None:
    for n in range(1, 6):
        store.add_job(job_id(n), b"{}", MODULE_SHA, created_at_ms=100 + n)

    assert [r.job_id for r in store.list_jobs(limit=2)] == [job_id(5), job_id(4)]


def test_list_jobs_includes_the_receipt_envelope(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    finish_done(store, job_id(1))

    assert [r.envelope for r in store.list_jobs("done")] == [ENVELOPE]


def test_list_jobs_refuses_an_unknown_status(store: JournalStore) -> None:
    with pytest.raises(JournalError, match="unknown job status 'finished'"):
        store.list_jobs("finished")


def test_counts_by_status_lists_every_status_including_zeros(store: JournalStore) -> None:
    for n in range(1, 4):
        store.add_job(job_id(n), b"{}", MODULE_SHA, created_at_ms=100 + n)
    store.mark_running(job_id(1), started_at_ms=200)

    counts = store.counts_by_status()

    assert set(counts) == set(JOB_STATUSES)
    assert counts["queued"] == 2
    assert counts["running"] == 1
    assert sum(counts.values()) == 3


def test_recover_marks_queued_and_running_jobs_interrupted_and_returns_them(
    store: JournalStore,
) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    store.add_job(job_id(2), b"{}", MODULE_SHA, created_at_ms=100)
    store.add_job(job_id(3), b"{}", MODULE_SHA, created_at_ms=100)
    store.mark_running(job_id(2), started_at_ms=200)
    finish_done(store, job_id(3))

    assert store.recover(now_ms=5000) == [job_id(1), job_id(2)]

    for jid in (job_id(1), job_id(2)):
        record = store.get_job(jid)
        assert record is not None
        assert (record.status, record.finished_at_ms) == ("interrupted", 5000)
        assert record.error == INTERRUPTED_ERROR
    finished = store.get_job(job_id(3))
    assert finished is not None and finished.status == "done"


def test_interrupted_error_tells_the_client_to_submit_again() -> None:
    assert json.loads(INTERRUPTED_ERROR) == {
        "code": "interrupted",
        "message": "the daemon stopped before this job finished; submit it again",
    }


def test_recover_with_nothing_active_returns_nothing(store: JournalStore) -> None:
    store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=100)
    finish_done(store, job_id(1))

    assert store.recover(now_ms=5000) == []


def test_put_module_refuses_bytes_that_do_not_match_the_hash(store: JournalStore) -> None:
    with pytest.raises(ModuleHashError, match="refusing to store"):
        store.put_module(hashlib.sha256(b"other").hexdigest(), MODULE)

    assert not store.has_module(hashlib.sha256(b"other").hexdigest())


def test_a_module_is_stored_once(store: JournalStore, journal_path: Path) -> None:
    assert store.put_module(MODULE_SHA, MODULE) is True
    assert store.put_module(MODULE_SHA, MODULE) is False

    with sqlite3.connect(journal_path) as raw:
        assert raw.execute("SELECT count(*), sum(size) FROM modules").fetchone() == (
            1,
            len(MODULE),
        )


def test_a_stored_module_reads_back_identical(store: JournalStore) -> None:
    store.put_module(MODULE_SHA, MODULE)

    assert store.has_module(MODULE_SHA)
    assert store.get_module(MODULE_SHA) == MODULE


def test_a_module_file_is_copied_in_and_reads_back_identical(
        store: JournalStore, tmp_path: Path) -> None:
    data = MODULE + os.urandom(3 * 2**20 + 5)  # several copy pieces and a short last one
    digest = hashlib.sha256(data).hexdigest()
    staged = tmp_path / "staged.wasm"
    staged.write_bytes(data)
    assert store.put_module_file(digest, staged) is True
    assert store.put_module_file(digest, staged) is False  # stored once
    assert store.get_module(digest) == data
    assert store.put_module(digest, data) is False  # the same row as bytes would make


@pytest.mark.parametrize("in_batch", [False, True])
def test_a_module_file_that_does_not_hash_to_its_name_stores_nothing(
        store: JournalStore, tmp_path: Path, in_batch: bool) -> None:
    staged = tmp_path / "staged.wasm"
    staged.write_bytes(MODULE + b"tampered")
    if in_batch:
        store.begin_batch()
        store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=1)
    with pytest.raises(ModuleHashError):
        store.put_module_file(MODULE_SHA, staged)
    if in_batch:  # the rest of the batch is kept
        store.commit_batch()
        assert store.get_job(job_id(1)) is not None
    assert not store.has_module(MODULE_SHA)


def test_an_unknown_module_reads_back_as_none(store: JournalStore) -> None:
    assert not store.has_module(MODULE_SHA)
    assert store.get_module(MODULE_SHA) is None


def test_manifest_does_not_inline_the_module(store: JournalStore, journal_path: Path) -> None:
    store.put_module(MODULE_SHA, MODULE)
    store.add_job(job_id(1), b'{"module_sha256":"' + MODULE_SHA.encode() + b'"}', MODULE_SHA, 1)

    record = store.get_job(job_id(1))
    assert record is not None and MODULE not in record.manifest


def test_a_journal_from_a_newer_plasmd_is_refused(journal_path: Path) -> None:
    JournalStore(journal_path).close()
    with sqlite3.connect(journal_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")

    with pytest.raises(JournalSchemaError, match="written by a newer plasmd; upgrade plasmd"):
        JournalStore(journal_path)


def test_a_sqlite_file_of_another_application_is_refused(journal_path: Path) -> None:
    journal_path.parent.mkdir(parents=True)
    with sqlite3.connect(journal_path) as raw:
        raw.execute("CREATE TABLE photos (id INTEGER)")

    with pytest.raises(JournalSchemaError, match="not a Plasm journal"):
        JournalStore(journal_path)


def test_a_file_that_is_not_sqlite_is_refused(journal_path: Path) -> None:
    journal_path.parent.mkdir(parents=True)
    journal_path.write_bytes(b"this is not a database, just text " * 100)

    with pytest.raises(JournalSchemaError, match="cannot be read as SQLite"):
        JournalStore(journal_path)


def test_a_damaged_journal_is_refused_naming_the_file_and_the_way_out(journal_path: Path) -> None:
    with JournalStore(journal_path) as store:
        for n in range(200):
            store.add_job(f"{n:032x}", b"{}" * 200, "ab" * 32, n)
    size = journal_path.stat().st_size
    with open(journal_path, "r+b") as f:  # garble the middle pages, keep the header
        f.seek(size // 2)
        f.write(b"\xff" * 8192)

    with pytest.raises(JournalDamagedError, match="is damaged") as refused:
        JournalStore(journal_path)
    assert str(journal_path) in str(refused.value)
    assert "move the file aside" in str(refused.value)


def test_synchronous_full_is_applied(journal_path: Path) -> None:
    with JournalStore(journal_path, synchronous="full") as store:
        conn = store._connection()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_unknown_synchronous_mode_is_refused(journal_path: Path) -> None:
    with pytest.raises(JournalError, match="normal, full"):
        JournalStore(journal_path, synchronous="off")


def test_a_closed_journal_refuses_calls(journal_path: Path) -> None:
    store = JournalStore(journal_path)
    store.close()
    store.close()

    with pytest.raises(JournalError, match="is closed"):
        store.get_job(job_id(1))


def test_a_store_built_on_one_thread_works_on_another(journal_path: Path) -> None:
    import threading

    store = JournalStore(journal_path)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            store.add_job(job_id(1), b"{}", MODULE_SHA, created_at_ms=1)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join(timeout=30)
    store.close()
    assert errors == []


def test_a_version_1_journal_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    import sqlite3

    from plasm.actors import journal_store

    path = tmp_path / "v1.sqlite3"
    raw = sqlite3.connect(path)
    for statement in journal_store._statements(journal_store._MIGRATIONS[0]):
        raw.execute(statement)
    raw.execute("INSERT INTO jobs (job_id, status, manifest, module_sha256, created_at_ms)"
                " VALUES (?, 'queued', '{}', ?, 1)", ("a" * 32, "ab" * 32))
    raw.execute("PRAGMA user_version = 1")
    raw.execute(f"PRAGMA application_id = {journal_store._APPLICATION_ID}")
    raw.commit()
    raw.close()
    with JournalStore(path) as store:
        assert store.get_job("a" * 32) is not None
        assert store.blob_references() == set()
        store.add_job("b" * 32, b'{"files": [{"path": "/i", "sha256": "' + b"c" * 64 + b'"}]}',
                      "ab" * 32, 2)
        assert store.blob_references() == {"c" * 64}
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6


def test_a_done_job_is_indexed_for_reuse_and_survives_reopening(journal_path: Path) -> None:
    key, other = hashlib.sha256(b"job").digest(), hashlib.sha256(b"other").digest()
    with JournalStore(journal_path) as store:
        for n, status in ((1, "done"), (2, "done"), (3, "failed")):
            store.add_job(job_id(n), b"{}", "ab" * 32, n)
            store.finish_job(job_id(n), status, finished_at_ms=n + 1, outcome="ok",
                             result=b"{}", envelope=ENVELOPE + bytes([n]), error=None,
                             memo_key=key if n < 3 else other)
        store.add_job(job_id(4), b"{}", "ab" * 32, 4)  # indexed only once done
    with JournalStore(journal_path) as store:
        found = store.find_memo(key)
        assert found is not None and found.job_id == job_id(1)  # the first one stays
        assert found.envelope == ENVELOPE + b"\x01"
        assert store.find_memo(other) is None  # a failed job is never indexed


def test_a_version_3_journal_is_migrated_keeping_jobs_receipts_and_references(
    tmp_path: Path,
) -> None:
    from plasm.actors import journal_store

    path = tmp_path / "v3.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    for migration in journal_store._MIGRATIONS[:3]:
        for statement in journal_store._statements(migration):
            raw.execute(statement)
    raw.execute("INSERT INTO jobs (job_id, status, manifest, module_sha256, created_at_ms,"
                " finished_at_ms, result) VALUES (?, 'done', '{}', ?, 1, 2, ?)",
                (job_id(1), MODULE_SHA, RESULT))
    raw.execute("INSERT INTO receipts VALUES (?, ?, 2)", (job_id(1), ENVELOPE))
    raw.execute("PRAGMA user_version = 3")
    raw.execute(f"PRAGMA application_id = {journal_store._APPLICATION_ID}")
    raw.close()
    with JournalStore(path) as store:
        record = store.get_job(job_id(1))
        assert record is not None and record.envelope == ENVELOPE
        store.add_job(job_id(2), b"{}", MODULE_SHA, 3)
        error = json.dumps({"code": "disputed", "message": "no quorum"}).encode()
        store.finish_job(job_id(2), "disputed", finished_at_ms=4, outcome=None, result=None,
                         envelope=None, error=error)
        assert [r.job_id for r in store.list_jobs("disputed")] == [job_id(2)]
        assert store.counts_by_status()["disputed"] == 1
    check = sqlite3.connect(path)
    check.execute("PRAGMA foreign_keys = ON")
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    with pytest.raises(sqlite3.IntegrityError):  # receipts still refer to jobs
        check.execute("INSERT INTO receipts VALUES (?, x'00', 1)", (job_id(9),))
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        check.execute("UPDATE receipts SET envelope = x'00'")
    check.close()


def test_peer_dispute_records_are_kept_and_replaced(journal_path: Path) -> None:
    with JournalStore(journal_path) as store:
        store.save_peer_dispute("peer-b", 1, 100, None)
        store.save_peer_dispute("peer-a", 1, 100, None)
        store.save_peer_dispute("peer-b", 2, 200, 5000)
    with JournalStore(journal_path) as store:
        assert store.peer_disputes() == [("peer-a", 1, 100, None), ("peer-b", 2, 200, 5000)]
