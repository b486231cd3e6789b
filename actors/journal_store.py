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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from plasm.actors.errors import JournalError, JournalFullError
from plasm.protocol.cose import decode_sign1
from plasm.protocol.formats import JOB_STATUSES
from plasm.protocol.merkle import MerkleTree
from plasm.protocol.transparency import MAX_HEAD_SIZE, LogProof, TreeHead

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
FINISHED_STATUSES = ("done", "failed", "cancelled", "rejected", "interrupted", "disputed")
_SET_STATUSES = ("cancelled", "rejected")
_T = TypeVar("_T")
_SYNCHRONOUS = ("normal", "full")
MODULE_COPY_BYTES = 1 << 20  # put_module_file copies a module into its row in pieces of this

# "PLSM": marks the file as ours, so a stray SQLite file is refused instead of migrated.
_APPLICATION_ID = 0x504C534D

INTERRUPTED_ERROR = json.dumps(
    {
        "code": "interrupted",
        "message": "the daemon stopped before this job finished; submit it again",
    },
    separators=(",", ":"),
).encode()

def _append_only(*tables: str, message: str) -> str:
    """Triggers that refuse any UPDATE or DELETE of ``tables`` (``<table>_are_append_only``,
    ``<table>_are_kept``)."""
    return "".join(
        f"""
    CREATE TRIGGER {table}_are_{name} BEFORE {action} ON {table}
    BEGIN
        SELECT RAISE(ABORT, '{message}');
    END;
"""
        for table in tables
        for name, action in (("append_only", "UPDATE"), ("kept", "DELETE"))
    )


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
    # 2 -> 3: the transparency log of the receipts this node signed (RFC 9162; see
    # plasm.protocol.merkle and plasm.protocol.transparency): its leaves in order, the hash of
    # every perfect subtree, and the tree heads the node signed. All three are append-only.
    """
    CREATE TABLE log_entries (
        idx INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL UNIQUE REFERENCES receipts (job_id)
    );
    CREATE TABLE log_nodes (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    CREATE TABLE log_heads (
        size INTEGER PRIMARY KEY,
        root BLOB NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        cose BLOB NOT NULL
    );
    """
    + _append_only("log_entries", "log_nodes", message="the receipt log is append-only")
    + _append_only("log_heads", message="signed tree heads are append-only"),
    # 3 -> 4: verified reuse (plasm.protocol.reuse): memo key (sha256 of the job description)
    # -> the first done job with a reusable receipt for it (every such job is indexed).
    """
    CREATE TABLE memos (
        key BLOB PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES receipts (job_id)
    ) WITHOUT ROWID;
    """,
    # 4 -> 5: the status `disputed` (a quorum job whose replicas did not agree): SQLite cannot
    # change a CHECK, so the jobs table is rebuilt (foreign keys are off while it migrates);
    # and each peer's receipts that disagreed with an agreed quorum, with its cool-down.
    """
    CREATE TABLE jobs_v5 (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed',
            'cancelled', 'interrupted', 'rejected', 'disputed')),
        manifest BLOB NOT NULL,
        module_sha256 TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        started_at_ms INTEGER,
        finished_at_ms INTEGER,
        outcome TEXT,
        result BLOB,
        error BLOB
    );
    INSERT INTO jobs_v5 SELECT job_id, status, manifest, module_sha256, created_at_ms,
        started_at_ms, finished_at_ms, outcome, result, error FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v5 RENAME TO jobs;
    CREATE INDEX jobs_by_created ON jobs (created_at_ms DESC, job_id DESC);
    CREATE INDEX jobs_by_status ON jobs (status, created_at_ms DESC, job_id DESC);
    CREATE TABLE peer_disputes (
        peer_id TEXT PRIMARY KEY,
        receipts_disputed INTEGER NOT NULL,
        last_disputed_at_ms INTEGER NOT NULL,
        cooldown_until_ms INTEGER
    );
    """,
    # 5 -> 6: which peer runs a job this node sent away (its requester shows it running there)
    """
    ALTER TABLE jobs ADD COLUMN executor TEXT;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_JOB_COLUMNS = (
    "j.job_id, j.status, j.manifest, j.module_sha256, j.created_at_ms, j.started_at_ms,"
    " j.finished_at_ms, j.outcome, j.result, j.error, r.envelope, j.executor"
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
    executor: str | None = None  # the peer running it for this node, while it runs


class JournalStore:
    """The journal's SQLite file. One thread at a time; see the module docstring."""

    def __init__(self, path: Path, synchronous: str = "normal") -> None:
        if synchronous not in _SYNCHRONOUS:
            raise JournalError(
                f"journal synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        self.path = Path(path)
        self._in_batch = False
        # The receipt log: its tree, and the last head signed over it (from the file at open,
        # kept current by sign_tree_head, read again after a rollback).
        self._log = MerkleTree(_LogNodes(self))
        self._head: tuple[TreeHead, bytes] | None = None
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
            self._reload_log()
            self._check_log()
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

    def mark_running(self, job_id: str, started_at_ms: int, executor: str | None = None) -> None:
        """Move a ``queued`` job to ``running`` (on ``executor``, a peer, when given). A job
        a peer runs may be marked again: sent to another peer after the first failed."""
        conn = self._connection()
        try:
            cursor = conn.execute(
                "UPDATE jobs SET status = 'running', started_at_ms = ?, executor = ?"
                " WHERE job_id = ? AND (status = 'queued'"
                " OR (status = 'running' AND executor IS NOT NULL))",
                (started_at_ms, executor, job_id),
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
        logged: bool = False,
        memo_key: bytes | None = None,
    ) -> int | None:
        """Store how a job ended, and its receipt envelope, in one transaction; ``blobs``: the
        sha256 of each output file it left (kept by blob collection while the job is here).
        ``logged``: this node signed the receipt, so it is appended to the transparency log;
        the answer is then its leaf index (see ``sign_tree_head``), else ``None``.
        ``memo_key``: index the job for reuse under this key (a ``done`` job with a receipt
        only; the first job of a key stays its entry).

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
        index: int | None = None
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
                if logged and envelope is not None:
                    index = self._log.append(envelope)
                    conn.execute(
                        "INSERT INTO log_entries (idx, job_id) VALUES (?, ?)", (index, job_id)
                    )
                if memo_key is not None and envelope is not None and status == "done":
                    conn.execute(
                        "INSERT OR IGNORE INTO memos (key, job_id) VALUES (?, ?)",
                        (memo_key, job_id),
                    )
                self._name_blobs(conn, job_id, blobs)
            except BaseException:
                for statement in rollback.split("; "):
                    conn.execute(statement)
                self._reload_log()
                raise
            conn.execute(commit)
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc
        return index

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
                self._reload_log()
                raise self._write_failed(exc) from exc

    # -- the transparency log ----------------------------------------------------------

    @property
    def log_size(self) -> int:
        """Leaves in the log, committed or in the open batch."""
        return self._log.size

    def sign_tree_head(
        self, node: str, now_ms: int, sign: Callable[[TreeHead], bytes]
    ) -> tuple[TreeHead, bytes] | None:
        """When the log grew since the last signed head: sign one (``sign`` answers the
        COSE_Sign1 of a head), store it in the open batch, and answer it; else ``None``
        (``next_tree_head`` then ``add_tree_head``, for a caller that can wait)."""
        head = self.next_tree_head(node, now_ms)
        return None if head is None else self.add_tree_head(head, sign(head))

    def next_tree_head(self, node: str, now_ms: int) -> TreeHead | None:
        """The head to sign over every leaf so far, when there are leaves no signed head
        covers; else ``None``. Ask it with no batch open (or its leaves committed) so a head
        never names leaves that may still be rolled back."""
        signed = 0 if self._head is None else self._head[0].size
        if self._log.size in (0, signed):
            return None
        return TreeHead(self._log.size, self._log.root(), now_ms, node)

    def add_tree_head(self, head: TreeHead, cose: bytes) -> tuple[TreeHead, bytes] | None:
        """Store signed ``head`` (its COSE_Sign1 ``cose``) in the open batch, or on its own,
        and make it the latest; ``None`` (nothing stored) when a head at least as big is
        already the latest (an answer that came late). A head whose root is not the log's
        at its size is refused (``JournalError``): it was signed over another history."""
        if self._head is not None and head.size <= self._head[0].size:
            return None
        if head.size > self._log.size or self._log.root(head.size) != head.root:
            raise JournalError(f"a tree head of size {head.size} that is not this log's")
        try:
            self._connection().execute(
                "INSERT INTO log_heads (size, root, timestamp_ms, cose) VALUES (?, ?, ?, ?)",
                (head.size, head.root, head.timestamp_ms, cose),
            )
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc
        self._head = head, cose
        return self._head

    def latest_head(self) -> tuple[TreeHead, bytes] | None:
        """The last signed tree head and its COSE bytes; ``None`` before the first."""
        return self._head

    def log_proof(self, index: int, head: tuple[TreeHead, bytes]) -> LogProof:
        """Leaf ``index`` in the tree of signed ``head``: its inclusion path."""
        tree_head, cose = head
        path = self._log.inclusion_path(index, tree_head.size)
        return LogProof(index, tree_head.size, tree_head.root, cose, tuple(path))

    def log_index(self, job_id: str) -> int | None:
        row = self._read("SELECT idx FROM log_entries WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else int(row[0])

    def log_root(self, size: int) -> bytes:
        return self._checked_log(lambda: self._log.root(size))

    def log_inclusion(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion path of leaf ``index`` in the tree of ``size`` leaves;
        ``ValueError`` for sizes past the last signed head or an index outside the tree."""
        self._check_signed_size(size)
        return self._checked_log(lambda: self._log.inclusion_path(index, size))

    def log_consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 consistency proof from ``first`` to ``second`` leaves; ``ValueError`` as
        ``log_inclusion``."""
        self._check_signed_size(second)
        return self._checked_log(lambda: self._log.consistency_path(first, second))

    def log_entries(self, start: int, end: int, *, most: int) -> list[bytes]:
        """The COSE receipts of leaves ``[start, end)``, in order; ``ValueError`` unless the
        range is within the last signed head and holds at most ``most`` leaves."""
        signed = 0 if self._head is None else self._head[0].size
        if not 0 <= start < end <= signed or end - start > most:
            raise ValueError(
                f"entries [start, end) must lie within the {signed} leaves of the last signed "
                f"head, at most {most} at a time"
            )
        rows = self._read(
            "SELECT r.envelope FROM log_entries l JOIN receipts r USING (job_id)"
            " WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx",
            (start, end),
        ).fetchall()
        return [bytes(row[0]) for row in rows]

    def _check_signed_size(self, size: int) -> None:
        signed = 0 if self._head is None else self._head[0].size
        if not 0 <= size <= signed:
            raise ValueError(f"the last signed tree head has {signed} leaves, not {size}")

    def _checked_log(self, compute: Callable[[], _T]) -> _T:
        try:
            return compute()
        except KeyError as exc:
            raise self._damaged(f"the receipt log misses a tree node {exc}") from exc
        except sqlite3.Error as exc:
            raise JournalError(f"reading the receipt log at {self.path} failed: {exc}") from exc

    def _log_size_on_disk(self) -> int:
        row = self._read("SELECT max(idx) FROM log_entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _reload_log(self) -> None:
        """At open, and after a rollback: the tree and the last signed head as the file
        has them (forgetting leaves and a head that were not kept)."""
        if self._conn is None:
            return
        self._log = MerkleTree(_LogNodes(self), self._log_size_on_disk())
        row = self._read(
            "SELECT size, root, timestamp_ms, cose FROM log_heads ORDER BY size DESC LIMIT 1"
        ).fetchone()
        self._head = None
        if row is not None:
            cose = bytes(row[3])
            node = decode_sign1(cose, max_size=MAX_HEAD_SIZE).kid
            self._head = TreeHead(row[0], bytes(row[1]), row[2], node), cose

    def _check_log(self) -> None:
        """At start: the stored tree still has the root of the last head signed over it."""
        if self._head is None:
            return
        head = self._head[0]
        if head.size > self._log.size or self.log_root(head.size) != head.root:
            raise self._damaged(
                f"the receipt log no longer has the root of its last signed head "
                f"(size {head.size})"
            )

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

    def save_peer_dispute(
        self,
        peer_id: str,
        receipts_disputed: int,
        last_disputed_at_ms: int,
        cooldown_until_ms: int | None,
    ) -> None:
        """Keep a peer's dispute record (``receipts_disputed`` and its cool-down)."""
        try:
            self._connection().execute(
                "INSERT INTO peer_disputes (peer_id, receipts_disputed, last_disputed_at_ms,"
                " cooldown_until_ms) VALUES (?, ?, ?, ?) ON CONFLICT (peer_id) DO UPDATE SET"
                " receipts_disputed = excluded.receipts_disputed,"
                " last_disputed_at_ms = excluded.last_disputed_at_ms,"
                " cooldown_until_ms = excluded.cooldown_until_ms",
                (peer_id, receipts_disputed, last_disputed_at_ms, cooldown_until_ms),
            )
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc

    def peer_disputes(self) -> list[tuple[str, int, int, int | None]]:
        """Every kept dispute record: (peer id, receipts disputed, last at, cool-down until)."""
        return [
            (str(row[0]), int(row[1]), int(row[2]), row[3])
            for row in self._read(
                "SELECT peer_id, receipts_disputed, last_disputed_at_ms, cooldown_until_ms"
                " FROM peer_disputes ORDER BY peer_id"
            )
        ]

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job with its receipt envelope, or ``None`` if the id is unknown."""
        row = self._read(
            f"SELECT {_JOB_COLUMNS} FROM jobs j LEFT JOIN receipts r USING (job_id)"
            " WHERE j.job_id = ?",
            (job_id,),
        ).fetchone()
        return None if row is None else JobRecord(*row)

    def find_memo(self, key: bytes) -> JobRecord | None:
        """The done job indexed for reuse under ``key``, with its receipt, or ``None``. The
        caller checks the receipt against the job it wants (plasm.protocol.reuse)."""
        row = self._read(
            f"SELECT {_JOB_COLUMNS} FROM memos m JOIN jobs j USING (job_id)"
            " JOIN receipts r USING (job_id) WHERE m.key = ? AND j.status = 'done'",
            (key,),
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

    def put_module_file(self, sha256: str, path: Path, *, created_at_ms: int = 0) -> bool:
        """Store the module in the file ``path`` under its sha256; True if it was new.

        Copied in pieces through SQLite's incremental blob I/O, so the module is never whole
        in memory here (a module may be 256 MiB). The copy is hashed as it goes; bytes that
        do not hash to ``sha256`` raise ``ModuleHashError`` and nothing is stored.
        """
        size = path.stat().st_size
        conn = self._connection()
        begin, commit, rollback = (
            ("SAVEPOINT put_module", "RELEASE put_module",
             "ROLLBACK TO put_module; RELEASE put_module")
            if self._in_batch
            else ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
        )
        try:
            conn.execute(begin)
            try:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO modules (sha256, size, data, created_at_ms)"
                    " VALUES (?, ?, zeroblob(?), ?)",
                    (sha256, size, size, created_at_ms),
                )
                created = cursor.rowcount == 1
                if created:
                    assert cursor.lastrowid is not None
                    self._copy_module(conn, cursor.lastrowid, sha256, path, size)
            except BaseException:
                for statement in rollback.split("; "):
                    conn.execute(statement)
                raise
            conn.execute(commit)
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from exc
        return created

    @staticmethod
    def _copy_module(
        conn: sqlite3.Connection, rowid: int, sha256: str, path: Path, size: int
    ) -> None:
        digest = hashlib.sha256()
        copied = 0
        with open(path, "rb") as source, conn.blobopen("modules", "data", rowid) as blob:
            while copied < size and (piece := source.read(min(MODULE_COPY_BYTES, size - copied))):
                digest.update(piece)
                blob.write(piece)
                copied += len(piece)
            grown = source.read(1)  # the file changed under us: refuse it
        if copied != size or grown or digest.hexdigest() != sha256:
            raise ModuleHashError(
                f"the module file {path} does not hold the {size} bytes of {sha256}; "
                "refusing to store it"
            )

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
        # starting on one file cannot both apply the same migration. Foreign keys are off
        # while it migrates (a migration may rebuild a table others refer to, as SQLite's
        # ALTER TABLE documentation does it) and checked before the commit.
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            self._migrate_in_transaction(conn)
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    def _migrate_in_transaction(self, conn: sqlite3.Connection) -> None:
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
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise JournalSchemaError(
                    f"migrating the journal at {self.path} broke a reference ({broken[0]})"
                )
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


class _LogNodes:
    """The log's ``NodeStore`` in the ``log_nodes`` table, with the nodes most read kept in
    memory: proofs read the same left subtrees and right edge again and again."""

    CACHE = 65536

    def __init__(self, store: JournalStore) -> None:
        self._store = store
        self._cache: dict[tuple[int, int], bytes] = {}

    def get_node(self, level: int, index: int) -> bytes:
        digest = self._cache.get((level, index))
        if digest is None:
            row = (
                self._store._connection()
                .execute("SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", (level, index))
                .fetchone()
            )
            if row is None:
                raise KeyError((level, index))
            digest = bytes(row[0])
            self._remember(level, index, digest)
        return digest

    def put_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        self._store._connection().executemany(
            "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes
        )
        for level, index, digest in nodes:  # the next proofs read these first
            self._remember(level, index, digest)

    def _remember(self, level: int, index: int, digest: bytes) -> None:
        if len(self._cache) >= self.CACHE:
            self._cache.clear()
        self._cache[(level, index)] = digest
