"""The actor-internal messages: what Plasm's actors say to one another inside a node.

These never leave the node, so they are not part of the wire catalogue: `decode_message`
refuses them in a frame from a peer (it accepts only `plasm.protocol.messages.wire_types()`).
They are built from the same field types and registered for the same codec, so the strict
test mode (`PLASM_STRICT_MESSAGES=1`) can round-trip every one of them through CBOR and a
message that could not cross a process boundary fails in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from plasm.protocol import formats
from plasm.protocol.formats import check_status
from plasm.protocol.messages import Capabilities, ExecuteJob, JobExecuted, Message, register_local
from plasm.protocol.negotiation import Attempt
from plasm.protocol.p2p_messages import (
    LOCAL,
    PEER_EVENTS,
    PEER_FAILURES,
    Placement,
    Requirements,
)
from plasm.protocol.quorum import QuorumOutcome
from plasm.protocol.receipt import Receipt
from plasm.protocol.reuse import REUSE_MODES
from plasm.protocol.transparency import LogProof
from plasm.runtime.job import JobInput, Limits

_register = register_local

# receipt_disputed: its valid receipt disagreed with the agreed receipts of a quorum job
PEER_OUTCOMES = frozenset({"ran", "receipt_rejected", "receipt_disputed", "failed"})
DEFAULT_CANDIDATE_LIMIT = 8


# --- ingress, journal and control ------------------------------------------------------


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
    # Verified reuse (plasm.protocol.reuse): "off", "local" or "network".
    reuse: str = "off"

    def __post_init__(self) -> None:
        if self.reuse not in REUSE_MODES:
            raise ValueError(f"reuse must be one of {', '.join(REUSE_MODES)}, got {self.reuse!r}")
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
    # The memo key the run is indexed under for reuse (plasm.protocol.reuse.memo_key_of),
    # computed by the signer from the receipt it signed; None: the run may not be reused.
    memo_key: bytes | None = None


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
    log: LogProof | None = None  # the receipt's place in its executor's transparency log
    quorum: QuorumOutcome | None = None  # a quorum job's replicas (in its result JSON)

    def __post_init__(self) -> None:
        check_status(self.status)


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
    # A quorum job with reuse: the verified earlier receipt (verified reuse) that counts as
    # one of its replicas, and its executor (never asked again).
    seed_executor: str | None = None
    seed_envelope: bytes | None = None


@_register
@dataclass(frozen=True, slots=True)
class RemoteJobRunning(Message):
    """Negotiator -> ingress: a peer was sent this job to run (`executor`; None for a
    quorum job's replicas) at `started_at_ms`: the job is `running` here too."""

    TYPE: ClassVar[str] = "remote_job_running"
    job_id: str
    executor: str | None
    started_at_ms: int


@_register
@dataclass(frozen=True, slots=True)
class CancelRemote(Message):
    """Ingress -> negotiator: the client cancelled a job a peer runs (or is being found)
    for this node: tell the executor (``CancelRequest``) and end the job ``cancelled``."""

    TYPE: ClassVar[str] = "cancel_remote"
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class CancelGraceOver(Message):
    """Negotiator -> itself: a cancelled remote job's executor had its time to answer."""

    TYPE: ClassVar[str] = "cancel_grace_over"
    job_id: str


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
    log: LogProof | None = None  # where the executor's log holds the receipt, verified
    # a quorum job: how its replicas' receipts fell (with a result: agreed; error
    # `disputed`: no quorum)
    quorum: QuorumOutcome | None = None

    @classmethod
    def succeeded(
        cls,
        job_id: str,
        executor: str,
        executed: JobExecuted,
        envelope: bytes,
        attempts: tuple[Attempt, ...],
        log: LogProof | None = None,
    ) -> RemoteJobDone:
        """The verified result `executor` returned."""
        return cls(job_id, executor, executed, envelope, None, None, attempts, log)

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
    reused: int = 0  # jobs answered with an earlier verified result, without running


@_register
@dataclass(frozen=True, slots=True)
class PutModule(Message):
    """-> ingress / journal: store these module bytes (content-addressed)."""

    TYPE: ClassVar[str] = "put_module"
    data: bytes


@_register
@dataclass(frozen=True, slots=True)
class PutModuleFile(Message):
    """-> journal: store the module in this file (a staged upload) under its sha256, copied
    in pieces; the file is the sender's and stays until the answer."""

    TYPE: ClassVar[str] = "put_module_file"
    path: str
    sha256: str


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
    # Set: the job asked for reuse; the journal answers `MemoCandidate` when it holds a
    # done job indexed under this memo key (the ingress checks it), else `Ok`.
    reuse_key: bytes | None = None


@_register
@dataclass(frozen=True, slots=True)
class MemoCandidate(Message):
    """Journal -> ingress: a done job indexed under the memo key asked for, unchecked."""

    TYPE: ClassVar[str] = "memo_candidate"
    job_id: str
    result: bytes
    envelope: bytes


@_register
@dataclass(frozen=True, slots=True)
class MarkRunning(Message):
    TYPE: ClassVar[str] = "mark_running"
    job_id: str
    started_at_ms: int
    executor: str | None = None  # a peer that runs it for this node (or None: here)


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
    logged: bool = False  # this node signed the receipt: append it to the transparency log
    memo_key: bytes | None = None  # index the job for reuse under this key (done jobs only)
    blobs: tuple[str, ...] = ()  # output blobs (sha256 hex) the job names besides its own

    def __post_init__(self) -> None:
        check_status(self.status)


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
    executor: str | None = None  # the peer running it for this node, while it runs


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


# --- discovery and negotiator ---------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class FindCandidates(Message):
    """-> discovery: peers whose verified records meet `requirements`, best first.

    Answered on the `reply` future, or told to `reply_to` as `Candidates` with the same
    `tag` (the negotiator's way, so it never blocks).
    """

    TYPE: ClassVar[str] = "find_candidates"
    requirements: Requirements = field(default_factory=Requirements)
    exclude: tuple[str, ...] = ()
    limit: int = DEFAULT_CANDIDATE_LIMIT
    tag: str = ""

    def __post_init__(self) -> None:
        if type(self.limit) is not int or self.limit < 1:
            raise ValueError(
                f"find_candidates.limit must be a positive integer, got {self.limit!r}"
            )
        object.__setattr__(self, "exclude", tuple(self.exclude))


@_register
@dataclass(frozen=True, slots=True)
class Candidates(Message):
    TYPE: ClassVar[str] = "candidates"
    peer_ids: tuple[str, ...]
    tag: str = ""


@_register
@dataclass(frozen=True, slots=True)
class PeerInfo(Message):
    """One row of the peer table; `capabilities` only once its signed record verified."""

    TYPE: ClassVar[str] = "peer_info"
    peer_id: str
    addresses: tuple[str, ...]
    capabilities: Capabilities | None
    last_seen_ms: int
    latency_us: int | None
    jobs_run: int
    receipts_rejected: int
    failures: int
    connected: bool
    # Its receipt log as this node saw it: the largest head it signed that this node holds
    # (size, root hex), and how many times it showed a history inconsistent with it.
    log_size: int | None = None
    log_root: str | None = None
    log_inconsistencies: int = 0
    log_problem: str | None = None
    # Its receipts that disagreed with an agreed quorum, and until when (unix ms) it is
    # offered no jobs for it (None: it is not cooling down).
    receipts_disputed: int = 0
    cooldown_until_ms: int | None = None


@_register
@dataclass(frozen=True, slots=True)
class ListPeers(Message):
    TYPE: ClassVar[str] = "list_peers"


@_register
@dataclass(frozen=True, slots=True)
class PeerList(Message):
    TYPE: ClassVar[str] = "peer_list"
    peers: tuple[PeerInfo, ...]


@_register
@dataclass(frozen=True, slots=True)
class PeerLogHead(Message):
    """Negotiator -> discovery: `peer_id` returned a verified result with this tree head."""

    TYPE: ClassVar[str] = "peer_log_head"
    peer_id: str
    head: bytes


@_register
@dataclass(frozen=True, slots=True)
class RecordPeerOutcome(Message):
    """Negotiator -> discovery: `peer_id` ran a job, sent a bad receipt, or failed us."""

    TYPE: ClassVar[str] = "record_peer_outcome"
    peer_id: str
    outcome: str

    def __post_init__(self) -> None:
        if self.outcome not in PEER_OUTCOMES:
            raise ValueError(f"peer outcome must be one of {sorted(PEER_OUTCOMES)}")


@_register
@dataclass(frozen=True, slots=True)
class PeerDispute(Message):
    """Discovery -> journal: keep this peer's dispute record (it survives restarts)."""

    TYPE: ClassVar[str] = "peer_dispute"
    peer_id: str
    receipts_disputed: int
    last_disputed_at_ms: int
    cooldown_until_ms: int | None


@_register
@dataclass(frozen=True, slots=True)
class GetPeerDisputes(Message):
    """Node -> journal at start: every peer's dispute record, for discovery."""

    TYPE: ClassVar[str] = "get_peer_disputes"


@_register
@dataclass(frozen=True, slots=True)
class PeerDisputes(Message):
    TYPE: ClassVar[str] = "peer_disputes"
    disputes: tuple[PeerDispute, ...]


@_register
@dataclass(frozen=True, slots=True)
class PublishCapabilities(Message):
    """Discovery's timer: rebuild, sign and announce this node's capability record."""

    TYPE: ClassVar[str] = "publish_capabilities"


@_register
@dataclass(frozen=True, slots=True)
class CandidateSearchExpired(Message):
    """Discovery's timer: stop waiting for the DHT on behalf of query `tag`."""

    TYPE: ClassVar[str] = "candidate_search_expired"
    tag: str


@_register
@dataclass(frozen=True, slots=True)
class NegotiationDeadline(Message):
    """Negotiator's timer: remote job `job_id` has reached its deadline."""

    TYPE: ClassVar[str] = "negotiation_deadline"
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class RemoteJobSettled(Message):
    """Negotiator -> itself: the job it ran for `peer_id` finished; free its slot."""

    TYPE: ClassVar[str] = "remote_job_settled"
    peer_id: str
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class SweepRemoteJobs(Message):
    """Negotiator's timer: free the slots of remote jobs that ended without settling."""

    TYPE: ClassVar[str] = "sweep_remote_jobs"


@_register
@dataclass(frozen=True, slots=True)
class RecordFacts(Message):
    """Discovery -> itself: what its next capability record says (gathered without blocking)."""

    TYPE: ClassVar[str] = "record_facts"
    addresses: tuple[str, ...]
    free_slots: int


# --- the network actor -----------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class PeerRequest(Message):
    """-> network: one request/response exchange with `peer_id` on `protocol`."""

    TYPE: ClassVar[str] = "peer_request"
    peer_id: str
    protocol: str
    payload: bytes
    timeout_ms: int
    tag: str = ""  # echoed in the answer, so a non-blocking asker can match it


@_register
@dataclass(frozen=True, slots=True)
class PeerResponse(Message):
    TYPE: ClassVar[str] = "peer_response"
    peer_id: str
    payload: bytes
    tag: str = ""


@_register
@dataclass(frozen=True, slots=True)
class PeerFailure(Message):
    TYPE: ClassVar[str] = "peer_failure"
    peer_id: str
    reason: str
    message: str
    tag: str = ""

    def __post_init__(self) -> None:
        if self.reason not in PEER_FAILURES:
            raise ValueError(f"peer failure reason must be one of {sorted(PEER_FAILURES)}")


@_register
@dataclass(frozen=True, slots=True)
class FetchBlob(Message):
    """-> network: fetch blob `sha256` (`size` bytes) from `peer_id` over /plasm/blob/1.0.0.

    Answered `BlobFetched` (the bytes, checked against size and hash) or `BlobFetchFailed`;
    concurrent fetches of one sha256 share one transfer.
    """

    TYPE: ClassVar[str] = "fetch_blob"
    peer_id: str
    sha256: str
    size: int
    timeout_ms: int
    tag: str = ""


@_register
@dataclass(frozen=True, slots=True)
class BlobFetched(Message):
    TYPE: ClassVar[str] = "blob_fetched"
    peer_id: str
    sha256: str
    data: bytes
    tag: str = ""


@_register
@dataclass(frozen=True, slots=True)
class BlobFetchFailed(Message):
    """`reason`: a `PEER_FAILURES` code, or `hash_mismatch` / `oversize` / `out_of_order` /
    `short` (the bytes were not the blob promised), or `not_found` (the peer refused)."""

    TYPE: ClassVar[str] = "blob_fetch_failed"
    peer_id: str
    sha256: str
    reason: str
    message: str
    tag: str = ""


@_register
@dataclass(frozen=True, slots=True)
class InboundRequest(Message):
    """Network -> handler actor: `peer_id` (Noise-authenticated) sent `payload`."""

    TYPE: ClassVar[str] = "inbound_request"
    peer_id: str
    protocol: str
    payload: bytes


@_register
@dataclass(frozen=True, slots=True)
class PeerEvent(Message):
    """Network -> discovery: a peer was found, lost, connected, disconnected or rejected."""

    TYPE: ClassVar[str] = "peer_event"
    kind: str
    peer_id: str
    addresses: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PEER_EVENTS:
            raise ValueError(f"peer event kind must be one of {sorted(PEER_EVENTS)}")


@_register
@dataclass(frozen=True, slots=True)
class Dial(Message):
    """-> network: connect to a multiaddr ending in /p2p/<peer id>."""

    TYPE: ClassVar[str] = "dial"
    multiaddr: str


@_register
@dataclass(frozen=True, slots=True)
class Dialed(Message):
    TYPE: ClassVar[str] = "dialed"
    peer_id: str


@_register
@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE: ClassVar[str] = "ping"
    peer_id: str


@_register
@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    peer_id: str
    rtt_us: int


@_register
@dataclass(frozen=True, slots=True)
class Provide(Message):
    """-> network: announce in the DHT that this node provides `key`."""

    TYPE: ClassVar[str] = "provide"
    key: str


@_register
@dataclass(frozen=True, slots=True)
class FindProviders(Message):
    TYPE: ClassVar[str] = "find_providers"
    key: str
    limit: int
    timeout_ms: int


@_register
@dataclass(frozen=True, slots=True)
class ProviderInfo(Message):
    TYPE: ClassVar[str] = "provider_info"
    peer_id: str
    addresses: tuple[str, ...]


@_register
@dataclass(frozen=True, slots=True)
class Providers(Message):
    TYPE: ClassVar[str] = "providers"
    key: str
    providers: tuple[ProviderInfo, ...]


@_register
@dataclass(frozen=True, slots=True)
class PutRecord(Message):
    """-> network: store a value in the DHT (validated by namespace on every node)."""

    TYPE: ClassVar[str] = "put_record"
    key: str
    value: bytes


@_register
@dataclass(frozen=True, slots=True)
class GetRecord(Message):
    TYPE: ClassVar[str] = "get_record"
    key: str
    timeout_ms: int


@_register
@dataclass(frozen=True, slots=True)
class Record(Message):
    TYPE: ClassVar[str] = "record"
    key: str
    value: bytes | None


@_register
@dataclass(frozen=True, slots=True)
class GetNetworkInfo(Message):
    TYPE: ClassVar[str] = "get_network_info"


@_register
@dataclass(frozen=True, slots=True)
class ConnectedPeer(Message):
    TYPE: ClassVar[str] = "connected_peer"
    peer_id: str
    addresses: tuple[str, ...]


@_register
@dataclass(frozen=True, slots=True)
class NetworkInfo(Message):
    """The node's own addresses (full multiaddrs with /p2p/), reachability, connections."""

    TYPE: ClassVar[str] = "network_info"
    peer_id: str
    listen_addresses: tuple[str, ...]
    observed_addresses: tuple[str, ...]
    reachability: str  # "public", "private" or "unknown"
    connected: tuple[ConnectedPeer, ...]
    dht_requests_served: int = 0  # Kademlia requests from peers this node answered


@_register
@dataclass(frozen=True, slots=True)
class SignCapabilities(Message):
    """Discovery -> signer: sign this node's capability record."""

    TYPE: ClassVar[str] = "sign_capabilities"
    capabilities: bytes  # encode_message(Capabilities)


# --- verified reuse over the network (plasm.protocol.reuse) ----------------------------


@_register
@dataclass(frozen=True, slots=True)
class LookupMemo(Message):
    """Ingress -> negotiator: find a memo record of this job in the DHT; answered to
    `reply_to` as `MemoLookedUp`, a hit only once it verified against `description`."""

    TYPE: ClassVar[str] = "lookup_memo"
    job_id: str
    module_sha256: bytes
    input_sha256: bytes
    limits: Limits
    profile: str
    timeout_ms: int


@_register
@dataclass(frozen=True, slots=True)
class MemoRecordFetched(Message):
    """Negotiator -> itself: what the DHT answered for a job's memo key (unchecked)."""

    TYPE: ClassVar[str] = "memo_record_fetched"
    job_id: str
    record: bytes | None
    error: str | None


@_register
@dataclass(frozen=True, slots=True)
class MemoLookedUp(Message):
    """Negotiator -> ingress: the verified memo of a job (`envelope` set), or none."""

    TYPE: ClassVar[str] = "memo_looked_up"
    job_id: str
    envelope: bytes | None = None
    publisher: str | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    outputs: tuple[tuple[str, bytes], ...] = ()


@_register
@dataclass(frozen=True, slots=True)
class PublishMemo(Message):
    """Ingress -> negotiator: sign (by the signer) and put in the DHT a memo of this run."""

    TYPE: ClassVar[str] = "publish_memo"
    key: bytes
    envelope: bytes
    stdout: bytes
    stderr: bytes
    outputs: tuple[tuple[str, bytes], ...]


@_register
@dataclass(frozen=True, slots=True)
class SignMemo(Message):
    """-> signer: sign this memo payload (plasm.protocol.reuse.memo_payload)."""

    TYPE: ClassVar[str] = "sign_memo"
    payload: bytes


@_register
@dataclass(frozen=True, slots=True)
class SignedMemo(Message):
    TYPE: ClassVar[str] = "signed_memo"
    record: bytes


# --- the signer ------------------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class SignReceipt(Message):
    """-> signer: sign this receipt with the node key."""

    TYPE: ClassVar[str] = "sign_receipt"
    receipt: Receipt


@_register
@dataclass(frozen=True, slots=True)
class ReceiptSigned(Message):
    """Signer ->: the signed envelope (``plasm.protocol.receipt.verify_envelope`` reads it)."""

    TYPE: ClassVar[str] = "receipt_signed"
    envelope: bytes


# --- the receipt log (API -> journal) -----------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class GetLogHead(Message):
    TYPE: ClassVar[str] = "get_log_head"


@_register
@dataclass(frozen=True, slots=True)
class LogHead(Message):
    """The last signed tree head (size 0, the empty root and no COSE before the first)."""

    TYPE: ClassVar[str] = "log_head"
    size: int
    root: bytes
    cose: bytes | None


@_register
@dataclass(frozen=True, slots=True)
class GetLogPath(Message):
    """An RFC 9162 proof: ``inclusion`` of leaf ``first`` in the tree of ``second`` leaves,
    or ``consistency`` of the tree of ``first`` leaves with that of ``second``."""

    TYPE: ClassVar[str] = "get_log_path"
    kind: str
    first: int
    second: int

    def __post_init__(self) -> None:
        if self.kind not in ("inclusion", "consistency"):
            raise ValueError("a log path is an inclusion or a consistency proof")


@_register
@dataclass(frozen=True, slots=True)
class LogPath(Message):
    TYPE: ClassVar[str] = "log_path"
    path: tuple[bytes, ...]


@_register
@dataclass(frozen=True, slots=True)
class GetLogEntries(Message):
    TYPE: ClassVar[str] = "get_log_entries"
    start: int
    end: int


@_register
@dataclass(frozen=True, slots=True)
class LogEntries(Message):
    TYPE: ClassVar[str] = "log_entries"
    entries: tuple[bytes, ...]


@_register
@dataclass(frozen=True, slots=True)
class RetryJournalWrites(Message):
    """Journal -> itself (a timer): try again to record the jobs whose end it could not write."""

    TYPE: ClassVar[str] = "retry_journal_writes"


@_register
@dataclass(frozen=True, slots=True)
class CollectBlobs(Message):
    """Journal -> itself (a timer, and at start): delete blobs no journaled job names."""

    TYPE: ClassVar[str] = "collect_blobs"
