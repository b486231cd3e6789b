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
from pathlib import Path
from typing import Any

import orjson
import pykka

from plasm.actors._deferred import Timers, tell_quietly
from plasm.actors._future import Future
from plasm.actors._mailbox import (
    Delivery,
    PlasmActor,
    ask,
    ask_async,
    checked,
    handles,
    internal_error,
)
from plasm.actors.blob_store import BlobError, BlobStore
from plasm.actors.errors import UnknownJobError
from plasm.actors.journal_store import JobNotFoundError, JobRecord, JobStateError, JournalStore
from plasm.actors.messages import (
    CheckHeadSigning,
    CollectBlobs,
    CountJobs,
    FinishJob,
    GetJob,
    GetLogEntries,
    GetLogHead,
    GetLogPath,
    GetModule,
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
    ModuleFound,
    ModuleStored,
    Ok,
    PeerResponse,
    PutModule,
    PutModuleFile,
    RecordJob,
    RecoverJournal,
    RetryJournalWrites,
    SignTreeHead,
    TreeHeadNotSigned,
    TreeHeadSigned,
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
SIGN_HEAD_TIMEOUT_S = 5.0
MAX_LOG_ENTRIES = 1000  # receipts per GET /v1/log/entries


class JournalActor(PlasmActor):
    def __init__(
        self,
        path: Path,
        synchronous: str = "normal",
        blobs: BlobStore | None = None,
        signer: pykka.ActorRef[Any] | None = None,
        node: str | None = None,
    ) -> None:
        super().__init__()
        # Who signs the receipt log's tree heads (the signer actor holds the key) and the
        # node they name; without them receipts are not logged (embedded use, tests).
        self._signer = signer
        self._node = node
        # Leaves the open batch appended: job id -> leaf index.
        self._leaves: dict[str, int] = {}
        # Logged jobs whose end is committed, each waiting for a signed head that covers its
        # leaf, to be answered with its inclusion proof: (delivery, leaf index), in order.
        self._awaiting: list[tuple[Delivery, int]] = []
        # The head asked of the signer and not answered yet (one at a time), since when.
        self._signing: TreeHead | None = None
        self._signing_since = 0.0
        self._watchdog = False  # a CheckHeadSigning timer is pending
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
        leaves, self._leaves = self._leaves, {}
        failure: BaseException | None = None
        try:
            self.store.commit_batch()
        except Exception as exc:
            failure = exc
            log.error("journal commit failed; %d write(s) lost: %s", len(pending), exc)
        for delivery, answer, error in pending:
            error = error or failure
            message = delivery.message
            if isinstance(message, FinishJob):
                index = leaves.get(message.job_id)
                if error is None and index is not None:
                    self._awaiting.append((delivery, index))  # answered with a proof
                else:
                    self._answer_finish(delivery, message, error)
            elif delivery.reply is not None:
                if error is not None:
                    delivery.reply.set_exception((type(error), error, error.__traceback__))
                else:
                    delivery.reply.set(checked(answer))
            elif error is not None:
                log.error("journal write %s failed: %s", type(message).__name__, error)
        self._answer_proved()
        self._ask_head()

    # -- tree heads: asked of the signer without waiting, answered into the inbox ---------
    #
    # A batch's leaves commit first; then one head over them is asked for, and the journal
    # goes on with the next batches meanwhile. The signed head arrives as a write
    # (TreeHeadSigned), is stored in the batch it lands in, and once that commits the jobs
    # it covers are answered, each with its inclusion proof. While a head is being signed
    # no other is asked for: the next one covers every leaf committed in the meantime.

    def _ask_head(self) -> None:
        if not self._awaiting or self._signing is not None:
            return
        assert self._signer is not None and self._node is not None
        head = self.store.next_tree_head(self._node, time.time_ns() // 1_000_000)
        if head is None:
            return
        self._signing, self._signing_since = head, time.monotonic()
        request = SignTreeHead(size=head.size, root=head.root, timestamp_ms=head.timestamp_ms)
        me = self.actor_ref
        ask_async(self._signer, request).add_done_callback(
            lambda answered: _head_answered(me, head.size, answered)
        )
        if not self._watchdog:
            self._watchdog = True
            self._timers.after("head", SIGN_HEAD_TIMEOUT_S, me, CheckHeadSigning())

    @handles(TreeHeadSigned)
    def on_head_signed(self, m: TreeHeadSigned, delivery: Delivery) -> None:
        if self._signing is not None and self._signing.size == m.size:
            self._signing = None
        assert self._node is not None
        head = TreeHead(m.size, m.root, m.timestamp_ms, self._node)
        self.store.add_tree_head(head, m.cose)  # answered by _flush, once committed

    @handles(TreeHeadNotSigned)
    def on_head_not_signed(self, m: TreeHeadNotSigned, delivery: Delivery) -> None:
        if self._signing is None or self._signing.size != m.size:
            return  # an answer to a request given up on already
        self._signing = None
        log.error(
            "could not sign the receipt log's head (%s); %d result(s) go without a proof, "
            "the next head covers them",
            m.reason,
            len(self._awaiting),
        )
        awaiting, self._awaiting = self._awaiting, []
        for delivery_, _ in awaiting:
            self._answer_finish(delivery_, delivery_.message, None)

    @handles(CheckHeadSigning)
    def on_check_head_signing(self, m: CheckHeadSigning, delivery: Delivery) -> None:
        self._watchdog = False
        if self._signing is None:
            return
        waited = time.monotonic() - self._signing_since
        if waited >= SIGN_HEAD_TIMEOUT_S:
            reason = f"no answer from the signer in {SIGN_HEAD_TIMEOUT_S:g} s"
            self.on_head_not_signed(TreeHeadNotSigned(size=self._signing.size, reason=reason),
                                    delivery)  # fmt: skip
        else:
            self._watchdog = True
            self._timers.after(
                "head", SIGN_HEAD_TIMEOUT_S - waited, self.actor_ref, CheckHeadSigning()
            )

    def _answer_proved(self) -> None:
        """Answer the waiting jobs the latest signed head covers, each with its proof."""
        latest = self.store.latest_head() if self._awaiting else None
        if latest is None:
            return
        size, still = latest[0].size, []
        for delivery, index in self._awaiting:
            if index < size:
                proved = self._prove(delivery, index, latest)
                self._answer_finish(proved, proved.message, None)
            else:
                still.append((delivery, index))
        self._awaiting = still

    def _sign_now(self) -> None:
        """At stop: sign a head for the jobs still waiting for one (waiting for the signer,
        which stops after the journal), then answer them, with their proofs if it came."""
        head = self.store.next_tree_head(self._node, time.time_ns() // 1_000_000) \
            if self._awaiting and self._node is not None else None  # fmt: skip
        if head is not None and self._signer is not None:
            request = SignTreeHead(size=head.size, root=head.root, timestamp_ms=head.timestamp_ms)
            try:
                signed = ask(self._signer, request, timeout=SIGN_HEAD_TIMEOUT_S)
                assert isinstance(signed, TreeHeadSigned)
                self.store.add_tree_head(head, signed.cose)
            except Exception as exc:
                log.error("could not sign the receipt log's head at stop: %s", exc)
        self._answer_proved()
        for delivery, _ in self._awaiting:
            self._answer_finish(delivery, delivery.message, None)
        self._awaiting = []

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
            self._sign_now()
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
    def on_record(self, m: RecordJob, delivery: Delivery) -> Ok:
        self.store.add_job(m.job_id, m.manifest, m.module_sha256, m.created_at_ms, m.started_at_ms)
        return Ok()

    @handles(MarkRunning)
    def on_running(self, m: MarkRunning, delivery: Delivery) -> None:
        self.store.mark_running(m.job_id, m.started_at_ms)

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
            blobs=kept,
            logged=m.logged and self._signer is not None and self._node is not None,
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


_WRITES = (RecordJob, MarkRunning, FinishJob, PutModule, PutModuleFile, TreeHeadSigned)


def _head_answered(journal: pykka.ActorRef[Any], size: int, answered: Future[Any]) -> None:
    """The signer's answer to SignTreeHead, into the journal's inbox (run by whoever
    answered, so it only tells)."""
    failure = answered.exception()
    if failure is None:
        tell_quietly(journal, answered.get())
    else:
        tell_quietly(journal, TreeHeadNotSigned(size=size, reason=str(failure) or
                                                type(failure).__name__))  # fmt: skip


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
    )
