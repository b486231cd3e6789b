"""The ingress: the single entrance for jobs.

Theory of operation. A client's `SubmitJob` is admitted (node limits, queue length,
shutdown) and given a job id; the job is written to the journal *before* the answer
`JobAccepted` goes back, so an acknowledged job can never be lost silently. Admitted
jobs wait in a bounded FIFO; the ingress hands each executor a few jobs ahead so that
an executor never idles waiting for the next hop: `PREFETCH` while its last job took a
while, `PREFETCH_SHORT` while its last job was short (under `SHORT_JOB_US`), where the
hops would otherwise cost a visible share of every job. A job goes to the executor with
the fewest jobs that still has room. Executors answer with
`JobCompleted`; the ingress records the result and receipt (the journal completes the
job's `done` future only after its commit, so no result is returned before its
receipt is durable) and dispatches more.

Cancelling a queued job drops it from the FIFO; cancelling a running one trips its
sandbox cancel token, so the guest stops and the receipt says `cancelled`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import pykka

from plasm.actors._deferred import tell_quietly
from plasm.actors._future import Future
from plasm.actors._mailbox import (
    Delivery,
    JobTicket,
    PlasmActor,
    ask,
    ask_async,
    checked,
    handles,
    internal_error,
    tell,
)
from plasm.actors.errors import (
    LimitsExceededError,
    QueueFullError,
    ReuseRefusedError,
    ShuttingDownError,
    UnknownJobError,
    UnknownModuleError,
    UnsupportedPlacementError,
)
from plasm.actors.messages import (
    CancelJob,
    CancelRemote,
    Drain,
    FinishJob,
    GetIngressStats,
    GetModule,
    IngressStats,
    JobAccepted,
    JobCompleted,
    JobCrashed,
    JobFinished,
    JobRecorded,
    JobStatus,
    LookupMemo,
    MarkRunning,
    MemoCandidate,
    MemoLookedUp,
    ModuleFound,
    ModuleStored,
    PublishMemo,
    PutModule,
    RecordJob,
    RemoteJobDone,
    RemoteJobRunning,
    RunRemote,
    SubmitJob,
)
from plasm.protocol.errors import DecodeError, ReceiptError
from plasm.protocol.messages import ExecuteJob
from plasm.protocol.negotiation import executed_from_receipt
from plasm.protocol.p2p_messages import Placement
from plasm.protocol.quorum import QuorumOutcome
from plasm.protocol.receipt import verify_envelope
from plasm.protocol.result import job_result_to_json
from plasm.protocol.reuse import (
    JobDescription,
    ReuseError,
    check_receipt_matches,
    describe,
    memo_key_of_verified,
)
from plasm.protocol.verification import check_result_fields
from plasm.runtime.job import Limits, OutcomeKind
from plasm.runtime.lru import BoundedLRU, weighed_in_bytes
from plasm.runtime.sandbox import CancelToken

if TYPE_CHECKING:
    from plasm.actors.executor import ExecutorActor
    from plasm.actors.journal import JournalActor

log = logging.getLogger(__name__)


def result_json(finished: JobFinished) -> dict[str, Any]:
    """The job-result JSON (schemas/job-result.schema.json) of a job that ran."""
    executed = finished.executed
    if executed is None or finished.envelope is None:
        raise ValueError(f"job {finished.job_id} did not run ({finished.status}); it has no result")
    return job_result_to_json(
        job_id=finished.job_id,
        status=finished.status,
        outcome=executed.outcome,
        module_sha256=executed.module_sha256,
        executor=finished.executor,
        envelope=finished.envelope,
        # Our own signer made it, or the negotiator verified it against the peer.
        already_verified=True,
        log=finished.log,
        quorum=finished.quorum,
    )


PREFETCH = 2
# Measured with hello.wasm (~0.3 ms a job), 8 in flight: 1.29x the plain-call floor with 2
# ahead, 1.18-1.22x with 4. A long job is found out when it ends, so at most 3 jobs wait
# behind the first long job on an executor that was running short ones.
PREFETCH_SHORT = 4
SHORT_JOB_US = 1_000
# Upper bounds of the job latency histogram (admission to result), in microseconds.
LATENCY_BUCKETS_US = (
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    10_000_000,
    60_000_000,
)
JOURNAL_TIMEOUT_S = 30.0
# Module bytes kept for queued and repeated jobs, in bytes: modules may be 256 MiB each
# (blobs.max_module_bytes), so a count would not bound the memory.
MODULE_CACHE_BYTES = 512 * 2**20
REMOTE_SLACK_MS = 15_000
# How long a job with reuse network waits for the DHT's memo record before it runs.
MEMO_LOOKUP_MS = 5_000


def _status_of(kind: OutcomeKind) -> str:
    if kind == OutcomeKind.CANCELLED:
        return "cancelled"
    if kind in (OutcomeKind.INVALID_MODULE, OutcomeKind.COMPILE_LIMIT):
        return "failed"
    return "done"


def new_job_id() -> str:
    """32 hex chars: 12 of unix milliseconds (ids sort by time), 20 random."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


