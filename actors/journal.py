"""The journal actor: the single writer of the node's SQLite database.

Every write goes through this one thread, so SQLite never sees two writers and the
order of events is the order of messages. Writes are group-committed: while more
messages wait in the inbox (up to `MAX_BATCH`), they share one transaction, and no
answer — not the acknowledgement of a job, not a result — leaves before the commit
that holds it. A read first commits what is pending. `FinishJob` completes the job's `done`
future only after the transaction holding its result and receipt has committed: a
client never sees a result whose receipt could still be lost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from plasm.actors._deferred import Timers
from plasm.actors._mailbox import (
    Delivery,
    PlasmActor,
    checked,
    handles,
    internal_error,
)
from plasm.actors.blob_store import BlobError, BlobStore
from plasm.actors.errors import UnknownJobError
from plasm.actors.journal_store import JobNotFoundError, JobRecord, JobStateError, JournalStore
from plasm.actors.messages import (
    CollectBlobs,
    CountJobs,
    FinishJob,
    GetJob,
    GetLogEntries,
    GetLogHead,
    GetLogPath,
    GetModule,
    GetPeerDisputes,
    InboundRequest,
    JobCounts,
    JobFinished,
    JobInfo,
    JobList,
    JournalRecovered,
    ListJobs,
    LogEntries,
    LogHead,
    LogPath,
    MarkRunning,
    MemoCandidate,
    ModuleFound,
    ModuleStored,
    Ok,
    PeerDispute,
    PeerDisputes,
    PeerResponse,
    PutModule,
    PutModuleFile,
    RecordJob,
    RecoverJournal,
    RetryJournalWrites,
)
from plasm.protocol.errors import DecodeError
from plasm.protocol.merkle import EMPTY_ROOT
from plasm.protocol.messages import Error, decode_message, encode_message
from plasm.protocol.p2p_messages import PROTOCOL_LOG, LogConsistency, LogConsistencyRequest
from plasm.protocol.transparency import LogProof, TreeHead

log = logging.getLogger(__name__)

MAX_BATCH = 64
# Blob collection: first a minute after start, then every ten minutes; a blob younger than
# an hour is kept even if no job names it yet (uploaded for a job still to be submitted).
BLOB_GC_FIRST_S = 60.0
BLOB_GC_EVERY_S = 600.0
BLOB_MIN_AGE_S = 3600.0
RETRY_S = 1.0
MAX_LOG_ENTRIES = 1000  # receipts per GET /v1/log/entries


class JournalActor(PlasmActor):
    def __init__(
        self,
        path: Path,
        synchronous: str = "normal",
        blobs: BlobStore | None = None,
        sign_head: Callable[[TreeHead], bytes] | None = None,
        node: str | None = None,
    ) -> None:
        super().__init__()
        # How the receipt log's tree heads are signed (``transparency.head_signer``: the
        # node key, for tree heads only) and the node they name; without them receipts are
        # not logged (embedded use, tests).
        self._sign_head = sign_head
        self._node = node
        # Leaves the open batch appended: job id -> leaf index.
        self._leaves: dict[str, int] = {}
        # Where a finished job's output files go (GET /v1/jobs/{id}/outputs/...): written
        # before the job's end is journaled, so a result never names outputs not kept.
        self._blobs = blobs
        # Opened here, in the starting thread, so a journal that cannot be opened (damaged,
        # read-only, not ours) raises its JournalError from `JournalActor.start` with one
        # clear message, instead of stopping the actor and failing the first ask.
        self._store: JournalStore | None = JournalStore(path, synchronous=synchronous)
        # Writes done in the open transaction, answered once it commits.
        self._pending: list[tuple[Delivery, Any, BaseException | None]] = []
        # Jobs whose end could not be written (a full disk): job id -> (finished at, error
        # JSON). Retried on a timer and before every batch until they are recorded, so no
        # job the client was told is over stays `running` in the journal.
        self._unrecorded: dict[str, tuple[int, bytes]] = {}
        self._timers = Timers()

    def on_receive(self, delivery: Any) -> None:
        if not isinstance(delivery, Delivery) or type(delivery.message) not in _WRITES:
            self._flush()
            super().on_receive(delivery)
            return
        if self._unrecorded and not self._pending:
            self._record_unrecorded()  # space may be back: older ends first
        try:
            self.store.begin_batch()
            self._pending.append((delivery, self.handle(delivery), None))
        except Exception as exc:  # answered to the asker after the commit
            self._pending.append((delivery, None, exc))
        if len(self._pending) >= MAX_BATCH or self.actor_inbox.empty():
            self._flush()

    def _flush(self) -> None:
        if self._store is None or not self._pending:
            return
        pending, self._pending = self._pending, []
        failure: BaseException | None = None
        try:
            if self._leaves:
                pending = self._head_for(pending)
            self.store.commit_batch()
        except Exception as exc:
            failure = exc
            log.error("journal commit failed; %d write(s) lost: %s", len(pending), exc)
        for delivery, answer, error in pending:
            error = error or failure
            if isinstance(delivery.message, FinishJob):
                self._answer_finish(delivery, delivery.message, error)
            elif delivery.reply is not None:
                if error is not None:
                    delivery.reply.set_exception((type(error), error, error.__traceback__))
                else:
                    delivery.reply.set(checked(answer))
            elif error is not None:
                log.error("journal write %s failed: %s", type(delivery.message).__name__, error)

    def _head_for(
        self, pending: list[tuple[Delivery, Any, BaseException | None]]
    ) -> list[tuple[Delivery, Any, BaseException | None]]:
        """Sign one tree head over the batch's new leaves, in the batch, and give each job
        logged in it its inclusion proof in its answer (GET computes it again, later).

        Signed here, in the journal's thread, not by asking the signer actor: the ask and
        the wait cost more than the signature (docs/architecture.md). A head that cannot be
        signed is logged; the leaves stay, and the next batch's head covers them, so the
        results of this batch go without a proof."""
        leaves, self._leaves = self._leaves, {}
        assert self._sign_head is not None and self._node is not None
        try:
            head = self.store.sign_tree_head(
                self._node, time.time_ns() // 1_000_000, self._sign_head
            )
            if head is None:
                return pending
            proved: list[tuple[Delivery, Any, BaseException | None]] = []
            for delivery, answer, error in pending:
                finished = delivery.finished
                index = leaves.get(finished.job_id) if finished is not None else None
                if error is None and index is not None:
                    delivery = self._prove(delivery, index, head)
                proved.append((delivery, answer, error))
        except Exception as exc:  # signing or a write failed: no proofs now
            log.error("could not sign the receipt log's head (%s); the next batch will", exc)
            return pending
        return proved

    def _prove(self, delivery: Delivery, index: int, head: tuple[TreeHead, bytes]) -> Delivery:
        finished = delivery.finished
        if finished is None:
            return delivery
        proof: LogProof = self.store.log_proof(index, head)
        result = _with_log(finished.result, proof)
        return dataclasses.replace(
            delivery, finished=dataclasses.replace(finished, result=result, log=proof)
        )

    def _answer_finish(
        self, delivery: Delivery, finish: FinishJob, error: BaseException | None
    ) -> None:
        """Complete the job's `done` once its end is committed — or, when writing it failed,
        record the job `failed` on its own and answer that: a job is never left running."""
        finished = delivery.finished
        if isinstance(error, (JobNotFoundError, JobStateError)):
            # Not a job this journal can end (never recorded, or already final): a bug
            # upstream, logged; the client still gets an answer, nothing is written.
            log.error("journal refused to end job %s: %s", finish.job_id, error)
            finished = internal_error(finish.job_id, self.name, str(error))
        elif error is not None:
            log.error("journal could not record the end of job %s: %s", finish.job_id, error)
            finished = self._record_failure(finish, f"{type(error).__name__}: {error}")
        if delivery.job is not None and finished is not None:
            delivery.job.done.try_set(checked(finished))

    def _record_failure(self, finish: FinishJob, reason: str) -> JobFinished:
        failed = internal_error(
            finish.job_id, self.name, f"the journal could not record how the job ended ({reason})"
        )
        assert failed.error is not None
        self._unrecorded[finish.job_id] = (finish.finished_at_ms, failed.error)
        self._record_unrecorded()
        return failed

    def _record_unrecorded(self) -> None:
        for job_id, (finished_at_ms, error) in list(self._unrecorded.items()):
            try:
                self.store.finish_job(
                    job_id,
                    "failed",
                    finished_at_ms=finished_at_ms,
                    outcome=None,
                    result=None,
                    envelope=None,
                    error=error,
                )
            except Exception as exc:
                log.warning("journal still cannot record the end of job %s: %s", job_id, exc)
                self._timers.after("retry", RETRY_S, self.actor_ref, RetryJournalWrites())
                return
            del self._unrecorded[job_id]
            log.info("journal recorded job %s failed, as its client was told", job_id)

    def on_start(self) -> None:
        if self._blobs is not None:
            self._timers.after("blobs", BLOB_GC_FIRST_S, self.actor_ref, CollectBlobs())

    @handles(CollectBlobs)
    def on_collect_blobs(self, m: CollectBlobs, delivery: Delivery) -> None:
        """Blobs no job in the journal names, older than an hour (an upload waiting for the
        job that will name it), go; the outputs and inputs of journaled jobs stay."""
        assert self._blobs is not None
        self._flush()
        try:
            removed = self._blobs.collect(self.store.blob_references(), BLOB_MIN_AGE_S)
        except Exception as exc:  # an I/O error: try again next time
            log.warning("blob collection failed: %s", exc)
        else:
            if removed:
                log.info("collected %d blob(s) no job names", removed)
        self._timers.after("blobs", BLOB_GC_EVERY_S, self.actor_ref, CollectBlobs())

    @handles(RetryJournalWrites)
    def on_retry(self, m: RetryJournalWrites, delivery: Delivery) -> None:
        self._record_unrecorded()

    def on_stop(self) -> None:
        self._timers.cancel_all()
        if self._store is not None:
            self._flush()
            self._store.close()

    @property
    def store(self) -> JournalStore:
        assert self._store is not None, "the journal is not started"
        return self._store

    @handles(RecoverJournal)
    def on_recover(self, m: RecoverJournal, delivery: Delivery) -> JournalRecovered:
        interrupted = self.store.recover(time.time_ns() // 1_000_000)
        return JournalRecovered(interrupted=tuple(interrupted))

    @handles(RecordJob)
    def on_record(self, m: RecordJob, delivery: Delivery) -> Ok | MemoCandidate:
        self.store.add_job(m.job_id, m.manifest, m.module_sha256, m.created_at_ms, m.started_at_ms)
        if m.reuse_key is not None:
            found = self.store.find_memo(m.reuse_key)
            if found is not None and found.result is not None and found.envelope is not None:
                return MemoCandidate(
                    job_id=found.job_id, result=found.result, envelope=found.envelope
                )
        return Ok()

    @handles(MarkRunning)
    def on_running(self, m: MarkRunning, delivery: Delivery) -> None:
        self.store.mark_running(m.job_id, m.started_at_ms, m.executor)

    @handles(FinishJob)
    def on_finish(self, m: FinishJob, delivery: Delivery) -> None:
        # The job's `done` future is completed by _flush, after the commit.
        kept = self._keep_outputs(m.job_id, delivery.finished)
        index = self.store.finish_job(
            m.job_id,
            m.status,
            finished_at_ms=m.finished_at_ms,
            outcome=m.outcome,
            result=m.result,
            envelope=m.envelope,
            error=m.error,
            blobs=[*kept, *m.blobs],
            logged=m.logged and self._sign_head is not None and self._node is not None,
            memo_key=m.memo_key,
        )
        if index is not None:
            self._leaves[m.job_id] = index

    def _keep_outputs(self, job_id: str, finished: JobFinished | None) -> list[str]:
        """Store the job's output files as blobs; the sha256 of each one stored."""
        kept: list[str] = []
        if self._blobs is None or finished is None or finished.executed is None:
            return kept
        for path, data in finished.executed.outcome.output_files:
            try:
                kept.append(self._blobs.put(data))
            except BlobError as exc:
                # The result (and its receipt) still says what the file was; only its
                # bytes are not kept here. GET of that output answers why.
                log.warning("job %s: output %s not kept: %s", job_id, path, exc)
        return kept

    @handles(PeerDispute)
    def on_peer_dispute(self, m: PeerDispute, delivery: Delivery) -> None:
        self.store.save_peer_dispute(
            m.peer_id, m.receipts_disputed, m.last_disputed_at_ms, m.cooldown_until_ms
        )

    @handles(GetPeerDisputes)
    def on_get_peer_disputes(self, m: GetPeerDisputes, delivery: Delivery) -> PeerDisputes:
        return PeerDisputes(
            disputes=tuple(PeerDispute(*row) for row in self.store.peer_disputes())
        )

    @handles(PutModule)
    def on_put_module(self, m: PutModule, delivery: Delivery) -> ModuleStored:
        sha256 = hashlib.sha256(m.data).hexdigest()
        created = self.store.put_module(sha256, m.data)
        return ModuleStored(module_sha256=sha256, created=created)

    @handles(PutModuleFile)
    def on_put_module_file(self, m: PutModuleFile, delivery: Delivery) -> ModuleStored:
        created = self.store.put_module_file(m.sha256, Path(m.path))
        return ModuleStored(module_sha256=m.sha256, created=created)

    @handles(GetModule)
    def on_get_module(self, m: GetModule, delivery: Delivery) -> ModuleFound:
        return ModuleFound(
            module_sha256=m.module_sha256, data=self.store.get_module(m.module_sha256)
        )

    @handles(GetJob)
    def on_get_job(self, m: GetJob, delivery: Delivery) -> JobInfo:
        record = self.store.get_job(m.job_id)
        if record is None:
            raise UnknownJobError(f"no job {m.job_id} in this node's journal")
        info = job_info(record)
        # A receipt this node logged: its inclusion proof against the latest signed head
        # (computed here, not stored, so the hot path writes each result once).
        index = self.store.log_index(m.job_id) if info.result is not None else None
        latest = self.store.latest_head() if index is not None else None
        if index is not None and latest is not None and index < latest[0].size:
            proof = self.store.log_proof(index, latest)
            info = dataclasses.replace(info, result=_with_log(info.result, proof))
        return info

    @handles(ListJobs)
    def on_list_jobs(self, m: ListJobs, delivery: Delivery) -> JobList:
        records = self.store.list_jobs(m.status, m.limit)
        return JobList(jobs=tuple(job_info(r, with_result=False) for r in records))

    # -- the receipt log ------------------------------------------------------------------

    @handles(GetLogHead)
    def on_get_log_head(self, m: GetLogHead, delivery: Delivery) -> LogHead:
        latest = self.store.latest_head()
        if latest is None:
            return LogHead(size=0, root=EMPTY_ROOT, cose=None)
        return LogHead(size=latest[0].size, root=latest[0].root, cose=latest[1])

    @handles(GetLogPath)
    def on_get_log_path(self, m: GetLogPath, delivery: Delivery) -> LogPath:
        if m.kind == "inclusion":
            path = self.store.log_inclusion(m.first, m.second)
        else:
            path = self.store.log_consistency(m.first, m.second)
        return LogPath(path=tuple(path))

    @handles(GetLogEntries)
    def on_get_log_entries(self, m: GetLogEntries, delivery: Delivery) -> LogEntries:
        entries = self.store.log_entries(m.start, m.end, most=MAX_LOG_ENTRIES)
        return LogEntries(entries=tuple(entries))

    @handles(InboundRequest)
    def on_inbound(self, inbound: InboundRequest, delivery: Delivery) -> PeerResponse:
        """A peer asks over /plasm/log/1.0.0 for a consistency proof between two sizes."""
        try:
            request = decode_message(inbound.payload)
        except DecodeError as exc:
            return _respond(inbound.peer_id, Error(code="malformed", message=str(exc)))
        if inbound.protocol != PROTOCOL_LOG or not isinstance(request, LogConsistencyRequest):
            return _respond(
                inbound.peer_id,
                Error(code="malformed", message=f"the journal answers only {PROTOCOL_LOG}"),
            )
        try:
            path = self.store.log_consistency(request.first, request.second)
        except ValueError as exc:
            return _respond(inbound.peer_id, Error(code="bad_request", message=str(exc)))
        answer = LogConsistency(first=request.first, second=request.second, path=tuple(path))
        return _respond(inbound.peer_id, answer)

    @handles(CountJobs)
    def on_count_jobs(self, m: CountJobs, delivery: Delivery) -> JobCounts:
        return JobCounts(counts=self.store.counts_by_status())


_WRITES = (RecordJob, MarkRunning, FinishJob, PutModule, PutModuleFile, PeerDispute)


def _with_log(result: bytes | None, proof: LogProof) -> bytes | None:
    """The job-result JSON with ``"log"`` added (last, as `job_result_to_json` would)."""
    if result is None or not result.endswith(b"}"):
        return result
    return result[:-1] + b',"log":' + orjson.dumps(proof.to_json()) + b"}"


def _respond(peer_id: str, message: Any) -> PeerResponse:
    return PeerResponse(peer_id=peer_id, payload=encode_message(message))


def job_info(record: JobRecord, with_result: bool = True) -> JobInfo:
    return JobInfo(
        job_id=record.job_id,
        status=record.status,
        module_sha256=record.module_sha256,
        created_at_ms=record.created_at_ms,
        started_at_ms=record.started_at_ms,
        finished_at_ms=record.finished_at_ms,
        outcome=record.outcome,
        result=record.result if with_result else None,
        error=record.error,
        executor=record.executor,
    )
