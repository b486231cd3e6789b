"""The requester side: run a job of ours on a peer (`RunRemote` -> `RemoteJobDone`).

One `RemoteJob` state machine (`plasm.protocol.negotiation`) per job in flight; this
controller carries out its actions (offers and job requests told to the network actor,
outcomes told to discovery) and feeds it the answers, the failures and the deadline.

A quorum job (placement `replicas`) is a `QuorumJob` tally (`plasm.protocol.quorum`) over
replicas: each replica is an ordinary `RemoteJob` of the same job (same id and nonce)
pinned to one peer, keyed `<job id>.<n>` in its tags. A replica that ends reports to its
quorum instead of the ingress; the quorum answers the ingress once, agreed or disputed,
and tells discovery which peers dissented from an agreed quorum (`receipt_disputed`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pykka

from plasm.actors._deferred import Timers
from plasm.actors._mailbox import JobTicket, LateRef, checked, tell
from plasm.actors.blob_grants import BlobGrants
from plasm.actors.messages import (
    DEFAULT_CANDIDATE_LIMIT,
    BlobFetched,
    BlobFetchFailed,
    CancelGraceOver,
    Candidates,
    FetchBlob,
    FindCandidates,
    HandlerFailed,
    NegotiationDeadline,
    PeerFailure,
    PeerLogHead,
    PeerRequest,
    PeerResponse,
    RecordPeerOutcome,
    RemoteJobDone,
    RemoteJobRunning,
    RunRemote,
)
from plasm.actors.negotiator._shared import ModuleLookup, NegotiatorError, log, now_ms
from plasm.protocol.blob_transfer import split_input
from plasm.protocol.errors import DecodeError
from plasm.protocol.messages import (
    ExecuteJob,
    JobResult,
    Message,
    decode_message,
    encode_message,
)
from plasm.protocol.negotiation import (
    Action,
    Attempt,
    Fail,
    RemoteJob,
    RemoteProtocolError,
    ReportPeer,
    SendJob,
    SendOffer,
    Succeed,
)
from plasm.protocol.p2p_messages import (
    PROTOCOL_CANCEL,
    PROTOCOL_JOB,
    PROTOCOL_NEGOTIATE,
    CancelRequest,
    Placement,
    Requirements,
)
from plasm.protocol.quorum import (
    Agreed,
    Disputed,
    Launch,
    NoReplicas,
    QuorumAction,
    QuorumJob,
    agreement_key,
)
from plasm.protocol.receipt import verify_envelope
from plasm.runtime.lru import BoundedLRU

if TYPE_CHECKING:
    from plasm.actors.discovery import DiscoveryActor
    from plasm.actors.ingress import IngressActor
    from plasm.actors.negotiator import NegotiatorActor

WARM_MODULES = 256
CANCEL_TIMEOUT_MS = 5_000  # a CancelRequest's exchange
CANCEL_GRACE_S = 10.0  # how long a cancelled job waits for its executor's cancelled result
CANCEL_TAG = "cancel:"  # the tags of CancelRequests (answers are only logged)
GRANT_SLACK_S = 60.0  # a job's parts stay fetchable this long past its deadline
FETCH_TAG = "out:"  # the tags of this side's FetchBlob requests (output files)


@dataclass(slots=True)
class _OutputFetch:
    """A result whose output files by reference are still coming from the executor."""

    tag: str
    peer_id: str
    result: JobResult
    missing: set[str]
    blobs: dict[str, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class _Requested:
    machine: RemoteJob
    placement: Placement
    ticket: JobTicket | None
    reply_to: pykka.ActorRef[IngressActor] | None
    granted: set[str] = field(default_factory=set)  # peers that may fetch its parts
    outputs: _OutputFetch | None = None
    quorum: str | None = None  # a replica of this quorum job: it reports there
    sent_to: str | None = None  # the peer the job request went to (it may be running it)
    cancelling: bool = False  # the client cancelled it; the executor was told


@dataclass(slots=True)
class _Quorum:
    """A quorum job: its tally, and the replicas running for it (key -> peer)."""

    job: ExecuteJob
    placement: Placement
    deadline_ms: int
    tally: QuorumJob
    ticket: JobTicket | None
    reply_to: pykka.ActorRef[IngressActor] | None
    running: dict[str, str] = field(default_factory=dict)
    results: dict[str, RemoteJobDone] = field(default_factory=dict)  # peer -> its result
    attempts: list[Attempt] = field(default_factory=list)
    told_running: bool = False  # the ingress knows replicas run


class Requester:
    """The remote jobs this node asked peers to run, each with its machine."""

    def __init__(
        self,
        actor: pykka.ActorRef[NegotiatorActor],
        peer_id: str,
        network: LateRef,
        discovery: pykka.ActorRef[DiscoveryActor],
        modules: ModuleLookup,
        timers: Timers,
        offer_timeout_ms: int,
        grants: BlobGrants | None = None,
    ) -> None:
        self._actor = actor
        self._grants = grants
        self._peer_id = peer_id
        self._network = network
        self._discovery = discovery
        self._modules = modules
        self._timers = timers
        self._offer_timeout_ms = offer_timeout_ms
        self._requested: dict[str, _Requested] = {}
        self._deadlines: list[tuple[int, str]] = []  # heap of (deadline ms, job id)
        self._deadline_armed_ms: int | None = None  # when the deadline timer fires
        self._warm: BoundedLRU[str, set[str]] = BoundedLRU(WARM_MODULES)  # module sha -> peers
        self._quorums: dict[str, _Quorum] = {}
        self._replica_keys = itertools.count(1)

    def stop(self) -> None:
        for job_id in list(self._quorums):
            run = self._quorums.pop(job_id)
            failed = RemoteJobDone.failed(
                job_id, "shutting_down", "the node is stopping", tuple(run.attempts)
            )
            _answer(failed, run.ticket, run.reply_to)
        for job_id in list(self._requested):
            self._finish_failed(job_id, "shutting_down", "the node is stopping")

    # -- supervision ----------------------------------------------------------------

    def ticket_for_tag(self, tag: str) -> JobTicket | None:
        """The job a tagged answer belongs to, if it is still in flight."""
        entry = self._entry_for_tag(tag) if tag else None
        if entry is not None and entry.quorum is not None:
            run = self._quorums.get(entry.quorum)
            return run.ticket if run is not None else None
        if entry is None and tag in self._quorums:
            return self._quorums[tag].ticket
        return entry.ticket if entry is not None else None

    def forget(self, job_id: str) -> None:
        """The job is over (ended by supervision), whatever its peers still answer."""
        self._requested.pop(job_id, None)
        run = self._quorums.pop(job_id, None)
        for key in run.running if run is not None else ():
            self._requested.pop(key, None)

    def handler_failed(self, failed: HandlerFailed) -> None:
        """An actor this side asked (discovery, the network) failed on a job's request."""
        if failed.tag in self._quorums:  # its candidate search
            run = self._quorums.pop(failed.tag)
            message = f"{failed.actor} failed while it held the job: {failed.message}"
            done = RemoteJobDone.failed(failed.tag, "internal_error", message)
            _answer(done, run.ticket, run.reply_to)
            return
        if self._entry_for_tag(failed.tag) is None:
            return
        job_id = failed.tag.partition("/")[0]
        self._finish_failed(
            job_id,
            "internal_error",
            f"{failed.actor} failed while it held the job: {failed.message}",
        )

    # -- the job's steps ------------------------------------------------------------

    def run_remote(
        self,
        request: RunRemote,
        done: JobTicket | None,
        reply_to: pykka.ActorRef[IngressActor] | None,
    ) -> None:
        job, placement = request.job, request.placement
        if placement.mode == "local":
            reason = "a job placed locally does not go through the negotiator"
            _answer(RemoteJobDone.failed(job.job_id, "invalid_placement", reason), done, reply_to)
            return
        if job.job_id in self._requested or job.job_id in self._quorums:
            raise NegotiatorError(f"remote job {job.job_id} is already being negotiated")
        if job.module is None:
            module = self._modules.get(job.module_sha256)
            if module is None:
                reason = f"module {job.module_sha256} is not stored on this node"
                failed = RemoteJobDone.failed(job.job_id, "module_unavailable", reason)
                _answer(failed, done, reply_to)
                return
            job = replace(job, module=module)
        if placement.is_quorum:
            self._start_quorum(job, placement, request.deadline_ms, done, reply_to,
                               seed=_seed_of(request))
            return
        machine = RemoteJob(
            job,
            request.deadline_ms,
            offer_timeout_ms=self._offer_timeout_ms,
            warm=frozenset(self._warm.peek(job.module_sha256) or ()),
        )
        self._requested[job.job_id] = _Requested(machine, placement, done, reply_to)
        heapq.heappush(self._deadlines, (request.deadline_ms, job.job_id))
        self._arm_deadline()
        if placement.mode == "peer":
            assert placement.peer_id is not None
            self._perform(job.job_id, machine.start((placement.peer_id,), now_ms()))
            return
        exclude = (self._peer_id,) if placement.exclude_self else ()
        find = FindCandidates(
            requirements=_fit_to_limits(placement.requirements, job),
            exclude=exclude,
            tag=job.job_id,
        )
        tell(self._discovery, find, reply_to=self._actor)

    def candidates(self, found: Candidates) -> None:
        run = self._quorums.get(found.tag)
        if run is not None:
            others = [p for p in found.peer_ids if p not in (self._peer_id, run.tally.seeded)]
            self._quorum_actions(found.tag, run.tally.start(others))
            return
        entry = self._requested.get(found.tag)
        if entry is None:
            return  # the job ended (deadline) before discovery answered
        peers = found.peer_ids
        if entry.placement.exclude_self:
            peers = tuple(p for p in peers if p != self._peer_id)
        self._perform(found.tag, entry.machine.start(peers, now_ms()))

    def peer_response(self, answer: PeerResponse) -> None:
        if answer.tag.startswith(CANCEL_TAG):
            log.info("job %s: %s answered the cancel", answer.tag.removeprefix(CANCEL_TAG),
                     answer.peer_id)
            return
        entry = self._entry_for_tag(answer.tag)
        if entry is None:
            return
        try:
            message = decode_message(answer.payload)
        except DecodeError as exc:
            detail = str(exc)
            self._feed(
                entry,
                lambda m: m.on_failure(answer.tag, answer.peer_id, "malformed", detail, now_ms()),
            )
            return
        if (
            isinstance(message, JobResult)
            and message.output_refs
            and answer.tag == entry.machine.current_tag
        ):
            self._fetch_outputs(entry, answer.tag, answer.peer_id, message)
            return
        self._feed(entry, lambda m: m.on_answer(answer.tag, answer.peer_id, message, now_ms()))

    def fetched(self, answer: BlobFetched | BlobFetchFailed) -> None:
        """An output file of a result arrived (or could not): feed the whole result."""
        tag = answer.tag[len(FETCH_TAG) :]
        entry = self._entry_for_tag(tag)
        fetch = entry.outputs if entry is not None else None
        if entry is None or fetch is None or fetch.tag != tag or answer.sha256 not in fetch.missing:
            return
        if isinstance(answer, BlobFetchFailed):
            entry.outputs = None
            reason, detail = f"outputs_{answer.reason}", answer.message
            self._feed(
                entry, lambda m: m.on_failure(tag, fetch.peer_id, reason, detail, now_ms())
            )
            return
        fetch.missing.discard(answer.sha256)
        fetch.blobs[answer.sha256] = answer.data
        if fetch.missing:
            return
        entry.outputs = None
        result = fetch.result
        files = result.output_files + tuple(
            (ref.path, fetch.blobs[ref.blob.sha256]) for ref in result.output_refs
        )
        whole = replace(result, output_files=tuple(sorted(files)), output_refs=())
        self._feed(entry, lambda m: m.on_answer(tag, fetch.peer_id, whole, now_ms()))

    def _fetch_outputs(self, entry: _Requested, tag: str, peer_id: str, result: JobResult) -> None:
        shas = {ref.blob.sha256: ref.blob.size for ref in result.output_refs}
        entry.outputs = _OutputFetch(tag, peer_id, result, set(shas))
        timeout = max(1, entry.machine.deadline_ms - now_ms())
        network = self._network.get() if self._network.is_set else None
        for sha, size in shas.items():
            fetch = FetchBlob(peer_id, sha, size, timeout, tag=FETCH_TAG + tag)
            try:
                if network is None:
                    raise RuntimeError("the network is not set")
                tell(network, fetch, reply_to=self._actor)
            except (RuntimeError, pykka.ActorDeadError) as exc:
                failed = BlobFetchFailed(peer_id, sha, "refused", str(exc), FETCH_TAG + tag)
                tell(self._actor, failed)

    def peer_failure(self, failure: PeerFailure) -> None:
        if failure.tag.startswith(CANCEL_TAG):
            log.info("job %s: the cancel did not reach %s: %s",
                     failure.tag.removeprefix(CANCEL_TAG), failure.peer_id, failure.message)
            return
        entry = self._entry_for_tag(failure.tag)
        if entry is None:
            return
        log.info(
            "peer %s failed job step %s: %s (%s)",
            failure.peer_id,
            failure.tag,
            failure.reason,
            failure.message,
        )
        self._feed(
            entry,
            lambda m: m.on_failure(
                failure.tag, failure.peer_id, failure.reason, failure.message, now_ms()
            ),
        )

    def deadline(self) -> None:
        """The deadline timer fired: fail every job whose deadline has passed, re-arm."""
        self._deadline_armed_ms = None
        now = now_ms()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id = heapq.heappop(self._deadlines)
            entry = self._requested.get(job_id)
            # a job id seen again later has its own, later entry: check the machine's
            if entry is not None and entry.machine.deadline_ms <= now:
                self._perform(job_id, entry.machine.on_deadline(now))
        self._arm_deadline()

    # -- internals ------------------------------------------------------------------

    def _arm_deadline(self) -> None:
        """Keep one timer set for the earliest deadline of a job still in flight."""
        while self._deadlines and self._deadlines[0][1] not in self._requested:
            heapq.heappop(self._deadlines)  # that job already ended
        if not self._deadlines:
            return
        first_ms, job_id = self._deadlines[0]
        if self._deadline_armed_ms is not None and self._deadline_armed_ms <= first_ms:
            return  # the timer fires first; it re-arms then
        self._deadline_armed_ms = first_ms
        delay_s = (first_ms - now_ms()) / 1000
        self._timers.after("deadline", delay_s, self._actor, NegotiationDeadline(job_id))

    def _entry_for_tag(self, tag: str) -> _Requested | None:
        return self._requested.get(tag.partition("/")[0])

    def _feed(self, entry: _Requested, step: Callable[[RemoteJob], list[Action]]) -> None:
        try:
            actions = step(entry.machine)
        except RemoteProtocolError as exc:
            log.warning("ignored an answer the negotiation does not allow: %s", exc)
            return
        self._perform(entry.machine.key, actions)

    def _perform(self, job_id: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendOffer):
                self._send(
                    action.peer_id, PROTOCOL_NEGOTIATE, action.offer, action.timeout_ms, action.tag
                )
            elif isinstance(action, SendJob):
                self._grant(job_id, action)
                self._sent(job_id, action.peer_id)
                log.info(
                    "sending job %s to %s (%s)",
                    job_id,
                    action.peer_id,
                    "with the module" if action.request.module is not None else "module cached",
                    extra={
                        "event": "job_sent",
                        "job_id": job_id,
                        "peer_id": action.peer_id,
                        "module_sent": action.request.module is not None,
                    },
                )
                self._send(
                    action.peer_id, PROTOCOL_JOB, action.request, action.timeout_ms, action.tag
                )
            elif isinstance(action, ReportPeer):
                tell(self._discovery, RecordPeerOutcome(action.peer_id, action.outcome))
            elif isinstance(action, Succeed):
                entry = self._requested[job_id]
                self._remember_warm(entry.machine.job.module_sha256, action.executor)
                log.info("remote job %s ran on %s", job_id, action.executor)
                if action.log is not None:  # its log must stay consistent: discovery checks
                    tell(self._discovery, PeerLogHead(action.executor, action.log.head))
                done = RemoteJobDone.succeeded(
                    job_id,
                    action.executor,
                    action.executed,
                    action.envelope,
                    action.attempts,
                    action.log,
                )
                self._finish(job_id, done)
            elif isinstance(action, Fail):
                log.info("remote job %s failed: %s", job_id, action.message)
                failed = RemoteJobDone.failed(job_id, action.code, action.message, action.attempts)
                self._finish(job_id, failed)

    def _sent(self, key: str, peer_id: str) -> None:
        """The job request went to ``peer_id``: the requesting node shows the job running
        there (a quorum job: running, once its first replica went out)."""
        entry = self._requested[key]
        entry.sent_to = peer_id
        if entry.quorum is None:
            if entry.reply_to is not None:
                tell(entry.reply_to, RemoteJobRunning(key, peer_id, now_ms()))
            return
        run = self._quorums.get(entry.quorum)
        if run is not None and not run.told_running and run.reply_to is not None:
            run.told_running = True
            tell(run.reply_to, RemoteJobRunning(entry.quorum, None, now_ms()))

    # -- cancelling -------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """The client cancelled ``job_id``. Sent to a peer: tell it (``CancelRequest``), and
        its cancelled result ends the job as any result does (or, if none comes within
        ``CANCEL_GRACE_S``, the job ends ``cancelled`` without one). Not sent yet, or a
        quorum job: it ends ``cancelled`` now, and every peer running a replica is told."""
        entry = self._requested.get(job_id)
        if entry is not None and entry.quorum is None:
            if entry.sent_to is None:
                self._finish_failed(job_id, "cancelled", "cancelled before a peer ran it")
                return
            if not entry.cancelling:
                entry.cancelling = True
                self._tell_cancel(entry.sent_to, job_id)
                self._timers.after(
                    f"cancel:{job_id}", CANCEL_GRACE_S, self._actor, CancelGraceOver(job_id)
                )
            return
        run = self._quorums.pop(job_id, None)
        if run is None:
            return  # it ended meanwhile
        for key in list(run.running):
            replica = self._requested.pop(key, None)
            if replica is None:
                continue
            self._revoke(key, replica)
            if replica.sent_to is not None:
                self._tell_cancel(replica.sent_to, job_id)
        done = RemoteJobDone.failed(
            job_id, "cancelled", "cancelled by the client", tuple(run.attempts)
        )
        _answer(done, run.ticket, run.reply_to)

    def cancel_grace_over(self, job_id: str) -> None:
        entry = self._requested.get(job_id)
        if entry is not None and entry.cancelling:
            self._finish_failed(
                job_id, "cancelled",
                f"cancelled; {entry.sent_to} did not send its result within {CANCEL_GRACE_S:g} s",
            )

    def _tell_cancel(self, peer_id: str, job_id: str) -> None:
        log.info("telling %s to cancel job %s", peer_id, job_id,
                 extra={"event": "remote_cancel_sent", "job_id": job_id, "peer_id": peer_id})
        # its answer (or failure) carries this tag, which no job has: it is only logged
        self._send(peer_id, PROTOCOL_CANCEL, CancelRequest(job_id), CANCEL_TIMEOUT_MS,
                   f"{CANCEL_TAG}{job_id}")

    def _send(
        self, peer_id: str, protocol: str, message: Message, timeout_ms: int, tag: str
    ) -> None:
        request = PeerRequest(
            peer_id=peer_id,
            protocol=protocol,
            payload=encode_message(message),
            timeout_ms=timeout_ms,
            tag=tag,
        )
        try:
            tell(self._network.get(), request, reply_to=self._actor)
        except (RuntimeError, pykka.ActorDeadError) as exc:
            # Answered as a message, never by recursion: the machine sees an ordinary failure.
            tell(
                self._actor,
                PeerFailure(
                    peer_id=peer_id,
                    reason="refused",
                    message=f"the network is not running: {exc}",
                    tag=tag,
                ),
            )

    def _grant(self, job_id: str, action: SendJob) -> None:
        """Let the peer fetch what the request names by reference (and the module)."""
        entry = self._requested.get(job_id)
        if self._grants is None or entry is None:
            return
        job = entry.machine.job
        _, blobs = split_input(job.job_input)
        blobs[job.module_sha256] = entry.machine.module
        ttl = max(0.0, (entry.machine.deadline_ms - now_ms()) / 1000) + GRANT_SLACK_S
        self._grants.grant(action.peer_id, job_id, blobs, ttl)
        entry.granted.add(action.peer_id)

    def _remember_warm(self, module_sha256: str, peer_id: str) -> None:
        self._warm.setdefault(module_sha256, set).add(peer_id)

    def _revoke(self, key: str, entry: _Requested) -> None:
        if self._grants is not None:
            for peer in entry.granted:
                self._grants.revoke(peer, key)

    def _finish(self, job_id: str, done: RemoteJobDone) -> None:
        entry = self._requested.pop(job_id)
        self._revoke(job_id, entry)
        if entry.cancelling:
            self._timers.cancel(f"cancel:{job_id}")
        if entry.quorum is not None:
            self._replica_done(entry.quorum, job_id, done)
            return
        _answer(done, entry.ticket, entry.reply_to)

    # -- quorum jobs ----------------------------------------------------------------

    def _start_quorum(
        self,
        job: ExecuteJob,
        placement: Placement,
        deadline_ms: int,
        done: JobTicket | None,
        reply_to: pykka.ActorRef[IngressActor] | None,
        seed: tuple[str, bytes] | None = None,
    ) -> None:
        assert placement.replicas is not None and placement.quorum is not None
        assert placement.max_replicas is not None
        tally = QuorumJob(placement.replicas, placement.quorum, placement.max_replicas)
        exclude: tuple[str, ...] = (self._peer_id,)  # this node is never one of the replicas
        if seed is not None:  # verified by the ingress; its executor is not asked again
            executor, envelope = seed
            tally.seed(executor, agreement_key(verify_envelope(envelope)), envelope)
            exclude += (executor,)
        self._quorums[job.job_id] = _Quorum(job, placement, deadline_ms, tally, done, reply_to)
        find = FindCandidates(
            requirements=_fit_to_limits(placement.requirements, job),
            exclude=exclude,
            limit=max(placement.max_replicas, DEFAULT_CANDIDATE_LIMIT),
            tag=job.job_id,
        )
        tell(self._discovery, find, reply_to=self._actor)

    def _launch_replica(self, job_id: str, peer_id: str) -> None:
        run = self._quorums[job_id]
        key = f"{job_id}.{next(self._replica_keys)}"
        machine = RemoteJob(
            run.job,
            run.deadline_ms,
            offer_timeout_ms=self._offer_timeout_ms,
            warm=frozenset(self._warm.peek(run.job.module_sha256) or ()),
            key=key,
        )
        self._requested[key] = _Requested(machine, run.placement, None, None, quorum=job_id)
        run.running[key] = peer_id
        heapq.heappush(self._deadlines, (run.deadline_ms, key))
        self._arm_deadline()
        log.info(
            "quorum job %s: replica %s on %s",
            job_id,
            key,
            peer_id,
            extra={"event": "replica_started", "job_id": job_id, "peer_id": peer_id},
        )
        self._perform(key, machine.start((peer_id,), now_ms()))

    def _replica_done(self, job_id: str, key: str, done: RemoteJobDone) -> None:
        run = self._quorums.get(job_id)
        if run is None or key not in run.running:
            return  # the quorum already ended
        peer = run.running.pop(key)
        run.attempts.extend(done.attempts)
        if done.envelope is not None and done.executed is not None and done.executor == peer:
            run.results[peer] = done
            # verified by the replica's machine; opened again for its body
            vote = agreement_key(verify_envelope(done.envelope))
            actions = run.tally.on_receipt(peer, vote, done.envelope)
        else:
            actions = run.tally.on_failed(peer)
        self._quorum_actions(job_id, actions)

    def _quorum_actions(self, job_id: str, actions: list[QuorumAction]) -> None:
        for action in actions:
            if isinstance(action, Launch):
                self._launch_replica(job_id, action.peer_id)
                continue
            run = self._quorums.pop(job_id)
            attempts = tuple(run.attempts)
            if isinstance(action, Agreed):
                chosen = run.results[action.chosen]
                assert chosen.executed is not None and chosen.envelope is not None
                for peer in action.outcome.dissenting:
                    if peer != self._peer_id:  # this node's own replica (include_self)
                        tell(self._discovery, RecordPeerOutcome(peer, "receipt_disputed"))
                log.info(
                    "quorum job %s agreed: %s; dissenting: %s",
                    job_id,
                    ", ".join(action.outcome.agreeing),
                    ", ".join(action.outcome.dissenting) or "none",
                    extra={"event": "quorum_agreed", "job_id": job_id},
                )
                answer = replace(
                    RemoteJobDone.succeeded(
                        job_id,
                        action.chosen,
                        chosen.executed,
                        chosen.envelope,
                        attempts,
                        chosen.log,
                    ),
                    quorum=action.outcome,
                )
            elif isinstance(action, Disputed):
                outcome = action.outcome
                message = (
                    f"no {outcome.quorum} of the {len(outcome.envelopes)} receipts agree "
                    f"(at most {len(outcome.agreeing)} do)"
                )
                log.info(
                    "quorum job %s disputed: %s",
                    job_id,
                    message,
                    extra={"event": "quorum_disputed", "job_id": job_id},
                )
                answer = replace(
                    RemoteJobDone.failed(job_id, "disputed", message, attempts), quorum=outcome
                )
            else:
                assert isinstance(action, NoReplicas)
                if attempts:
                    tried = "; ".join(f"{a.peer_id}: {a.result}" for a in attempts)
                    message = f"no peer ran a replica ({len(attempts)} attempt(s): {tried})"
                else:
                    message = "no peer ran a replica: no other peer that fits the job is known"
                answer = RemoteJobDone.failed(job_id, "no_executor", message, attempts)
            for key in run.running:  # replicas still in flight (the node is stopping)
                self._requested.pop(key, None)
            _answer(answer, run.ticket, run.reply_to)

    def _finish_failed(self, job_id: str, code: str, message: str) -> None:
        attempts = self._requested[job_id].machine.attempts
        self._finish(job_id, RemoteJobDone.failed(job_id, code, message, attempts))


def _answer(
    done: RemoteJobDone,
    ticket: JobTicket | None,
    reply_to: pykka.ActorRef[Any] | None,
) -> None:
    """Tell the ingress how the remote job ended (or, without one, complete its future)."""
    if reply_to is not None:
        try:
            tell(reply_to, done, job=ticket)
        except pykka.ActorDeadError:
            log.warning("remote job %s finished after its ingress stopped", done.job_id)
    elif ticket is not None:
        ticket.done.try_set(checked(done))


def _fit_to_limits(requirements: Requirements, job: ExecuteJob) -> Requirements:
    """The requirements a peer must meet to run `job` with its limits."""
    return replace(
        requirements,
        min_fuel=max(requirements.min_fuel, job.limits.fuel),
        min_memory_bytes=max(requirements.min_memory_bytes, job.limits.memory_bytes),
        min_timeout_ms=max(requirements.min_timeout_ms, job.limits.timeout_ms),
    )


def _seed_of(request: RunRemote) -> tuple[str, bytes] | None:
    if request.seed_executor is None or request.seed_envelope is None:
        return None
    return request.seed_executor, request.seed_envelope
