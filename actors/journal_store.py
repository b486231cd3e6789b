"""The journal's SQLite file: jobs, their signed receipts, and the modules they ran.

Theory of operation
-------------------
One ``JournalStore`` owns one ``sqlite3`` connection and is driven by one thread at a time
(the journal actor's). The connection is opened in ``__init__`` with
``check_same_thread=False`` because the actor is built on the thread that starts it and then
used on its own thread; nothing here locks, so never share a store between threads that run
at the same time.

The connection runs in autocommit mode and every public method is one transaction: a single
statement, or ``BEGIN IMMEDIATE ... COMMIT`` where a method writes more than one row. The file
is in WAL mode, so readers in other processes (``sqlite3`` on the command line, a backup) do
not block the writer. ``synchronous="normal"`` may lose the last transactions on a power cut
but never corrupts the file; ``"full"`` also survives a power cut, at a cost per job (see
``bench/bench_journal.py``).

A job moves ``queued -> running -> done | failed | cancelled | rejected``. ``set_status`` marks
a job ``cancelled`` or ``rejected`` before it finished; a job cancelled while it ran may still
be finished later by ``finish_job``, so a receipt that was signed is never thrown away.
``recover`` runs at start-up and turns every job a dead daemon left ``queued`` or ``running``
into ``interrupted``. Transitions are checked by the ``WHERE`` clause of one ``UPDATE``; only
when it touches no row does a ``SELECT`` find out why, so the hot path reads nothing.

Receipts are immutable: a trigger refuses any ``UPDATE`` of the table, and storing a second,
different envelope for a job raises ``ReceiptConflictError``. Modules are content-addressed by
sha256 and stored once; the manifest is kept as the bytes received, without the module.

The schema version is ``PRAGMA user_version``; ``_MIGRATIONS[i]`` takes version ``i`` to
``i + 1``. A file written by a newer plasmd (a higher version) is refused, not downgraded.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plasm.actors.errors import JournalError, JournalFullError
from plasm.protocol.formats import JOB_STATUSES

__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "INTERRUPTED_ERROR",
    "JOB_STATUSES",
    "SCHEMA_VERSION",
    "DuplicateJobError",
    "JobNotFoundError",
    "JobRecord",
    "JobStateError",
    "JournalError",
    "JournalFullError",
    "JournalSchemaError",
    "JournalStore",
    "ModuleHashError",
    "ReceiptConflictError",
]


class JournalSchemaError(JournalError):
    """The file is not a Plasm journal, or was written by a newer plasmd than this one."""


class JournalDamagedError(JournalError):
    """SQLite found the journal file damaged (its integrity check failed, or a read did)."""


class DuplicateJobError(JournalError):
    """``add_job`` was given a job id that is already in the journal."""


class JobNotFoundError(JournalError):
    """No job with that id is in the journal."""


class JobStateError(JournalError):
    """The job exists but its current status does not allow the requested change."""


class ReceiptConflictError(JournalError):
    """A different receipt envelope is already stored for the job; receipts never change."""


class ModuleHashError(JournalError):
    """Module bytes do not hash to the sha256 they were stored under."""


ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("done", "failed", "cancelled", "rejected", "interrupted")
_SET_STATUSES = ("cancelled", "rejected")
_SYNCHRONOUS = ("normal", "full")

# "PLSM": marks the file as ours, so a stray SQLite file is refused instead of migrated.
_APPLICATION_ID = 0x504C534D

INTERRUPTED_ERROR = json.dumps(
    {
        "code": "interrupted",
        "message": "the daemon stopped before this job finished; submit it again",
    },
    separators=(",", ":"),
).encode()

_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN
            ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted', 'rejected')),
        manifest BLOB NOT NULL,
        module_sha256 TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        started_at_ms INTEGER,
        finished_at_ms INTEGER,
        outcome TEXT,
        result BLOB,
        error BLOB
    );
    CREATE INDEX jobs_by_created ON jobs (created_at_ms DESC, job_id DESC);
    CREATE INDEX jobs_by_status ON jobs (status, created_at_ms DESC, job_id DESC);
    CREATE TABLE receipts (
        job_id TEXT PRIMARY KEY REFERENCES jobs (job_id),
        envelope BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TRIGGER receipts_are_immutable BEFORE UPDATE ON receipts
    BEGIN
        SELECT RAISE(ABORT, 'receipts are immutable');
    END;
    CREATE TABLE modules (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    """,
    # 1 -> 2: the blobs each job names (input files and stdin by hash, its output files), so
    # that blob collection keeps them without reading every manifest and result.
    """
    CREATE TABLE job_blobs (
        sha256 TEXT NOT NULL,
        job_id TEXT NOT NULL REFERENCES jobs (job_id),
        PRIMARY KEY (sha256, job_id)
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_JOB_COLUMNS = (
    "j.job_id, j.status, j.manifest, j.module_sha256, j.created_at_ms, j.started_at_ms,"
    " j.finished_at_ms, j.outcome, j.result, j.error, r.envelope"
)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of ``jobs`` with its receipt envelope (``None`` until one is stored)."""

    job_id: str
    status: str
    manifest: bytes
    module_sha256: str
    created_at_ms: int
    started_at_ms: int | None
    finished_at_ms: int | None
    outcome: str | None
    result: bytes | None
    error: bytes | None
    envelope: bytes | None