@dataclass(slots=True)
class _Queued:
    job: ExecuteJob
    ticket: JobTicket
    cancel: CancelToken = field(default_factory=CancelToken)
    accepted_ns: int = field(default_factory=time.monotonic_ns)
    recorded_running: bool = False
    # Verified reuse: what the job asked for and, unless "off", its description (what a
    # stored run or a memo record must match).
    reuse: str = "off"
    description: JobDescription | None = None
    # A quorum job with include_self: its placement while this node runs its own replica,
    # whose receipt then counts as one vote of the replicas run on peers.
    self_replica: Placement | None = None


@dataclass(slots=True)
class _Admitting:
    """A job whose journal record is being written: it is answered once that commits."""

    queued: _Queued
    placement: Placement
    recorded: Future[Any]
    reply: Future[Any] | None
    crashed: JobFinished | None = None  # an actor failed on it meanwhile: end it so


class IngressActor(PlasmActor):
    def __init__(
        self,
        executors: list[pykka.ActorRef[ExecutorActor]],
        peer_id: str,
        max_limits: Limits,
        queue_length: int,
        journal: pykka.ActorRef[JournalActor] | None = None,
        negotiator: pykka.ActorRef[Any] | None = None,
    ) -> None:
        super().__init__()
        self._negotiator = negotiator
        self._remote: dict[str, tuple[_Queued, Placement]] = {}
        self._admitting: dict[str, _Admitting] = {}
        self._executors = executors
        self._inflight = [0] * len(executors)
        self._ahead = [PREFETCH] * len(executors)  # how many jobs each may hold
        self._peer_id = peer_id
        self._max = max_limits
        self._queue_length = queue_length
        self._journal = journal
        self._queue: deque[_Queued] = deque()
        self._running: dict[str, tuple[_Queued, int]] = {}
        self._modules: BoundedLRU[str, bytes] = BoundedLRU(
            MODULE_CACHE_BYTES, weight=weighed_in_bytes
        )
        self._stopping = False
        self._outcomes: dict[str, int] = {}
        self._latency_counts = [0] * (len(LATENCY_BUCKETS_US) + 1)
        self._latency_sum_us = 0
        self._reused = 0
        self._cancel_requested: set[str] = set()  # remote jobs the client cancelled
        # Jobs waiting for the DHT's memo (reuse network): job id -> (job, placement).
        self._memo_wait: dict[str, tuple[_Queued, Placement]] = {}

    # -- admission -----------------------------------------------------------------

    @handles(SubmitJob)
    def on_submit(self, request: SubmitJob, delivery: Delivery) -> JobAccepted | None:
        ticket = delivery.job
        if ticket is None or ticket.supervisor is not self.actor_ref:
            # The submitter's ticket (Node.submit names this ingress already), supervised here.
            done = ticket.done if ticket is not None else Future()
            ticket = JobTicket(request.job_id or new_job_id(), done, supervisor=self.actor_ref)
        done = ticket.done
        try:
            return self._admit(request, ticket, delivery)
        except Exception as exc:
            # A submitter that did not wait for this answer waits on `done`: fail it too.
            done.try_set_exception(exc)
            raise

    def _admit(
        self, request: SubmitJob, ticket: JobTicket, delivery: Delivery
    ) -> JobAccepted | None:
        if self._stopping:
            raise ShuttingDownError("the node is shutting down and takes no new jobs")
        self._check_limits(request.limits)
        too_big = request.limits.admits(request.job_input)
        if too_big is not None:
            raise LimitsExceededError(too_big)
        if len(self._queue) + len(self._admitting) >= self._queue_length:
            raise QueueFullError(
                f"the job queue is full ({self._queue_length} jobs waiting); retry later"
            )
        remote = request.placement.mode != "local"
        if remote and self._negotiator is None:
            raise UnsupportedPlacementError(
                f"placement mode {request.placement.mode!r} needs the peer-to-peer network, "
                "which this node does not run (network.enabled = false); use mode 'local'"
            )
        if remote and len(self._remote) >= self._queue_length:
            raise QueueFullError(
                f"{self._queue_length} remote jobs are already in flight; retry later"
            )
        module, sha256 = self._resolve_module(request)
        description = None
        if request.reuse != "off":
            try:
                description = describe(sha256, request.job_input, request.limits)
            except ReuseError as exc:
                raise ReuseRefusedError(exc.detail) from exc
        job = ExecuteJob(
            job_id=ticket.job_id,
            module=module,
            module_sha256=sha256,
            job_input=request.job_input,
            limits=request.limits,
            requester=request.requester or self._peer_id,
            nonce=request.nonce or os.urandom(16),
        )
        if self._journal is None:
            # No journal, no index: reuse needs one (plasmd execute-job has none).
            queued = _Queued(job, ticket)
            self._start(queued, request.placement)
            return JobAccepted(job_id=ticket.job_id, status="queued")
        now_ms = time.time_ns() // 1_000_000
        # A job that an executor can take right now is journaled as running at once.
        starts_now = (
            not remote
            and not self._queue
            and not self._admitting
            and self._free_executor() is not None
        )
        queued = _Queued(
            job,
            ticket,
            recorded_running=starts_now,
            reuse=request.reuse,
            description=description,
        )
        # The journal answers once the record is committed; the answer comes back here as
        # a message, so the ingress keeps admitting and dispatching meanwhile.
        recorded = ask_async(
            self._journal,
            RecordJob(
                job_id=ticket.job_id,
                manifest=request.manifest,
                module_sha256=sha256,
                created_at_ms=now_ms,
                started_at_ms=now_ms if starts_now else None,
                reuse_key=description.key() if description is not None else None,
            ),
        )
        self._admitting[ticket.job_id] = _Admitting(
            queued, request.placement, recorded, delivery.defer()
        )
        me = self.actor_ref
        recorded.add_done_callback(lambda _: tell_quietly(me, JobRecorded(job_id=ticket.job_id)))
        return None

    @handles(JobRecorded)
    def on_recorded(self, message: JobRecorded, delivery: Delivery) -> None:
        admitting = self._admitting.pop(message.job_id, None)
        if admitting is None:
            return
        failure = admitting.recorded.exception()
        if failure is not None:
            # Not journalled, so not accepted: the submitter gets the journal's error.
            if admitting.reply is not None:
                admitting.reply.try_set_exception(failure)
            admitting.queued.ticket.done.try_set_exception(failure)
            return
        if admitting.reply is not None:
            admitting.reply.try_set(checked(JobAccepted(job_id=message.job_id, status="queued")))
        if admitting.crashed is not None:
            self._finish(admitting.crashed, admitting.queued.ticket)
            return
        if self._stopping:
            self._finish(self._cancelled(message.job_id), admitting.queued.ticket)
            return
        candidate = admitting.recorded.get(timeout=0)
        if isinstance(candidate, MemoCandidate):
            reused = self._reuse_local(admitting.queued, candidate)
            if reused is not None:
                assert reused.result is not None
                self._take_hit(
                    admitting.queued,
                    admitting.placement,
                    reused,
                    reused=orjson.loads(reused.result)["reused"],
                )
                return
        queued = admitting.queued
        if queued.reuse == "network" and queued.description is not None and self._negotiator:
            # This node's index has no verified run: ask the DHT before running it.
            self._memo_wait[message.job_id] = (queued, admitting.placement)
            d = queued.description
            tell(
                self._negotiator,
                LookupMemo(
                    job_id=message.job_id,
                    module_sha256=d.module_sha256,
                    input_sha256=d.input_sha256,
                    limits=d.limits,
                    profile=d.profile,
                    timeout_ms=MEMO_LOOKUP_MS,
                ),
                reply_to=self.actor_ref,
            )
            return
        self._start(admitting.queued, admitting.placement)

    @handles(MemoLookedUp)
    def on_memo_looked_up(self, answer: MemoLookedUp, delivery: Delivery) -> None:
        """The DHT's verified memo of a job (run it if there is none, or it does not check)."""
        entry = self._memo_wait.pop(answer.job_id, None)
        if entry is None:
            return  # ended meanwhile (cancelled, the node stopping)
        queued, placement = entry
        if self._stopping:
            self._finish(self._cancelled(answer.job_id), queued.ticket)
            return
        if answer.envelope is None:
            self._start(queued, placement)
            return
        hit = self._memo_hit(queued, answer)
        if hit is None:
            self._start(queued, placement)
            return
        finished, reused = hit
        self._take_hit(
            queued,
            placement,
            finished,
            memo=queued,
            memo_key=queued.description.key() if queued.description else None,
            reused=reused,
        )

    def _take_hit(
        self,
        queued: _Queued,
        placement: Placement,
        finished: JobFinished,
        *,
        reused: dict[str, str],
        memo: _Queued | None = None,
        memo_key: bytes | None = None,
    ) -> None:
        """A verified earlier run answers this job, or, for a quorum job, counts as one of
        its replicas (at most one: the others run on peers other than its executor)."""
        if not placement.is_quorum:
            self._finish(finished, queued.ticket, memo=memo, memo_key=memo_key, reused=reused)
            return
        self._counted_replica(queued, placement, finished, memo=memo, memo_key=memo_key,
                              reused=reused)

    def _counted_replica(
        self,
        queued: _Queued,
        placement: Placement,
        finished: JobFinished,
        *,
        reused: dict[str, str] | None = None,
        memo: _Queued | None = None,
        memo_key: bytes | None = None,
    ) -> None:
        """A receipt that counts as one replica of a quorum job: a reused run's (verified
        reuse), or this node's own run (include_self). Alone it is a quorum of one; else
        the other replicas run on peers other than its executor."""
        assert finished.envelope is not None and placement.quorum is not None
        if placement.quorum == 1:  # one agreeing receipt is the quorum: this one
            outcome = QuorumOutcome(
                agreed=True,
                quorum=1,
                agreeing=(finished.executor,),
                dissenting=(),
                envelopes=(finished.envelope,),
            )
            if finished.executed is None and finished.result is not None:  # a local hit
                saved = orjson.loads(finished.result)
                saved["quorum"] = outcome.to_json()
                finished = dataclasses.replace(finished, result=orjson.dumps(saved))
            else:
                finished = dataclasses.replace(finished, quorum=outcome)
            self._finish(finished, queued.ticket, memo=memo, memo_key=memo_key, reused=reused)
            return
        log.info(
            "quorum job %s counts the run of job %s (executor %s) as one replica",
            queued.job.job_id,
            reused["job_id"] if reused is not None else queued.job.job_id,
            finished.executor,
            extra={"event": "quorum_counted_replica", "job_id": queued.job.job_id},
        )
        self._run_remote(
            queued,
            placement,
            time.time_ns() // 1_000_000,
            seed=(finished.executor, finished.envelope),
        )

    def _memo_hit(
        self, queued: _Queued, answer: MemoLookedUp
    ) -> tuple[JobFinished, dict[str, str]] | None:
        """A verified memo as this job's result, and the run it names ({job_id, executor});
        None when it does not check (then the job runs). Finishes nothing: a quorum job may
        count it as one replica (at most) and still run the others."""
        assert queued.description is not None and answer.envelope is not None
        try:
            receipt = verify_envelope(
                answer.envelope, stdout=answer.stdout, stderr=answer.stderr, outputs=answer.outputs
            )
            check_receipt_matches(receipt, queued.description)
        except ReceiptError as exc:  # the negotiator checked it: a bug if this happens
            log.error("job %s: the memo did not check here: %s", answer.job_id, exc)
            return None
        executed = executed_from_receipt(
            queued.job, receipt, answer.stdout, answer.stderr, tuple(answer.outputs)
        )
        self._reused += 1
        self._observe_latency((time.monotonic_ns() - queued.accepted_ns) // 1000)
        log.info(
            "job %s answered with the verified memo of job %s (executor %s, published by %s)",
            answer.job_id,
            receipt.job_id,
            receipt.executor,
            answer.publisher,
            extra={"event": "job_reused", "job_id": answer.job_id},
        )
        finished = JobFinished(
            job_id=answer.job_id,
            status=_status_of(receipt.outcome),
            executor=receipt.executor,
            executed=executed,
            envelope=answer.envelope,
        )
        return finished, {"job_id": receipt.job_id, "executor": receipt.executor}

    def _reuse_local(self, queued: _Queued, candidate: MemoCandidate) -> JobFinished | None:
        """The earlier job's result as this job's, once its receipt verifies, signs a
        reusable run of exactly this job's description, and says what the stored result
        says; else None (logged), and the job runs."""
        assert queued.description is not None
        try:
            saved = orjson.loads(candidate.result)
            stdout = base64.b64decode(saved["stdout"], validate=True)
            stderr = base64.b64decode(saved["stderr"], validate=True)
            receipt = verify_envelope(candidate.envelope, stdout=stdout, stderr=stderr)
            check_receipt_matches(receipt, queued.description)
            check_result_fields(saved, receipt)
        except (ReceiptError, DecodeError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "job %s: not reusing job %s: %s",
                queued.job.job_id,
                candidate.job_id,
                exc,
                extra={"event": "reuse_refused", "job_id": queued.job.job_id},
            )
            return None
        return self._reused_result(queued, saved, receipt.job_id, receipt.executor,
                                   candidate.envelope)

    def _reused_result(
        self, queued: _Queued, saved: dict[str, Any], job_id: str, executor: str, envelope: bytes
    ) -> JobFinished:
        saved.pop("log", None)  # the earlier job's place in a log, not this job's
        saved["job_id"] = queued.job.job_id
        saved["reused"] = {"job_id": job_id, "executor": executor}
        self._reused += 1
        self._observe_latency((time.monotonic_ns() - queued.accepted_ns) // 1000)
        log.info(
            "job %s answered with the verified result of job %s (executor %s)",
            queued.job.job_id,
            job_id,
            executor,
            extra={"event": "job_reused", "job_id": queued.job.job_id},
        )
        return JobFinished(
            job_id=queued.job.job_id,
            status="done",
            executor=executor,
            executed=None,
            envelope=envelope,
            result=orjson.dumps(saved),
        )

    def _start(self, queued: _Queued, placement: Placement) -> None:
        if placement.is_quorum and placement.include_self:
            queued.self_replica = placement  # this node's replica first, here
            self._queue.append(queued)
            self._dispatch()
        elif placement.mode != "local":
            self._run_remote(queued, placement, time.time_ns() // 1_000_000)
        else:
            self._queue.append(queued)
            self._dispatch()

    def _check_limits(self, limits: Limits) -> None:
        above = limits.exceeds(self._max)
        if above is not None:
            raise LimitsExceededError(above)

    def _resolve_module(self, request: SubmitJob) -> tuple[bytes, str]:
        if request.module is not None:
            sha256 = hashlib.sha256(request.module).hexdigest()
            if request.module_sha256 is not None and request.module_sha256 != sha256:
                raise UnknownModuleError(
                    f"the module bytes hash to {sha256}, not the module_sha256 given"
                )
            self._remember_module(sha256, request.module, store=True)
            # The cached object, not the request's copy: queued jobs of one module then
            # share one bytes object, and each request's copy is freed with its message.
            return self._modules.peek(sha256) or request.module, sha256
        sha256 = request.module_sha256 or ""
        cached = self._modules.get(sha256)
        if cached is not None:
            return cached, sha256
        data = None
        if self._journal is not None:
            found = ask(self._journal, GetModule(module_sha256=sha256), timeout=JOURNAL_TIMEOUT_S)
            assert isinstance(found, ModuleFound)
            data = found.data
        if data is None:
            raise UnknownModuleError(
                f"no module with sha256 {sha256} on this node; upload it first "
                "(POST /v1/modules) or send the module bytes with the job"
            )
        self._remember_module(sha256, data, store=False)
        return data, sha256

    def _remember_module(self, sha256: str, data: bytes, *, store: bool) -> None:
        if self._modules.touch(sha256):
            return
        if store and self._journal is not None:
            # Told, not asked: the journal writes it before the job record that follows.
            tell(self._journal, PutModule(data=data))
        self._modules.put(sha256, data)

    @handles(PutModule)
    def on_put_module(self, request: PutModule, delivery: Delivery) -> ModuleStored | None:
        sha256 = hashlib.sha256(request.data).hexdigest()
        known = sha256 in self._modules
        if self._journal is None:
            self._remember_module(sha256, request.data, store=False)
            return ModuleStored(module_sha256=sha256, created=not known)
        self._remember_module(sha256, request.data, store=False)
        # The journal answers the uploader itself, once the module is committed.
        tell(self._journal, PutModule(data=request.data), reply=delivery.defer())
        return None

    # -- remote jobs -------------------------------------------------------------------

    def _run_remote(
        self,
        queued: _Queued,
        placement: Placement,
        now_ms: int,
        seed: tuple[str, bytes] | None = None,
    ) -> None:
        assert self._negotiator is not None
        self._remote[queued.job.job_id] = (queued, placement)
        # The job's own timeout plus room for negotiation and moving bytes.
        deadline_ms = now_ms + queued.job.limits.timeout_ms + REMOTE_SLACK_MS
        executor, envelope = seed if seed is not None else (None, None)
        tell(
            self._negotiator,
            RunRemote(
                job=queued.job,
                placement=placement,
                deadline_ms=deadline_ms,
                seed_executor=executor,
                seed_envelope=envelope,
            ),
            job=queued.ticket,
            reply_to=self.actor_ref,
        )

    @handles(RemoteJobDone)
    def on_remote_done(self, done: RemoteJobDone, delivery: Delivery) -> None:
        cancelled = done.job_id in self._cancel_requested
        self._cancel_requested.discard(done.job_id)
        entry = self._remote.pop(done.job_id, None)
        if entry is None:
            log.warning("a remote result for job %s came after it was given up", done.job_id)
            return
        if done.executed is not None and done.envelope is not None and done.executor:
            self._observe_latency((time.monotonic_ns() - entry[0].accepted_ns) // 1000)
            kind = done.executed.outcome.kind
            self._outcomes[kind.value] = self._outcomes.get(kind.value, 0) + 1
            finished = JobFinished(
                job_id=done.job_id,
                status=_status_of(kind),
                executor=done.executor,
                executed=done.executed,
                envelope=done.envelope,
                log=done.log,
                quorum=done.quorum,
            )
            self._finish(
                finished,
                entry[0].ticket,
                memo=entry[0],
                # The negotiator verified it; the key comes from the receipt itself.
                memo_key=memo_key_of_verified(done.envelope),
            )
            return
        placement = entry[1]
        if (
            placement.mode == "any"
            and not placement.exclude_self
            and not placement.is_quorum  # this node is never one of a quorum's replicas
            and done.error_code == "no_executor"
            and not self._stopping
            and not cancelled
        ):
            # No peer took it and the client allowed this node: run it here.
            log.info(
                "no peer accepted job %s; running it locally",
                done.job_id,
                extra={"event": "remote_fallback_local", "job_id": done.job_id},
            )
            self._queue.append(entry[0])
            self._dispatch()
            return
        error: dict[str, Any] = {
            "code": done.error_code or "remote_failed",
            "message": done.error_message or "the job could not be run on a peer",
            "attempts": [{"peer_id": a.peer_id, "result": a.result} for a in done.attempts],
        }
        if done.quorum is not None:  # disputed: no quorum, every receipt kept
            error["quorum"] = done.quorum.to_json()
        if cancelled:
            error["code"] = "cancelled"
        status = "disputed" if done.error_code == "disputed" else "failed"
        self._finish(
            JobFinished(
                job_id=done.job_id,
                status="cancelled" if cancelled else status,
                executor="",
                executed=None,
                envelope=None,
                error=orjson.dumps(error),
            ),
            entry[0].ticket,
        )

    # -- dispatch and completion ---------------------------------------------------

    def _dispatch(self) -> None:
        while self._queue:
            index = self._free_executor()
            if index is None:
                return
            queued = self._queue.popleft()
            self._inflight[index] += 1
            self._running[queued.job.job_id] = (queued, index)
            if self._journal is not None and not queued.recorded_running:
                tell(
                    self._journal,
                    MarkRunning(
                        job_id=queued.job.job_id, started_at_ms=time.time_ns() // 1_000_000
                    ),
                )
            tell(
                self._executors[index],
                queued.job,
                job=queued.ticket,
                reply_to=self.actor_ref,
                cancel=queued.cancel,
            )

    def _free_executor(self) -> int | None:
        """The executor with the fewest jobs among those with room for one more."""
        best = None
        for index, count in enumerate(self._inflight):
            if count < self._ahead[index] and (best is None or count < self._inflight[best]):
                best = index
        return best

    @handles(JobCompleted)
    def on_completed(self, completed: JobCompleted, delivery: Delivery) -> None:
        executed = completed.executed
        entry = self._running.pop(executed.job_id, None)
        if entry is None:
            # Ended meanwhile (a crash report or a stop past its grace): already final.
            log.warning("job %s completed after it was ended; result dropped", executed.job_id)
            return
        queued, index = entry
        self._free_slot(index, executed.outcome.wall_time_us)
        self._observe_latency((time.monotonic_ns() - queued.accepted_ns) // 1000)
        kind = executed.outcome.kind
        self._outcomes[kind.value] = self._outcomes.get(kind.value, 0) + 1
        finished = JobFinished(
            job_id=executed.job_id,
            status=_status_of(kind),
            executor=self._peer_id,
            executed=executed,
            envelope=completed.envelope,
        )
        placement, queued.self_replica = queued.self_replica, None
        # this node's replica of a quorum job counts as one vote, unless it was cancelled
        counted = kind != OutcomeKind.CANCELLED and completed.envelope is not None
        if placement is not None and counted:
            self._counted_replica(queued, placement, finished, memo_key=completed.memo_key)
        else:
            self._finish(finished, queued.ticket, memo=queued, memo_key=completed.memo_key)
        self._dispatch()

    def _free_slot(self, index: int, wall_time_us: int | None) -> None:
        self._inflight[index] -= 1
        if wall_time_us is not None:
            self._ahead[index] = PREFETCH_SHORT if wall_time_us < SHORT_JOB_US else PREFETCH

    def _finish(
        self,
        finished: JobFinished,
        ticket: JobTicket,
        *,
        memo: _Queued | None = None,
        memo_key: bytes | None = None,
        reused: dict[str, str] | None = None,
    ) -> None:
        """Journal the job's end, then answer ``done``. ``memo_key``: a reusable run's key,
        under which a done job is indexed for reuse; ``memo``: the job (its run published
        when it asked for reuse network); ``reused``: the earlier run ({job_id, executor})
        that answers this job without running, whose receipt is not logged again."""
        if self._journal is None:
            # No journal (plasmd execute-job, embedded use): whoever waits builds the
            # result JSON if it wants one (`result_json`); nothing here needs it.
            ticket.done.try_set(checked(finished))
            return
        outcome = None
        blobs: tuple[str, ...] = ()
        if finished.executed is not None:
            # Built once here: the journal stores these bytes and the API returns them.
            result = result_json(finished)
            if reused is not None:
                result["reused"] = reused
            finished = dataclasses.replace(finished, result=orjson.dumps(result))
            outcome = finished.executed.outcome.kind.value
            if finished.status != "done":
                memo_key = None
            elif memo_key is not None and reused is None and memo and memo.reuse == "network":
                self._publish(memo_key, finished)
        elif reused is not None and finished.result is not None:
            saved = orjson.loads(finished.result)  # a local hit: the stored result, checked
            outcome = saved["outcome"]["kind"]
            blobs = tuple(item["sha256"] for item in saved["outputs"])
        tell(
            self._journal,
            FinishJob(
                job_id=finished.job_id,
                status=finished.status,
                finished_at_ms=time.time_ns() // 1_000_000,
                outcome=outcome,
                result=finished.result,
                envelope=finished.envelope,
                error=finished.error,
                # Receipts this node signed go into its transparency log; a peer's are in
                # the peer's (`log` in the result).
                logged=finished.envelope is not None
                and finished.executor == self._peer_id
                and reused is None,
                memo_key=memo_key if finished.executed is not None else None,
                blobs=blobs,
            ),
            job=ticket,
            finished=finished,
        )

    def _publish(self, key: bytes, finished: JobFinished) -> None:
        """A memo record of this reusable run (``key`` is its memo key), for the DHT."""
        executed = finished.executed
        if self._negotiator is None or executed is None or finished.envelope is None:
            return
        outcome = executed.outcome
        tell(
            self._negotiator,
            PublishMemo(
                key=key,
                envelope=finished.envelope,
                stdout=outcome.stdout,
                stderr=outcome.stderr,
                outputs=outcome.output_files,
            ),
        )

    # -- supervision -------------------------------------------------------------------

    @handles(JobCrashed)
    def on_crashed(self, crashed: JobCrashed, delivery: Delivery) -> None:
        """An actor failed while it held a job: end it `failed` and free what it held."""
        self._end_crashed(crashed.job_id, crashed.actor, crashed.message, delivery.job)

    def end_job(self, job: JobTicket, reason: str) -> None:
        # The ingress is the supervisor: a job it fails on is ended here, directly.
        try:
            self._end_crashed(job.job_id, self.name, reason, job)
        except Exception as exc:
            log.error("ingress could not end job %s cleanly: %s", job.job_id, exc)
            job.done.try_set(checked(internal_error(job.job_id, self.name, reason)))

    def _end_crashed(self, job_id: str, actor: str, message: str, ticket: JobTicket | None) -> None:
        failed = internal_error(job_id, actor, message)
        admitting = self._admitting.get(job_id)
        if admitting is not None:
            admitting.crashed = failed  # ended as soon as its record is committed
            return
        held = self._forget(job_id)
        if held is None:
            # Not held here: never accepted (its submitter got the refusal), or already
            # ended. Nothing to journal; answer `done` if nobody has.
            if ticket is not None:
                ticket.done.try_set(checked(failed))
            return
        self._finish(failed, held)
        self._dispatch()

    def _forget(self, job_id: str) -> JobTicket | None:
        """Drop a job from wherever the ingress holds it (freeing its executor slot)."""
        running = self._running.pop(job_id, None)
        if running is not None:
            self._free_slot(running[1], None)
            return running[0].ticket
        remote = self._remote.pop(job_id, None) or self._memo_wait.pop(job_id, None)
        if remote is not None:
            return remote[0].ticket
        for queued in self._queue:
            if queued.job.job_id == job_id:
                self._queue.remove(queued)
                return queued.ticket
        return None

    def _cancelled(self, job_id: str) -> JobFinished:
        return JobFinished(
            job_id=job_id, status="cancelled", executor=self._peer_id, executed=None, envelope=None
        )

    def _observe_latency(self, latency_us: int) -> None:
        self._latency_sum_us += latency_us
        for index, bound in enumerate(LATENCY_BUCKETS_US):
            if latency_us <= bound:
                self._latency_counts[index] += 1
                return
        self._latency_counts[-1] += 1

    @handles(RemoteJobRunning)
    def on_remote_running(self, message: RemoteJobRunning, delivery: Delivery) -> None:
        """A peer runs the job for this node now: journal it `running` (with the peer)."""
        entry = self._remote.get(message.job_id)
        if entry is None or self._journal is None:
            return
        entry[0].recorded_running = True
        tell(
            self._journal,
            MarkRunning(
                job_id=message.job_id,
                started_at_ms=message.started_at_ms,
                executor=message.executor,
            ),
        )

    @handles(CancelJob)
    def on_cancel(self, request: CancelJob, delivery: Delivery) -> JobStatus:
        if request.job_id in self._remote and self._negotiator is not None:
            # A peer runs it (or is being found): the negotiator tells the executor, and the
            # job ends cancelled with the executor's cancelled result (or without one).
            self._cancel_requested.add(request.job_id)
            tell(self._negotiator, CancelRemote(job_id=request.job_id))
            return JobStatus(job_id=request.job_id, status="cancelling")
        for queued in self._queue:
            if queued.job.job_id == request.job_id:
                self._queue.remove(queued)
                self._finish(self._cancelled(request.job_id), queued.ticket)
                return JobStatus(job_id=request.job_id, status="cancelled")
        waiting = self._memo_wait.pop(request.job_id, None)
        if waiting is not None:
            self._finish(self._cancelled(request.job_id), waiting[0].ticket)
            return JobStatus(job_id=request.job_id, status="cancelled")
        running = self._running.get(request.job_id)
        if running is not None:
            running[0].cancel.cancel()
            return JobStatus(job_id=request.job_id, status="cancelling")
        raise UnknownJobError(f"job {request.job_id} is not queued or running on this node")

    # -- shutdown and introspection -------------------------------------------------

    @handles(Drain)
    def on_drain(self, request: Drain, delivery: Delivery) -> IngressStats:
        """Stop admitting; cancel what is queued and, if asked, what runs."""
        self._stopping = True
        while self._queue:
            queued = self._queue.popleft()
            self._finish(self._cancelled(queued.job.job_id), queued.ticket)
        for job_id in list(self._memo_wait):
            waiting = self._memo_wait.pop(job_id)
            self._finish(self._cancelled(job_id), waiting[0].ticket)
        if request.cancel_running:
            for queued, _ in self._running.values():
                queued.cancel.cancel()
        if request.cancel_running or request.interrupt:
            for job_id in list(self._remote):
                # A peer may still finish it, but this node will not be here to check.
                self._interrupt(job_id, "this node stopped while a peer ran the job")
        if request.interrupt:
            for job_id in list(self._running):
                self._interrupt(job_id, "this node stopped before the job finished")
        return self._stats()

    def _interrupt(self, job_id: str, why: str) -> None:
        ticket = self._forget(job_id)
        if ticket is None:
            return
        error = {"code": "interrupted", "message": f"{why}; submit it again"}
        self._finish(
            JobFinished(
                job_id=job_id,
                status="interrupted",
                executor="",
                executed=None,
                envelope=None,
                error=orjson.dumps(error),
            ),
            ticket,
        )

    @handles(GetIngressStats)
    def on_stats(self, request: GetIngressStats, delivery: Delivery) -> IngressStats:
        return self._stats()

    def _stats(self) -> IngressStats:
        return IngressStats(
            queue_depth=len(self._queue),
            running=len(self._running)
            + len(self._remote)
            + len(self._admitting)
            + len(self._memo_wait),
            busy_executors=sum(1 for n in self._inflight if n),
            executors=len(self._executors),
            outcomes=dict(self._outcomes),
            latency_counts=tuple(self._latency_counts),
            latency_sum_us=self._latency_sum_us,
            reused=self._reused,
        )
