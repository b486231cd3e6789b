"""Negotiating a remote job: the requester's state machine and the executor's policy.

Theory of operation (requester). A `RemoteJob` is one job looking for a peer to run it.
It knows nothing of streams or actors: the caller feeds it events (the candidates
discovery found, each decoded answer or network failure, the deadline) and it answers
with *actions* to carry out (`SendOffer`, `SendJob`, `ReportPeer`, then exactly one of
`Succeed` / `Fail`). Its states:

    SELECTING --offer_sent--> OFFERING --accepted--> AWAITING_RESULT --result_ok--> DONE
        ^  |                     |                        |  ^
        |  +-------------------------direct_sent----------|--+
        +--rejected/peer_failed--+--rejected/peer_failed/result_bad/direct_declined
    SELECTING --no_more_candidates / deadline_passed--> FAILED  (and from every live state)

Direct requests: a peer known to hold the job's module already (it ran or accepted that
module before; the caller passes these as `warm`) is sent the `JobRequest` at once,
without a `JobOffer` first: one exchange instead of two. The executor takes such a
request only from a peer whose offer for that module it accepted and ran before
(`ExecutorState.known`), and judges it exactly as it would have judged the offer
(`admit_direct`: the same policy, token bucket, limits and slots); otherwise, or when
it no longer has the module, it answers `Error(no_offer)`: that is `direct_declined`,
and the same peer is offered the job the usual way next.

The table `TRANSITIONS[state][event type] -> state` is the whole machine; an event with
no entry raises `LocalProtocolError` when we caused it (an offer sent twice, a deadline
after the end) and `RemoteProtocolError` when the peer or the network did (an answer
after the job ended). Each request the machine asks for carries a tag
(`<job id>/<step>`); an answer with an older tag is stale and ignored, so a peer that
answers after the machine moved on cannot disturb it. A result is verified here (pure):
signature, key = the peer we asked = the receipt's executor, job id, nonce, requester,
limits, and the module, input, stdout and stderr hashes.

Theory of operation (executor). `evaluate_offer` decides on one `JobOffer` from the node's
`ExecutorPolicy` and an `ExecutorState` (per-peer token buckets, offers accepted and not yet
used, remote jobs running). An accepted offer holds a slot (counted against the offering
peer's cap) for `offer_hold_ms` only (plus the upload time of what it asked for, at 1
MiB/s: `hold_ms`); `ExecutorState.take` turns a matching `JobRequest`
(same peer, job id, module hash, limits, nonce, input size, and module size when bytes came)
into a running job (and remembers that peer and module: later requests of it may come
direct), and `settle` frees the slot when the job ends. An offer whose hold passes without
its job is dropped, and its peer earns a strike: its offers (and direct requests) are
declined `rate_limited` for `offer_hold_ms * 2**(strikes - 1)` from the expiry (at most
`MAX_PENALTY_MS`), so a peer that offers and never sends cannot keep the slots from others.
Strikes are forgotten `STRIKE_MEMORY_MS` after the last penalty ends.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from plasm.protocol.blob_transfer import INLINE_MAX, split_input
from plasm.protocol.errors import ProtocolError, ReceiptError
from plasm.protocol.messages import (
    Error,
    ExecuteJob,
    JobExecuted,
    JobOffer,
    JobRequest,
    JobResponse,
    JobResult,
    Message,
)
from plasm.protocol.receipt import Receipt, verify_envelope
from plasm.protocol.transparency import LogError, LogProof, verify_log_proof
from plasm.runtime.job import JobInput, Limits, Outcome
from plasm.runtime.lru import BoundedLRU

OFFER_RUNTIME = "wasi-preview1"  # what every version-1 JobOffer asks for
OFFER_TIMEOUT_MS = 5_000
OFFER_HOLD_MS = 2_000
MAX_PENALTY_MS = 300_000
UPLOAD_BYTES_PER_S = 2**20  # the slowest link an offer's hold allows for
STRIKE_MEMORY_MS = 600_000
_MS_PER_MINUTE = 60_000
KNOWN_PAIRS = 4096  # (peer, module) pairs an executor remembers for direct requests


@dataclass(frozen=True, slots=True)
class Attempt:
    """One candidate tried for a remote job, and why it did not (or did) run it."""

    peer_id: str
    result: str  # "ran", a JobResponse reason code, or a PeerFailure/receipt reason


class NegotiationError(ProtocolError):
    """Base of the errors of the negotiation state machine and policy."""


class LocalProtocolError(NegotiationError):
    """This node drove the machine wrong (a bug here, not the peer's fault)."""


class RemoteProtocolError(NegotiationError):
    """The peer (or the network on its behalf) sent something the state does not allow."""


class OfferMismatchError(RemoteProtocolError):
    """A `JobRequest` that no accepted, unexpired offer of the same peer covers.

    `code` is the `Error.code` to answer: `no_offer`, `offer_mismatch`, `module_mismatch`.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def job_input_size(job_input: JobInput) -> int:
    """The size a `JobOffer` announces: stdin, args and env bytes (UTF-8)."""
    return (
        len(job_input.stdin)
        + sum(len(arg.encode()) for arg in job_input.args)
        + sum(len(key.encode()) + len(value.encode()) for key, value in job_input.env)
    )


def files_size(job_input: JobInput) -> int:
    """The total bytes of a `JobInput`'s files: what a `JobOffer` announces as `files_size`."""
    return sum(len(data) for _, data in job_input.files)


def largest_blob(job_input: JobInput) -> int:
    """The biggest single part of the input (stdin or one file)."""
    return max([len(job_input.stdin), *(len(data) for _, data in job_input.files)])


def request_sizes(request: JobRequest) -> tuple[int, int]:
    """(input size, files size) of a `JobRequest`, counting what it carries by reference."""
    inline = request.job_input
    stdin = request.stdin_ref.size if request.stdin_ref is not None else 0
    files = files_size(inline) + sum(ref.blob.size for ref in request.file_refs)
    return job_input_size(inline) + stdin, files


# --- requester: states, events, actions ---------------------------------------------------


class State(StrEnum):
    SELECTING = "selecting"
    OFFERING = "offering"
    AWAITING_RESULT = "awaiting_result"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Event:
    REMOTE: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class OfferSent(Event):
    peer_id: str


@dataclass(frozen=True, slots=True)
class DirectSent(Event):
    peer_id: str


@dataclass(frozen=True, slots=True)
class DirectDeclined(Event):
    REMOTE: ClassVar[bool] = True
    reason: str


@dataclass(frozen=True, slots=True)
class NoMoreCandidates(Event):
    pass


@dataclass(frozen=True, slots=True)
class DeadlinePassed(Event):
    pass


@dataclass(frozen=True, slots=True)
class Accepted(Event):
    REMOTE: ClassVar[bool] = True
    need_module: bool


@dataclass(frozen=True, slots=True)
class Rejected(Event):
    REMOTE: ClassVar[bool] = True
    reason: str


@dataclass(frozen=True, slots=True)
class PeerFailed(Event):
    REMOTE: ClassVar[bool] = True
    reason: str


@dataclass(frozen=True, slots=True)
class ResultOk(Event):
    REMOTE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class ResultBad(Event):
    REMOTE: ClassVar[bool] = True
    reason: str


TRANSITIONS: dict[State, dict[type[Event], State]] = {
    State.SELECTING: {
        OfferSent: State.OFFERING,
        DirectSent: State.AWAITING_RESULT,
        NoMoreCandidates: State.FAILED,
        DeadlinePassed: State.FAILED,
    },
    State.OFFERING: {
        Accepted: State.AWAITING_RESULT,
        Rejected: State.SELECTING,
        PeerFailed: State.SELECTING,
        DeadlinePassed: State.FAILED,
    },
    State.AWAITING_RESULT: {
        ResultOk: State.DONE,
        ResultBad: State.SELECTING,
        Rejected: State.SELECTING,  # an `Error` answer to the JobRequest
        DirectDeclined: State.SELECTING,  # a direct JobRequest answered `no_offer`
        PeerFailed: State.SELECTING,
        DeadlinePassed: State.FAILED,
    },
    State.DONE: {},
    State.FAILED: {},
}


@dataclass(frozen=True, slots=True)
class SendOffer:
    peer_id: str
    tag: str
    offer: JobOffer
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class SendJob:
    peer_id: str
    tag: str
    request: JobRequest
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class ReportPeer:
    """Tell discovery how `peer_id` behaved (`ran`, `receipt_rejected`, `failed`)."""

    peer_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class Succeed:
    executor: str
    executed: JobExecuted
    envelope: bytes
    attempts: tuple[Attempt, ...]
    log: LogProof | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    code: str  # "no_executor" or "deadline_exceeded"
    message: str
    attempts: tuple[Attempt, ...]


Action = SendOffer | SendJob | ReportPeer | Succeed | Fail

# The answers to a direct JobRequest that mean "offer it first": the requester then
# offers the job to the same peer.
DIRECT_DECLINED_CODES = frozenset({"no_offer", "module_unavailable"})


class RemoteJob:
    """The requester side of one remote job (see the module's theory of operation)."""

    def __init__(
        self,
        job: ExecuteJob,
        deadline_ms: int,
        *,
        offer_timeout_ms: int = OFFER_TIMEOUT_MS,
        warm: frozenset[str] = frozenset(),
        key: str | None = None,
    ) -> None:
        """`key` names the machine in its tags (`<key>/<step>`): the job id unless one job
        runs on several peers at once (a quorum job's replicas)."""
        if job.module is None:
            raise LocalProtocolError(
                f"job {job.job_id} has no module bytes; resolve them before negotiating"
            )
        self.job = job
        self.key = key or job.job_id
        self.module: bytes = job.module
        self.deadline_ms = deadline_ms
        self.offer_timeout_ms = offer_timeout_ms
        self.state = State.SELECTING
        self._candidates: list[str] = []
        self._next_index = 0
        self._started = False
        self._step = 0
        self._peer: str | None = None
        self._attempts: list[Attempt] = []
        self._warm = set(warm)  # peers to send the JobRequest without an offer
        self._direct = False  # the request in flight is a direct JobRequest

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return tuple(self._attempts)

    @property
    def current_tag(self) -> str:
        return f"{self.key}/{self._step}"

    @property
    def finished(self) -> bool:
        return self.state in (State.DONE, State.FAILED)

    # -- events in -----------------------------------------------------------------

    def start(self, candidates: tuple[str, ...] | list[str], now_ms: int) -> list[Action]:
        """Begin with these candidates, best first (duplicates dropped)."""
        if self._started:
            raise LocalProtocolError(f"remote job {self.job.job_id} was already started")
        self._started = True
        self._candidates = list(dict.fromkeys(candidates))
        return self._select(now_ms)

    def on_answer(self, tag: str, peer_id: str, message: Message, now_ms: int) -> list[Action]:
        """A decoded answer from `peer_id` to the request tagged `tag`."""
        if not self._is_current(tag, peer_id):
            return []
        receipt: Receipt | None = None
        event: Event
        if isinstance(message, JobResponse) and message.job_id == self.job.job_id:
            event = (
                Accepted(message.need_module)
                if message.accepted
                else Rejected(message.reason or "")
            )
        elif isinstance(message, JobResult) and message.job_id == self.job.job_id:
            try:
                receipt = verify_result(self.job, peer_id, message)
                event = ResultOk()
            except ReceiptError as exc:
                event = ResultBad(f"receipt_{exc.reason}")
        elif (
            isinstance(message, Error)
            and self._direct
            and message.code in DIRECT_DECLINED_CODES
        ):
            event = DirectDeclined(message.code)
        elif isinstance(message, Error):
            event = Rejected(message.code)
        else:
            event = PeerFailed("malformed")
        if not self.finished and type(event) not in TRANSITIONS[self.state]:
            event = PeerFailed("malformed")  # e.g. a JobResult to an offer: the peer is broken
        if isinstance(event, Accepted):
            self._apply(event)
            return [self._send_job(peer_id, event.need_module, now_ms)]
        if isinstance(event, ResultOk):
            assert isinstance(message, JobResult) and receipt is not None
            return self._succeed(peer_id, message, receipt)
        if isinstance(event, ResultBad):
            actions: list[Action] = [ReportPeer(peer_id, "receipt_rejected")]
            return actions + self._next_after(event, peer_id, event.reason, now_ms)
        if isinstance(event, PeerFailed):
            return self.on_failure(tag, peer_id, event.reason, type(message).__name__, now_ms)
        if isinstance(event, DirectDeclined):
            self._apply(event)
            self._warm.discard(peer_id)
            self._next_index -= 1  # the same peer again, with an offer this time
            self._peer = None
            return self._select(now_ms)
        assert isinstance(event, Rejected)
        return self._next_after(event, peer_id, event.reason, now_ms)

    def on_failure(
        self, tag: str, peer_id: str, reason: str, detail: str, now_ms: int
    ) -> list[Action]:
        """The network could not complete the request tagged `tag` (`PeerFailure.reason`)."""
        if not self._is_current(tag, peer_id):
            return []
        del detail  # for the caller's log; the attempt records the reason code
        actions: list[Action] = [ReportPeer(peer_id, "failed")]
        return actions + self._next_after(PeerFailed(reason), peer_id, reason, now_ms)

    def on_deadline(self, now_ms: int) -> list[Action]:
        del now_ms
        if self._peer is not None and self.state in (State.OFFERING, State.AWAITING_RESULT):
            self._attempts.append(Attempt(peer_id=self._peer, result="deadline"))
        self._apply(DeadlinePassed())
        return [self._fail("deadline_exceeded", "the job's deadline passed")]

    # -- internals ----------------------------------------------------------------

    def _apply(self, event: Event) -> None:
        target = TRANSITIONS[self.state].get(type(event))
        if target is None:
            error = RemoteProtocolError if event.REMOTE else LocalProtocolError
            raise error(
                f"remote job {self.job.job_id}: event {type(event).__name__} is not allowed "
                f"in state {self.state.name}"
            )
        self.state = target

    def _is_current(self, tag: str, peer_id: str) -> bool:
        if tag != self.current_tag:
            return False  # an answer to a request the machine has moved past
        if self._peer is not None and peer_id != self._peer:
            raise RemoteProtocolError(
                f"remote job {self.job.job_id}: answer tagged {tag} came from {peer_id}, "
                f"but the request went to {self._peer}"
            )
        return True

    def _select(self, now_ms: int) -> list[Action]:
        if now_ms >= self.deadline_ms:
            self._apply(DeadlinePassed())
            return [self._fail("deadline_exceeded", "the job's deadline passed")]
        if self._next_index >= len(self._candidates):
            self._apply(NoMoreCandidates())
            return [self._fail("no_executor", "no peer ran the job")]
        peer = self._candidates[self._next_index]
        self._next_index += 1
        self._peer = peer
        self._direct = peer in self._warm
        if self._direct:
            self._apply(DirectSent(peer))
            return [self._send_job(peer, False, now_ms)]
        self._apply(OfferSent(peer))
        self._step += 1
        job = self.job
        offer = JobOffer(
            job_id=job.job_id,
            module_sha256=job.module_sha256,
            module_size=len(self.module),
            limits=job.limits,
            input_size=job_input_size(job.job_input),
            files_size=files_size(job.job_input),
            largest_blob=largest_blob(job.job_input),
            deadline_ms=self.deadline_ms,
            nonce=job.nonce,
        )
        timeout = min(self.offer_timeout_ms, self.deadline_ms - now_ms)
        return [SendOffer(peer, self.current_tag, offer, timeout)]

    def _send_job(self, peer: str, need_module: bool, now_ms: int) -> SendJob:
        self._step += 1
        job = self.job
        split, _ = split_input(job.job_input)
        inline_module = need_module and len(self.module) <= INLINE_MAX
        request = JobRequest(
            job_id=job.job_id,
            module=self.module if inline_module else None,
            module_sha256=job.module_sha256,
            module_size=len(self.module),
            job_input=split.inline,
            stdin_ref=split.stdin,
            file_refs=split.files,
            limits=job.limits,
            nonce=job.nonce,
        )
        return SendJob(peer, self.current_tag, request, max(1, self.deadline_ms - now_ms))

    def _next_after(self, event: Event, peer: str, result: str, now_ms: int) -> list[Action]:
        self._apply(event)
        self._attempts.append(Attempt(peer_id=peer, result=result))
        self._peer = None
        return self._select(now_ms)

    def _succeed(self, peer: str, result: JobResult, receipt: Receipt) -> list[Action]:
        self._apply(ResultOk())
        self._attempts.append(Attempt(peer_id=peer, result="ran"))
        executed = executed_from_receipt(
            self.job, receipt, result.stdout, result.stderr, result.output_files
        )
        return [
            ReportPeer(peer, "ran"),
            Succeed(peer, executed, result.envelope, self.attempts, result.log),
        ]

    def _fail(self, code: str, summary: str) -> Fail:
        if self._attempts:
            tried = "; ".join(f"{a.peer_id}: {a.result}" for a in self._attempts)
            message = f"{summary} ({len(self._attempts)} attempt(s): {tried})"
        else:
            message = f"{summary}: no peer that fits the job's requirements is known"
        return Fail(code, message, self.attempts)


def verify_result(job: ExecuteJob, peer_id: str, result: JobResult) -> Receipt:
    """The receipt of `result` if it proves `peer_id` ran exactly `job`; `ReceiptError` if not."""
    receipt = verify_envelope(
        result.envelope,
        expected_executor=peer_id,
        expected_nonce=job.nonce,
        expected_job_id=job.job_id,
        expected_module_sha256=job.module_sha256,
        job_input=job.job_input,
        stdout=result.stdout,
        stderr=result.stderr,
        outputs=result.output_files,
    )
    if result.output_refs:
        raise ReceiptError("hash_mismatch", "the result's output files were not all fetched")
    if result.log is not None:
        try:
            verify_log_proof(result.envelope, result.log, peer_id)
        except LogError as exc:
            raise ReceiptError("log_invalid", str(exc)) from exc
    if receipt.requester != job.requester:
        raise ReceiptError("requester_mismatch", f"the receipt names requester {receipt.requester}")
    if receipt.limits != job.limits:
        raise ReceiptError("limits_mismatch", "the receipt's limits are not the ones offered")
    return receipt


def executed_from_receipt(
    job: ExecuteJob,
    receipt: Receipt,
    stdout: bytes,
    stderr: bytes,
    output_files: tuple[tuple[str, bytes], ...] = (),
) -> JobExecuted:
    """The `JobExecuted` a local run would have given, rebuilt from a verified receipt."""
    outcome = Outcome(
        kind=receipt.outcome,
        exit_code=receipt.exit_code,
        message=receipt.message,
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=receipt.stdout_truncated,
        stderr_truncated=receipt.stderr_truncated,
        fuel_consumed=receipt.fuel_consumed,
        wall_time_us=receipt.wall_time_us,
        started_at_ms=receipt.started_at_ms,
        finished_at_ms=receipt.finished_at_ms,
        output_files=tuple(sorted(output_files)),
        outputs_truncated=receipt.outputs_truncated,
    )
    return JobExecuted.of(job, outcome)


# --- executor: policy and bookkeeping ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecutorPolicy:
    """What this node accepts from requesters.

    `allow` None admits every peer not in `deny` (the default: an open node); a set
    admits only those peers. `slots` bounds the remote jobs reserved or running at once.
    `rate_limit_per_minute` None disables the per-peer token bucket. `offer_hold_ms` is how
    long an accepted offer holds its slot waiting for the job (and the base of the penalty
    for letting it lapse).
    """

    max_limits: Limits
    slots: int = 1
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    max_jobs_per_peer: int = 2
    rate_limit_per_minute: int | None = 120
    max_module_bytes: int = 256 * 2**20
    max_blob_bytes: int = 256 * 2**20  # one input part (stdin or a file) fetched by reference
    runtimes: tuple[str, ...] = (OFFER_RUNTIME,)
    offer_hold_ms: int = OFFER_HOLD_MS

    def admits(self, peer_id: str) -> bool:
        """Whether `peer_id` may be served at all: not denied, and allowed if a list is set."""
        return peer_id not in self.deny and (self.allow is None or peer_id in self.allow)


@dataclass(slots=True)
class _Bucket:
    units: int  # tokens * 60_000, so refills stay integers
    updated_ms: int


@dataclass(slots=True)
class _Strikes:
    count: int
    until_ms: int  # offers from the peer are declined until then


@dataclass(frozen=True, slots=True)
class AcceptedOffer:
    peer_id: str
    offer: JobOffer
    expires_at_ms: int


@dataclass(slots=True)
class ExecutorState:
    """The executor's mutable bookkeeping; only `evaluate_offer` and its methods touch it."""

    buckets: dict[str, _Bucket] = field(default_factory=dict)
    pending: dict[tuple[str, str], AcceptedOffer] = field(default_factory=dict)
    strikes: dict[str, _Strikes] = field(default_factory=dict)  # peers whose offers lapsed
    running: set[tuple[str, str]] = field(default_factory=set)
    # (peer, module sha256) of offers taken: that peer may send that module's jobs direct
    known: BoundedLRU[tuple[str, str], None] = field(
        default_factory=lambda: BoundedLRU(KNOWN_PAIRS)
    )

    def remember(self, peer_id: str, module_sha256: str) -> None:
        self.known.put((peer_id, module_sha256), None)

    def reserved(self) -> int:
        return len(self.pending) + len(self.running)

    def reserved_by(self, peer_id: str) -> int:
        pending = sum(1 for peer, _ in self.pending if peer == peer_id)
        return pending + sum(1 for peer, _ in self.running if peer == peer_id)

    def expire(self, now_ms: int, penalty_ms: int = OFFER_HOLD_MS) -> None:
        """Drop accepted offers that were never used (a strike for their peer each), and
        buckets idle for a minute, and strikes long past."""
        lapsed = sorted(
            (a.expires_at_ms, k) for k, a in self.pending.items() if a.expires_at_ms <= now_ms
        )
        for expired_at_ms, key in lapsed:
            del self.pending[key]
            self._strike(key[0], expired_at_ms, penalty_ms)
        for peer in [p for p, s in self.strikes.items() if now_ms - s.until_ms > STRIKE_MEMORY_MS]:
            del self.strikes[peer]
        for peer in [p for p, b in self.buckets.items() if now_ms - b.updated_ms > _MS_PER_MINUTE]:
            del self.buckets[peer]

    def _strike(self, peer_id: str, at_ms: int, penalty_ms: int) -> None:
        strikes = self.strikes.setdefault(peer_id, _Strikes(0, at_ms))
        strikes.count += 1
        penalty = min(penalty_ms << min(strikes.count - 1, 30), MAX_PENALTY_MS)
        strikes.until_ms = max(strikes.until_ms, at_ms + penalty)

    def penalized(self, peer_id: str, now_ms: int) -> bool:
        """Whether `peer_id` let offers lapse recently enough that its offers are declined."""
        strikes = self.strikes.get(peer_id)
        return strikes is not None and now_ms < strikes.until_ms

    def take(
        self, peer_id: str, request: JobRequest, now_ms: int, penalty_ms: int = OFFER_HOLD_MS
    ) -> JobOffer:
        """Consume the accepted offer `request` answers; `OfferMismatchError` if none does."""
        self.expire(now_ms, penalty_ms)
        key = (peer_id, request.job_id)
        accepted = self.pending.pop(key, None)
        if accepted is None:
            raise OfferMismatchError(
                "no_offer",
                f"no accepted offer for job {request.job_id} from {peer_id} (or it expired); "
                "send a JobOffer first",
            )
        offer = accepted.offer
        if (
            request.module_sha256 != offer.module_sha256
            or request.limits != offer.limits
            or request.nonce != offer.nonce
            or (request.module_size or offer.module_size) != offer.module_size
            or request_sizes(request) != (offer.input_size, offer.files_size)
        ):
            raise OfferMismatchError(
                "offer_mismatch", f"job {request.job_id} differs from the offer that was accepted"
            )
        if request.module is not None and (
            len(request.module) != offer.module_size
            or hashlib.sha256(request.module).hexdigest() != offer.module_sha256
        ):
            raise OfferMismatchError(
                "module_mismatch",
                f"the module bytes sent for job {request.job_id} do not hash to module_sha256",
            )
        self.running.add(key)
        self.remember(peer_id, offer.module_sha256)
        return offer

    def settle(self, peer_id: str, job_id: str) -> bool:
        """The job ended (or was refused after `take`): free its slot."""
        key = (peer_id, job_id)
        if key in self.running:
            self.running.discard(key)
            return True
        return False


def evaluate_offer(
    offer: JobOffer,
    peer_id: str,
    now_ms: int,
    policy: ExecutorPolicy,
    state: ExecutorState,
    *,
    have_module: bool = False,
) -> JobResponse:
    """Accept `offer` from `peer_id` (reserving a slot) or say why not."""
    state.expire(now_ms, policy.offer_hold_ms)
    reason = _rejection(offer, peer_id, now_ms, policy, state)
    if reason is not None:
        return JobResponse(job_id=offer.job_id, accepted=False, reason=reason, need_module=False)
    state.pending[(peer_id, offer.job_id)] = AcceptedOffer(
        peer_id, offer, now_ms + hold_ms(offer, policy, have_module=have_module)
    )
    return JobResponse(job_id=offer.job_id, accepted=True, reason=None, need_module=not have_module)


def hold_ms(offer: JobOffer, policy: ExecutorPolicy, *, have_module: bool) -> int:
    """How long an accepted `offer` holds its slot: `offer_hold_ms`, plus the time its
    `JobRequest` takes to arrive at `UPLOAD_BYTES_PER_S` (input, and module bytes when
    this node asked for them), so a large job on a slow link is not struck for lapsing."""
    upload = offer.input_size + offer.files_size + (0 if have_module else offer.module_size)
    return policy.offer_hold_ms + upload * 1000 // UPLOAD_BYTES_PER_S


def admit_direct(
    request: JobRequest,
    peer_id: str,
    module_size: int,
    now_ms: int,
    policy: ExecutorPolicy,
    state: ExecutorState,
) -> str | None:
    """Take a `JobRequest` that came without an offer, for a module stored here.

    Only a peer whose offer for that module was taken before may skip the offer (else
    `no_offer`). It is judged as the offer it stands for would have been (same policy,
    token, limits, slots) and, if accepted, counts as running at once. Returns None when
    accepted, else the rejection reason; a job id already reserved or running from that
    peer is `offer_mismatch` (the request must answer that offer, or repeats a job).
    """
    state.expire(now_ms, policy.offer_hold_ms)
    if (peer_id, request.module_sha256) not in state.known:
        return "no_offer"
    key = (peer_id, request.job_id)
    if key in state.pending or key in state.running:
        return "offer_mismatch"
    offer = JobOffer(
        job_id=request.job_id,
        module_sha256=request.module_sha256,
        module_size=module_size,
        limits=request.limits,
        input_size=request_sizes(request)[0],
        files_size=request_sizes(request)[1],
        largest_blob=max(
            [
                request.stdin_ref.size if request.stdin_ref is not None else 0,
                *(ref.blob.size for ref in request.file_refs),
            ]
        ),
        deadline_ms=now_ms + policy.offer_hold_ms,
        nonce=request.nonce,
    )
    reason = _rejection(offer, peer_id, now_ms, policy, state)
    if reason is None:
        state.running.add(key)
    return reason


def _rejection(
    offer: JobOffer, peer_id: str, now_ms: int, policy: ExecutorPolicy, state: ExecutorState
) -> str | None:
    if not policy.admits(peer_id):
        return "not_allowed"
    if state.penalized(peer_id, now_ms):
        return "rate_limited"  # its accepted offers lapsed unused: see `ExecutorState.expire`
    if not _take_token(peer_id, now_ms, policy, state):
        return "rate_limited"  # checked before the rest: every offer spends a token
    if OFFER_RUNTIME not in policy.runtimes:
        return "unsupported_runtime"
    if offer.limits.exceeds(policy.max_limits) is not None:
        return "limits_exceeded"
    if offer.module_size > policy.max_module_bytes:
        return "module_too_large"
    if offer.files_size > offer.limits.max_input_files_bytes:
        return "limits_exceeded"
    if offer.largest_blob > policy.max_blob_bytes:
        return "input_too_large"
    repeat = (peer_id, offer.job_id) in state.pending  # a re-offer keeps its reservation
    if not repeat and state.reserved_by(peer_id) >= policy.max_jobs_per_peer:
        return "rate_limited"
    if not repeat and state.reserved() >= policy.slots:
        return "busy"
    return None


def _take_token(peer_id: str, now_ms: int, policy: ExecutorPolicy, state: ExecutorState) -> bool:
    rate = policy.rate_limit_per_minute
    if rate is None:
        return True
    capacity = rate * _MS_PER_MINUTE
    bucket = state.buckets.get(peer_id)
    if bucket is None:
        bucket = state.buckets[peer_id] = _Bucket(units=capacity, updated_ms=now_ms)
    elapsed = max(0, now_ms - bucket.updated_ms)
    bucket.units = min(capacity, bucket.units + elapsed * rate)
    bucket.updated_ms = now_ms
    if bucket.units < _MS_PER_MINUTE:
        return False
    bucket.units -= _MS_PER_MINUTE
    return True