class JournalStore:
    """The journal's SQLite file. One thread at a time; see the module docstring."""

    def __init__(self, path: Path, synchronous: str = "normal") -> None:
        if synchronous not in _SYNCHRONOUS:
            raise JournalError(
                f"journal synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        self.path = Path(path)
        self._in_batch = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(
                f"cannot open the journal at {self.path}: {exc}; check that the directory "
                "exists and is writable by the plasmd user"
            ) from exc
        self._conn: sqlite3.Connection | None = conn
        try:
            self._open(conn, synchronous)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # -- jobs ------------------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        manifest: bytes,
        module_sha256: str,
        created_at_ms: int,
        started_at_ms: int | None = None,
    ) -> None:
        """Record a new job, ``queued`` — or ``running`` when ``started_at_ms`` is given (a
        job that goes straight to an executor costs one commit, not two); raises
        ``DuplicateJobError`` if the id is taken."""
        conn = self._connection()
        status = "queued" if started_at_ms is None else "running"
        try:
            conn.execute(
                "INSERT INTO jobs (job_id, status, manifest, module_sha256, created_at_ms,"
                " started_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, status, manifest, module_sha256, created_at_ms, started_at_ms),
            )
            if b'"files"' in manifest or b"stdin_sha256" in manifest:
                self._name_blobs(conn, job_id, _blobs_named(manifest, ("files",), "stdin_sha256"))
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname != "SQLITE_CONSTRAINT_PRIMARYKEY":
                raise self._write_failed(exc) from exc
            raise DuplicateJobError(
                f"job {job_id} is already in the journal; job ids must be unique"
            ) from exc
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc

    def mark_running(self, job_id: str, started_at_ms: int) -> None:
        """Move a ``queued`` job to ``running``."""
        conn = self._connection()
        try:
            cursor = conn.execute(
                "UPDATE jobs SET status = 'running', started_at_ms = ?"
                " WHERE job_id = ? AND status = 'queued'",
                (started_at_ms, job_id),
            )
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc
        if cursor.rowcount != 1:
            raise self._refused(job_id, f"mark job {job_id} running", allowed=("queued",))

    def finish_job(
        self,
        job_id: str,
        status: str,
        *,
        finished_at_ms: int,
        outcome: str | None,
        result: bytes | None,
        envelope: bytes | None,
        error: bytes | None,
        blobs: Iterable[str] = (),
    ) -> None:
        """Store how a job ended, and its receipt envelope, in one transaction; ``blobs``: the
        sha256 of each output file it left (kept by blob collection while the job is here).

        ``status`` is one of ``FINISHED_STATUSES`` (``interrupted`` for a job the node gave up
        on while a peer ran it). The job must be
        ``queued``, ``running``, or ``cancelled`` without having finished yet. ``error``, when
        given, is JSON ``{"code": str, "message": str}``.
        """
        if status not in FINISHED_STATUSES:
            raise JournalError(
                f"cannot finish job {job_id} as {status!r}; use one of "
                f"{', '.join(FINISHED_STATUSES)}"
            )
        if error is not None:
            _check_error_json(error)
        conn = self._connection()
        # Inside a batch (group commit) a savepoint keeps this job's rows all-or-nothing.
        begin, commit, rollback = (
            (
                "SAVEPOINT finish_job",
                "RELEASE finish_job",
                "ROLLBACK TO finish_job; RELEASE finish_job",
            )
            if self._in_batch
            else ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
        )
        try:
            conn.execute(begin)
            try:
                cursor = conn.execute(
                    "UPDATE jobs SET status = ?, finished_at_ms = ?, outcome = ?, result = ?,"
                    " error = ? WHERE job_id = ? AND finished_at_ms IS NULL"
                    " AND status IN ('queued', 'running', 'cancelled')",
                    (status, finished_at_ms, outcome, result, error, job_id),
                )
                if cursor.rowcount != 1:
                    if envelope is not None:
                        self._refuse_receipt_change(conn, job_id, envelope)
                    raise self._refused(
                        job_id, f"finish job {job_id}", allowed=("queued", "running", "cancelled")
                    )
                if envelope is not None:
                    conn.execute(
                        "INSERT INTO receipts (job_id, envelope, created_at_ms) VALUES (?, ?, ?)",
                        (job_id, envelope, finished_at_ms),
                    )
                self._name_blobs(conn, job_id, blobs)
            except BaseException:
                for statement in rollback.split("; "):
                    conn.execute(statement)
                raise
            conn.execute(commit)
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc

    # -- group commit --------------------------------------------------------------

    @property
    def in_batch(self) -> bool:
        return self._in_batch

    def begin_batch(self) -> None:
        """Open one transaction for several writes (see ``commit_batch``)."""
        if not self._in_batch:
            self._connection().execute("BEGIN IMMEDIATE")
            self._in_batch = True

    def commit_batch(self) -> None:
        """Commit every write since ``begin_batch``: one WAL commit for all of them."""
        if self._in_batch:
            self._in_batch = False
            conn = self._connection()
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._write_failed(exc) from exc

    def set_status(self, job_id: str, status: str) -> None:
        """Mark an unfinished job ``cancelled`` or ``rejected``; setting the status it already
        has is a no-op, so a second cancel does not fail."""
        if status not in _SET_STATUSES:
            raise JournalError(
                f"set_status only marks jobs {' or '.join(_SET_STATUSES)}, got {status!r}; "
                "use mark_running or finish_job for the other changes"
            )
        conn = self._connection()
        try:
            cursor = conn.execute(
                "UPDATE jobs SET status = ? WHERE job_id = ? AND finished_at_ms IS NULL"
                " AND (status IN ('queued', 'running') OR status = ?)",
                (status, job_id, status),
            )
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc
        if cursor.rowcount != 1:
            raise self._refused(
                job_id, f"mark job {job_id} {status}", allowed=("queued", "running")
            )

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job with its receipt envelope, or ``None`` if the id is unknown."""
        row = self._read(
            f"SELECT {_JOB_COLUMNS} FROM jobs j LEFT JOIN receipts r USING (job_id)"
            " WHERE j.job_id = ?",
            (job_id,),
        ).fetchone()
        return None if row is None else JobRecord(*row)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Up to ``limit`` jobs, newest first, optionally only those with ``status``."""
        if limit < 1:
            raise JournalError(f"list_jobs limit must be at least 1, got {limit}")
        if status is None:
            cursor = self._read(
                f"SELECT {_JOB_COLUMNS} FROM jobs j LEFT JOIN receipts r USING (job_id)"
                " ORDER BY j.created_at_ms DESC, j.job_id DESC LIMIT ?",
                (limit,),
            )
        else:
            _check_status(status)
            cursor = self._read(
                f"SELECT {_JOB_COLUMNS} FROM jobs j LEFT JOIN receipts r USING (job_id)"
                " WHERE j.status = ? ORDER BY j.created_at_ms DESC, j.job_id DESC LIMIT ?",
                (status, limit),
            )
        return [JobRecord(*row) for row in cursor.fetchall()]

    def counts_by_status(self) -> dict[str, int]:
        """How many jobs are in each status; every status is present, zero or not."""
        counts = dict.fromkeys(JOB_STATUSES, 0)
        for status, count in self._read("SELECT status, count(*) FROM jobs GROUP BY status"):
            counts[status] = count
        return counts

    def recover(self, now_ms: int) -> list[str]:
        """Mark every ``queued`` or ``running`` job ``interrupted``; return their ids, sorted.

        Call once at start-up, before any new job is added: a job left active by a daemon that
        died can never finish, and its client must be told to submit it again.
        """
        conn = self._connection()
        try:
            cursor = conn.execute(
                "UPDATE jobs SET status = 'interrupted', finished_at_ms = ?, error = ?"
                " WHERE status IN ('queued', 'running') RETURNING job_id",
                (now_ms, INTERRUPTED_ERROR),
            )
            ids = [row[0] for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc
        return sorted(ids)

    # -- modules ---------------------------------------------------------------------------

    def blob_references(self) -> set[str]:
        """Every blob sha256 a journaled job names: its input files and stdin given by hash,
        and its output files."""
        return {row[0] for row in self._read("SELECT DISTINCT sha256 FROM job_blobs")}

    @staticmethod
    def _name_blobs(conn: sqlite3.Connection, job_id: str, blobs: Iterable[str]) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO job_blobs (sha256, job_id) VALUES (?, ?)",
            [(digest, job_id) for digest in blobs],
        )

    def put_module(self, sha256: str, data: bytes, *, created_at_ms: int = 0) -> bool:
        """Store module bytes under their sha256 (lowercase hex); True if they were new.

        Raises ``ModuleHashError`` if ``data`` does not hash to ``sha256``.
        """
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ModuleHashError(
                f"module bytes hash to {actual}, not {sha256}; refusing to store them"
            )
        conn = self._connection()
        try:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO modules (sha256, size, data, created_at_ms)"
                " VALUES (?, ?, ?, ?)",
                (sha256, len(data), data, created_at_ms),
            )
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc
        return cursor.rowcount == 1

    def get_module(self, sha256: str) -> bytes | None:
        """The module bytes stored under ``sha256``, or ``None``."""
        row = self._read("SELECT data FROM modules WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else bytes(row[0])

    def has_module(self, sha256: str) -> bool:
        """Whether module bytes are stored under ``sha256``."""
        row = self._read("SELECT 1 FROM modules WHERE sha256 = ?", (sha256,)).fetchone()
        return row is not None

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file; calling it again does nothing, any other call raises."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> JournalStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _open(self, conn: sqlite3.Connection, synchronous: str) -> None:
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            self._identify(conn)
            self._check_integrity(conn)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except sqlite3.OperationalError as exc:
            raise JournalError(
                f"cannot open the journal at {self.path}: {exc}; check that no other plasmd "
                "holds it and that the file is writable by the plasmd user"
            ) from exc
        except sqlite3.DatabaseError as exc:
            if _is_corrupt(exc):
                raise self._damaged(str(exc)) from exc
            raise JournalSchemaError(
                f"the journal at {self.path} cannot be read as SQLite ({exc}); move the file "
                "away or point state_dir at another directory"
            ) from exc

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        """Refuse a damaged file at start rather than write more into it (quick_check reads
        every page once: O(size), at start only)."""
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
        if problems != ["ok"]:
            detail = " ".join("; ".join(problems).split())  # one line, however SQLite says it
            raise self._damaged(detail[:200])

    def _damaged(self, detail: str) -> JournalDamagedError:
        return JournalDamagedError(
            f"the journal at {self.path} is damaged ({detail}); stop plasmd, move the file "
            f"aside (mv {self.path} {self.path}.damaged) and start again with a new journal; "
            f"its receipts may still be exported: sqlite3 {self.path}.damaged "
            "'.dump receipts'"
        )

    def _identify(self, conn: sqlite3.Connection) -> None:
        """Refuse a file that is not ours, or that a newer plasmd wrote."""
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalSchemaError(
                f"the journal at {self.path} has schema version {version}, but this plasmd "
                f"knows versions up to {SCHEMA_VERSION}: it was written by a newer plasmd; "
                "upgrade plasmd, or point state_dir at another directory"
            )
        if application_id not in (0, _APPLICATION_ID):
            raise JournalSchemaError(
                f"{self.path} is a SQLite file of another application "
                f"(application_id {application_id:#x}); point state_dir at another directory"
            )
        if application_id == 0 and _count_tables(conn):
            raise JournalSchemaError(
                f"{self.path} is a SQLite file that is not a Plasm journal; move it away "
                "or point state_dir at another directory"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock, then the version is read again: two daemons
        # starting on one file cannot both apply the same migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            ours = conn.execute("PRAGMA application_id").fetchone()[0] == _APPLICATION_ID
            version = conn.execute("PRAGMA user_version").fetchone()[0] if ours else 0
            if ours and version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(_MIGRATIONS[target - 1]):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _refuse_receipt_change(
        self, conn: sqlite3.Connection, job_id: str, envelope: bytes
    ) -> None:
        stored = conn.execute(
            "SELECT envelope FROM receipts WHERE job_id = ?", (job_id,)
        ).fetchone()
        if stored is not None and bytes(stored[0]) != envelope:
            raise ReceiptConflictError(
                f"job {job_id} already has a different receipt; receipts are never replaced"
            )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"the journal at {self.path} is closed")
        return self._conn

    def _read(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        conn = self._connection()
        try:
            return conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise JournalError(f"reading the journal at {self.path} failed: {exc}") from exc

    def _write_failed(self, exc: sqlite3.Error) -> JournalError:
        if _is_corrupt(exc):
            return self._damaged(str(exc))
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(exc):
            return JournalFullError(
                f"the disk holding the journal ({self.path.parent}) is full; free space "
                "there (or move state_dir to a larger disk) — plasmd takes jobs again by "
                "itself once it can write"
            )
        return JournalError(
            f"writing the journal at {self.path} failed: {exc}; check free disk space and "
            "that the file is writable by the plasmd user"
        )

    def _refused(self, job_id: str, action: str, *, allowed: tuple[str, ...]) -> JournalError:
        row = (
            self._connection()
            .execute("SELECT status, finished_at_ms FROM jobs WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        if row is None:
            return JobNotFoundError(f"no job {job_id} in the journal")
        status, finished_at_ms = row
        if finished_at_ms is not None:
            return JobStateError(f"cannot {action}: it already finished as {status}")
        return JobStateError(f"cannot {action}: it is {status}, not {' or '.join(allowed)}")


def _is_corrupt(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith("SQLITE_CORRUPT") or "malformed" in str(exc)


def _count_tables(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0])


def _statements(script: str) -> list[str]:
    """Split a migration into statements; ``sqlite3.complete_statement`` keeps a trigger's
    ``BEGIN ... END`` body in one piece."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise JournalError(f"incomplete statement in a journal migration: {pending.strip()!r}")
    return statements


def _blobs_named(document: bytes, lists: tuple[str, ...], single: str | None) -> list[str]:
    try:
        parsed = json.loads(document)
    except ValueError:
        return []
    if not isinstance(parsed, dict):
        return []
    found = [parsed[single]] if single and isinstance(parsed.get(single), str) else []
    for name in lists:
        for item in parsed.get(name) or ():
            if isinstance(item, dict) and isinstance(item.get("sha256"), str):
                found.append(item["sha256"])
    return found


def _check_status(status: str) -> None:
    if status not in JOB_STATUSES:
        raise JournalError(f"unknown job status {status!r}; use one of {', '.join(JOB_STATUSES)}")


def _check_error_json(error: bytes) -> None:
    try:
        obj = json.loads(error)
    except ValueError as exc:
        raise JournalError(f"a job error must be JSON {{code, message}}, got {error!r}") from exc
    if not (
        isinstance(obj, dict)
        and isinstance(obj.get("code"), str)
        and isinstance(obj.get("message"), str)
    ):
        raise JournalError(f"a job error must be JSON {{code, message}}, got {error!r}")
