"""The node-internal part of the message catalogue: ingress, journal and control.

These never leave the node, but they are registered in the same catalogue
(`MESSAGE_TYPES`) and built from the same field types as the wire messages, so the
strict test mode can round-trip every one of them through the CBOR codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from plasm.protocol import formats
from plasm.protocol.messages import ExecuteJob, JobExecuted, Message, _register
from plasm.protocol.p2p_messages import LOCAL, Placement
from plasm.runtime.job import JobInput, Limits

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted", "rejected")


def _check_status(status: str) -> None:
    if status not in JOB_STATUSES:
        raise ValueError(f"job status must be one of {JOB_STATUSES}, got {status!r}")


# --- ingress ------------------------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class SubmitJob(Message):
    """Client -> ingress: admit this job. `manifest` is the JSON to journal."""

    TYPE: ClassVar[str] = "submit_job"
    module: bytes | None
    module_sha256: str | None
    job_input: JobInput
    limits: Limits
    manifest: bytes
    placement: Placement = LOCAL
    # The job id, when the submitter chose it (Node.submit does, so that it need not wait
    # for JobAccepted; the negotiator uses a remote requester's). None: the ingress picks.
    # `requester` and `nonce` are set only by the negotiator: the receipt then names them.
    job_id: str | None = None
    requester: str | None = None
    nonce: bytes | None = None

    def __post_init__(self) -> None:
        if self.module is None and self.module_sha256 is None:
            raise ValueError("submit_job needs the module bytes or its module_sha256")
        if self.module_sha256 is not None:
            formats.check_sha256_hex(self.module_sha256)


@_register
@dataclass(frozen=True, slots=True)
class JobAccepted(Message):
    TYPE: ClassVar[str] = "job_accepted"
    job_id: str
    status: str


@_register
@dataclass(frozen=True, slots=True)
class JobCompleted(Message):
    """Executor -> ingress: the job ran and its receipt is signed."""

    TYPE: ClassVar[str] = "job_completed"
    executed: JobExecuted
    envelope: bytes


@_register
@dataclass(frozen=True, slots=True)
class JobFinished(Message):
    """What a job's `done` future holds: final status, and the run when there was one."""

    TYPE: ClassVar[str] = "job_finished"
    job_id: str
    status: str
    executor: str
    executed: JobExecuted | None
    envelope: bytes | None
    error: bytes | None = None  # JSON {"code", "message", ...} when it did not run
    result: bytes | None = None  # the job-result JSON, when it ran

    def __post_init__(self) -> None:
        _check_status(self.status)


@_register
@dataclass(frozen=True, slots=True)
class HandlerFailed(Message):
    """Any actor -> the actor in `reply_to`: handling your tagged request failed.

    Sent instead of the answer a non-blocking asker waits for (a `tag`ged request), so it
    can give up at once rather than at its deadline."""

    TYPE: ClassVar[str] = "handler_failed"
    tag: str
    actor: str
    message: str


@_register
@dataclass(frozen=True, slots=True)
class JobRecorded(Message):
    """Ingress -> itself: the journal answered the record of a job being admitted."""

    TYPE: ClassVar[str] = "job_recorded"
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class JobCrashed(Message):
    """Any actor -> the job's supervisor (ingress): I failed while I held this job; end it."""

    TYPE: ClassVar[str] = "job_crashed"
    job_id: str
    actor: str
    message: str


@_register
@dataclass(frozen=True, slots=True)
class RunRemote(Message):
    """Ingress -> negotiator: find a peer for this job, run it there, verify the receipt.

    The negotiator answers the ingress (`reply_to`) with `RemoteJobDone`, passing the
    job's `done` future along, within `deadline_ms` (unix ms).
    """

    TYPE: ClassVar[str] = "run_remote"
    job: ExecuteJob
    placement: Placement
    deadline_ms: int


@_register
@dataclass(frozen=True, slots=True)
class Attempt(Message):
    """One candidate tried for a remote job, and why it did not (or did) run it."""

    TYPE: ClassVar[str] = "attempt"
    peer_id: str
    result: str  # "ran", a JobResponse reason code, or a PeerFailure/receipt reason


@_register
@dataclass(frozen=True, slots=True)
class RemoteJobDone(Message):
    """Negotiator -> ingress: a verified remote result, or why there is none."""

    TYPE: ClassVar[str] = "remote_job_done"
    job_id: str
    executor: str | None
    executed: JobExecuted | None
    envelope: bytes | None
    error_code: str | None
    error_message: str | None
    attempts: tuple[Attempt, ...]

    @classmethod
    def succeeded(
        cls,
        job_id: str,
        executor: str,
        executed: JobExecuted,
        envelope: bytes,
        attempts: tuple[Attempt, ...],
    ) -> RemoteJobDone:
        """The verified result `executor` returned."""
        return cls(job_id, executor, executed, envelope, None, None, attempts)

    @classmethod
    def failed(
        cls, job_id: str, code: str, message: str, attempts: tuple[Attempt, ...] = ()
    ) -> RemoteJobDone:
        """Why there is no result, with every candidate tried."""
        return cls(job_id, None, None, None, code, message, attempts)


@_register
@dataclass(frozen=True, slots=True)
class CancelJob(Message):
    TYPE: ClassVar[str] = "cancel_job"
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class JobStatus(Message):
    TYPE: ClassVar[str] = "job_status"
    job_id: str
    status: str


@_register
@dataclass(frozen=True, slots=True)
class Drain(Message):
    """-> ingress: stop admitting, cancel the queue (and running jobs if asked).

    `interrupt`: give up on every job still running (here or on a peer): each is
    journalled `interrupted` and its slot freed, so a stop past its grace ends them all.
    """

    TYPE: ClassVar[str] = "drain"
    cancel_running: bool
    interrupt: bool = False


@_register
@dataclass(frozen=True, slots=True)
class GetIngressStats(Message):
    TYPE: ClassVar[str] = "get_ingress_stats"


@_register
@dataclass(frozen=True, slots=True)
class IngressStats(Message):
    TYPE: ClassVar[str] = "ingress_stats"
    queue_depth: int
    running: int
    busy_executors: int
    executors: int
    outcomes: dict[str, int]
    latency_counts: tuple[int, ...]
    latency_sum_us: int


# --- modules ------------------------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class PutModule(Message):
    """-> ingress / journal: store these module bytes (content-addressed)."""

    TYPE: ClassVar[str] = "put_module"
    data: bytes


@_register
@dataclass(frozen=True, slots=True)
class ModuleStored(Message):
    TYPE: ClassVar[str] = "module_stored"
    module_sha256: str
    created: bool


@_register
@dataclass(frozen=True, slots=True)
class GetModule(Message):
    TYPE: ClassVar[str] = "get_module"
    module_sha256: str


@_register
@dataclass(frozen=True, slots=True)
class ModuleFound(Message):
    TYPE: ClassVar[str] = "module_found"
    module_sha256: str
    data: bytes | None


# --- journal ------------------------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class RecoverJournal(Message):
    """-> journal at start: mark jobs a crash left queued or running as interrupted."""

    TYPE: ClassVar[str] = "recover_journal"


@_register
@dataclass(frozen=True, slots=True)
class JournalRecovered(Message):
    TYPE: ClassVar[str] = "journal_recovered"
    interrupted: tuple[str, ...]


@_register
@dataclass(frozen=True, slots=True)
class RecordJob(Message):
    TYPE: ClassVar[str] = "record_job"
    job_id: str
    manifest: bytes
    module_sha256: str
    created_at_ms: int
    started_at_ms: int | None = None  # set: recorded straight as running


@_register
@dataclass(frozen=True, slots=True)
class MarkRunning(Message):
    TYPE: ClassVar[str] = "mark_running"
    job_id: str
    started_at_ms: int


@_register
@dataclass(frozen=True, slots=True)
class FinishJob(Message):
    """-> journal: result and receipt in one transaction; then the `done` future."""

    TYPE: ClassVar[str] = "finish_job"
    job_id: str
    status: str
    finished_at_ms: int
    outcome: str | None
    result: bytes | None
    envelope: bytes | None
    error: bytes | None

    def __post_init__(self) -> None:
        _check_status(self.status)


@_register
@dataclass(frozen=True, slots=True)
class GetJob(Message):
    TYPE: ClassVar[str] = "get_job"
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class JobInfo(Message):
    TYPE: ClassVar[str] = "job_info"
    job_id: str
    status: str
    module_sha256: str
    created_at_ms: int
    started_at_ms: int | None
    finished_at_ms: int | None
    outcome: str | None
    result: bytes | None
    error: bytes | None


@_register
@dataclass(frozen=True, slots=True)
class ListJobs(Message):
    TYPE: ClassVar[str] = "list_jobs"
    status: str | None
    limit: int


@_register
@dataclass(frozen=True, slots=True)
class JobList(Message):
    TYPE: ClassVar[str] = "job_list"
    jobs: tuple[JobInfo, ...]


@_register
@dataclass(frozen=True, slots=True)
class CountJobs(Message):
    TYPE: ClassVar[str] = "count_jobs"


@_register
@dataclass(frozen=True, slots=True)
class JobCounts(Message):
    TYPE: ClassVar[str] = "job_counts"
    counts: dict[str, int]


@_register
@dataclass(frozen=True, slots=True)
class Ok(Message):
    """A plain acknowledgement."""

    TYPE: ClassVar[str] = "ok"
