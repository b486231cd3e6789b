"""The negotiator: both sides of running a job on another node.

Theory of operation. Requester side: the ingress tells `RunRemote` (with the job's
`done` future and `reply_to` = the ingress). The negotiator makes a `RemoteJob` state
machine (`plasm.protocol.negotiation`), gets candidates (the named peer, or
`FindCandidates` from discovery, answered as a told `Candidates`), and carries out the
machine's actions: each request to a peer is a `PeerRequest` told to the network actor
with `reply_to` = this actor and the machine's tag, so the answer comes back as a
`PeerResponse` / `PeerFailure` message and this thread never waits on the network. A
timer tells `NegotiationDeadline` when the earliest deadline of the jobs in flight passes
(one timer, re-armed for the next deadline: a timer is a thread, not one per job). The
verified result (or the reason there is none, with every attempt) goes to `reply_to` as
`RemoteJobDone`.
Peers that ran a module for us are remembered per module hash (`WARM_MODULES` hashes at
most): the machine sends them the next job of that module directly, without an offer.

Executor side: the network hands inbound streams over as `InboundRequest`s. An offer is
judged by `evaluate_offer` against the node's `ExecutorPolicy`; a job request must match
an accepted offer, or come without module bytes for a module stored here and pass
`admit_direct` (the same policy, as if it had been offered), then goes to the ingress
as `SubmitJob` (job id, requester, nonce of the requester, placement local) and the
handler returns a future that resolves to the
`PeerResponse(JobResult)` once the job's `done` future completes; the network actor
waits on it, this actor does not. Free slots are this actor's own count: offers
accepted and not yet used plus remote jobs it submitted and that have not finished
(`ExecutorPolicy.slots` of them at most); local jobs are bounded by the ingress queue,
and a submission the ingress refuses is answered with an `Error` (`busy`, ...).
"""

from __future__ import annotations

import base64
import heapq
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import pykka

from plasm.actors._deferred import Timers, tell_quietly
from plasm.actors._future import Future
from plasm.actors._mailbox import Delivery, JobTicket, LateRef, PlasmActor, ask, checked, tell
from plasm.actors.errors import (
    ActorLayerError,
    wire_code,
)
from plasm.protocol.discovery_messages import (
    Candidates,
    FindCandidates,
    NegotiationDeadline,
    RecordPeerOutcome,
    RemoteJobSettled,
)
from plasm.protocol.errors import DecodeError
from plasm.protocol.messages import (
    Error,
    ExecuteJob,
    JobOffer,
    JobRequest,
    JobResult,
    Message,
    ModuleData,
    ModuleRequest,
    decode_message,
    encode_message,
)
from plasm.protocol.negotiation import (
    OFFER_TIMEOUT_MS,
    Action,
    ExecutorPolicy,
    ExecutorState,
    Fail,
    OfferMismatchError,
    RemoteJob,
    RemoteProtocolError,
    ReportPeer,
    SendJob,
    SendOffer,
    Succeed,
    admit_direct,
    evaluate_offer,
)
from plasm.protocol.node_messages import (
    GetModule,
    HandlerFailed,
    JobFinished,
    ModuleFound,
    RemoteJobDone,
    RunRemote,
    SubmitJob,
)
from plasm.protocol.p2p_messages import (
    PROTOCOL_JOB,
    PROTOCOL_MODULE,
    PROTOCOL_NEGOTIATE,
    InboundRequest,
    PeerFailure,
    PeerRequest,
    PeerResponse,
    Placement,
    Requirements,
)
from plasm.runtime.lru import BoundedLRU

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_S = 5.0
SWEEP_INTERVAL_S = 1.0
MODULE_CACHE_ENTRIES = 32
WARM_MODULES = 256


class NegotiatorError(ActorLayerError):
    """The negotiator could not take a remote job (for example an invalid placement)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Requested:
    machine: RemoteJob
    placement: Placement
    ticket: JobTicket | None
    reply_to: pykka.ActorRef[Any] | None


@dataclass(slots=True)
class _Running:
    accepted: pykka.Future[Any]
    done: pykka.Future[Any]


class NegotiatorActor(PlasmActor):
    handlers: ClassVar[dict[type[Message], str]] = {
        RunRemote: "on_run_remote",
        Candidates: "on_candidates",
        PeerResponse: "on_peer_response",
        PeerFailure: "on_peer_failure",
        NegotiationDeadline: "on_deadline",
        InboundRequest: "on_inbound",
        RemoteJobSettled: "on_settled",
        HandlerFailed: "on_handler_failed",
    }

    def __init__(
        self,
        peer_id: str,
        network: LateRef,
        discovery: pykka.ActorRef[Any],
        ingress: LateRef,
        policy: ExecutorPolicy,
        modules: pykka.ActorRef[Any] | None,
        *,
        offer_timeout_ms: int = OFFER_TIMEOUT_MS,
    ) -> None:
        super().__init__()
        self._peer_id = peer_id
        self._network = network
        self._discovery = discovery
        self._ingress = ingress
        self._policy = policy
        self._modules = modules
        self._offer_timeout_ms = offer_timeout_ms
        self._timers = Timers()
        self._requested: dict[str, _Requested] = {}
        self._deadlines: list[tuple[int, str]] = []  # heap of (deadline ms, job id)
        self._deadline_armed_ms: int | None = None  # when the deadline timer fires
        self._state = ExecutorState()
        self._running: dict[tuple[str, str], _Running] = {}
        self._sweep_armed = False
        self._module_cache: BoundedLRU[str, bytes] = BoundedLRU(MODULE_CACHE_ENTRIES)
        self._warm: BoundedLRU[str, set[str]] = BoundedLRU(WARM_MODULES)  # module sha -> peers

    def on_stop(self) -> None:
        self._timers.cancel_all()
        for job_id in list(self._requested):
            self._finish_failed(job_id, "shutting_down", "the node is stopping")

    # -- supervision ----------------------------------------------------------------

    def job_of(self, delivery: Delivery) -> JobTicket | None:
        if delivery.job is not None:
            return delivery.job
        tag = getattr(delivery.message, "tag", "")
        entry = self._entry_for_tag(tag) if tag else None
        return entry.ticket if entry is not None else None

    def end_job(self, job: JobTicket, reason: str) -> None:
        # Forget the machine first: the job is over, whatever its peers still answer.
        self._requested.pop(job.job_id, None)
        super().end_job(job, reason)

    def on_handler_failed(self, delivery: Delivery) -> None:
        """An actor this side asked (discovery, the network) failed on a job's request."""
        failed = delivery.message
        assert isinstance(failed, HandlerFailed)
        entry = self._entry_for_tag(failed.tag)
        if entry is None:
            return
        job_id = failed.tag.partition("/")[0]
        self._finish_failed(
            job_id,
            "internal_error",
            f"{failed.actor} failed while it held the job: {failed.message}",
        )

    # -- requester side -------------------------------------------------------------

    def on_run_remote(self, delivery: Delivery) -> None:
        request = delivery.message
        assert isinstance(request, RunRemote)
        job, placement = request.job, request.placement
        done, reply_to = delivery.job, delivery.reply_to
        if placement.mode == "local":
            reason = "a job placed locally does not go through the negotiator"
            self._answer(job.job_id, done, reply_to, "invalid_placement", reason)
            return
        if job.job_id in self._requested:
            raise NegotiatorError(f"remote job {job.job_id} is already being negotiated")
        if job.module is None:
            module = self._lookup_module(job.module_sha256)
            if module is None:
                reason = f"module {job.module_sha256} is not stored on this node"
                self._answer(job.job_id, done, reply_to, "module_unavailable", reason)
                return
            job = replace(job, module=module)
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
            self._perform(job.job_id, machine.start((placement.peer_id,), _now_ms()))
            return
        exclude = (self._peer_id,) if placement.exclude_self else ()
        find = FindCandidates(
            requirements=_fit_to_limits(placement.requirements, job),
            exclude=exclude,
            tag=job.job_id,
        )
        tell(self._discovery, find, reply_to=self.actor_ref)

    def on_candidates(self, delivery: Delivery) -> None:
        found = delivery.message
        assert isinstance(found, Candidates)
        entry = self._requested.get(found.tag)
        if entry is None:
            return  # the job ended (deadline) before discovery answered
        peers = found.peer_ids
        if entry.placement.exclude_self:
            peers = tuple(p for p in peers if p != self._peer_id)
        self._perform(found.tag, entry.machine.start(peers, _now_ms()))

    def on_peer_response(self, delivery: Delivery) -> None:
        answer = delivery.message
        assert isinstance(answer, PeerResponse)
        entry = self._entry_for_tag(answer.tag)
        if entry is None:
            return
        try:
            message = decode_message(answer.payload)
        except DecodeError as exc:
            detail = str(exc)
            self._feed(
                entry,
                lambda m: m.on_failure(answer.tag, answer.peer_id, "malformed", detail, _now_ms()),
            )
            return
        self._feed(entry, lambda m: m.on_answer(answer.tag, answer.peer_id, message, _now_ms()))

    def on_peer_failure(self, delivery: Delivery) -> None:
        failure = delivery.message
        assert isinstance(failure, PeerFailure)
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
                failure.tag, failure.peer_id, failure.reason, failure.message, _now_ms()
            ),
        )

    def on_deadline(self, delivery: Delivery) -> None:
        """The deadline timer fired: fail every job whose deadline has passed, re-arm."""
        assert isinstance(delivery.message, NegotiationDeadline)
        self._deadline_armed_ms = None
        now = _now_ms()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id = heapq.heappop(self._deadlines)
            entry = self._requested.get(job_id)
            # a job id seen again later has its own, later entry: check the machine's
            if entry is not None and entry.machine.deadline_ms <= now:
                self._perform(job_id, entry.machine.on_deadline(now))
        self._arm_deadline()

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
        delay_s = (first_ms - _now_ms()) / 1000
        self._timers.after("deadline", delay_s, self.actor_ref, NegotiationDeadline(job_id))

    def _entry_for_tag(self, tag: str) -> _Requested | None:
        return self._requested.get(tag.partition("/")[0])

    def _feed(self, entry: _Requested, step: Any) -> None:
        try:
            actions = step(entry.machine)
        except RemoteProtocolError as exc:
            log.warning("ignored an answer the negotiation does not allow: %s", exc)
            return
        self._perform(entry.machine.job.job_id, actions)

    def _perform(self, job_id: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendOffer):
                self._send(
                    action.peer_id, PROTOCOL_NEGOTIATE, action.offer, action.timeout_ms, action.tag
                )
            elif isinstance(action, SendJob):
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
                self._finish(
                    job_id,
                    RemoteJobDone(
                        job_id=job_id,
                        executor=action.executor,
                        executed=action.executed,
                        envelope=action.envelope,
                        error_code=None,
                        error_message=None,
                        attempts=action.attempts,
                    ),
                    entry,
                )
            elif isinstance(action, Fail):
                entry = self._requested[job_id]
                log.info("remote job %s failed: %s", job_id, action.message)
                self._finish(
                    job_id,
                    RemoteJobDone(
                        job_id=job_id,
                        executor=None,
                        executed=None,
                        envelope=None,
                        error_code=action.code,
                        error_message=action.message,
                        attempts=action.attempts,
                    ),
                    entry,
                )

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
            tell(self._network.get(), request, reply_to=self.actor_ref)
        except (RuntimeError, pykka.ActorDeadError) as exc:
            # Answered as a message, never by recursion: the machine sees an ordinary failure.
            tell(
                self.actor_ref,
                PeerFailure(
                    peer_id=peer_id,
                    reason="refused",
                    message=f"the network is not running: {exc}",
                    tag=tag,
                ),
            )

    def _remember_warm(self, module_sha256: str, peer_id: str) -> None:
        self._warm.setdefault(module_sha256, set).add(peer_id)

    def _finish(self, job_id: str, done_message: RemoteJobDone, entry: _Requested) -> None:
        del self._requested[job_id]
        self._answer_with(done_message, entry.ticket, entry.reply_to)

    def _finish_failed(self, job_id: str, code: str, message: str) -> None:
        entry = self._requested.pop(job_id)
        self._answer(job_id, entry.ticket, entry.reply_to, code, message, entry.machine.attempts)

    def _answer(
        self,
        job_id: str,
        done: JobTicket | None,
        reply_to: pykka.ActorRef[Any] | None,
        code: str,
        message: str,
        attempts: tuple[Any, ...] = (),
    ) -> None:
        self._answer_with(
            RemoteJobDone(
                job_id=job_id,
                executor=None,
                executed=None,
                envelope=None,
                error_code=code,
                error_message=message,
                attempts=attempts,
            ),
            done,
            reply_to,
        )

    @staticmethod
    def _answer_with(
        done_message: RemoteJobDone,
        ticket: JobTicket | None,
        reply_to: pykka.ActorRef[Any] | None,
    ) -> None:
        if reply_to is not None:
            try:
                tell(reply_to, done_message, job=ticket)
            except pykka.ActorDeadError:
                log.warning("remote job %s finished after its ingress stopped", done_message.job_id)
        elif ticket is not None:
            ticket.done.try_set(checked(done_message))

    # -- executor side --------------------------------------------------------------

    def on_inbound(self, delivery: Delivery) -> PeerResponse | pykka.Future[Any]:
        inbound = delivery.message
        assert isinstance(inbound, InboundRequest)
        peer = inbound.peer_id
        try:
            message = decode_message(inbound.payload)
        except DecodeError as exc:
            return self._respond(peer, Error(code="malformed", message=str(exc)))
        if inbound.protocol == PROTOCOL_NEGOTIATE and isinstance(message, JobOffer):
            return self._respond(peer, self._on_offer(peer, message))
        if inbound.protocol == PROTOCOL_JOB and isinstance(message, JobRequest):
            return self._on_job(peer, message)
        if inbound.protocol == PROTOCOL_MODULE and isinstance(message, ModuleRequest):
            return self._respond(peer, self._on_module_request(peer, message))
        return self._respond(
            peer,
            Error(
                code="malformed",
                message=f"a {type(message).__name__} is not a request of {inbound.protocol}",
            ),
        )

    @staticmethod
    def _respond(peer_id: str, message: Message) -> PeerResponse:
        return PeerResponse(peer_id=peer_id, payload=encode_message(message))

    def _on_offer(self, peer: str, offer: JobOffer) -> Message:
        have_module = self._lookup_module(offer.module_sha256) is not None
        response = evaluate_offer(
            offer, peer, _now_ms(), self._policy, self._state, have_module=have_module
        )
        if not response.accepted:
            log.info("rejected job offer %s from %s: %s", offer.job_id, peer, response.reason)
        return response

    def _on_job(self, peer: str, request: JobRequest) -> PeerResponse | pykka.Future[Any]:
        try:
            self._state.take(peer, request, _now_ms())
        except OfferMismatchError as exc:
            refusal = self._admit_direct(peer, request) if exc.code == "no_offer" else None
            if exc.code != "no_offer" or refusal is not None:
                refusal = refusal or Error(code=exc.code, message=str(exc))
                log.info("refused job request from %s: %s", peer, refusal.message)
                return self._respond(peer, refusal)
        module = request.module
        if module is not None:
            self._remember_module(request.module_sha256, module)
        else:
            module = self._lookup_module(request.module_sha256)
        if module is None:
            return self._refuse(
                peer,
                request.job_id,
                Error(
                    code="module_unavailable",
                    message=f"module {request.module_sha256} is not stored here; "
                    "offer it again and send the bytes",
                ),
            )
        if not self._ingress.is_set:
            return self._refuse(
                peer, request.job_id, Error(code="busy", message="the node is still starting")
            )
        submit = SubmitJob(
            module=module,
            module_sha256=request.module_sha256,
            job_input=request.job_input,
            limits=request.limits,
            manifest=_manifest(request),
            placement=Placement(),
            job_id=request.job_id,
            requester=peer,
            nonce=request.nonce,
        )
        accepted, done = Future[Any](), Future[Any]()
        answer = _answer_future(accepted, done, peer, request.job_id, self.actor_ref)
        tell(self._ingress.get(), submit, reply=accepted, job=JobTicket(request.job_id, done))
        self._running[(peer, request.job_id)] = _Running(accepted, done)
        self._arm_sweep()
        return answer

    def _admit_direct(self, peer: str, request: JobRequest) -> Error | None:
        """None if a job request without an offer may run here (now counted as running)."""
        module = None if request.module is not None else self._lookup_module(request.module_sha256)
        if module is None:  # with bytes, or for a module not stored here: offer it first
            return Error(
                code="no_offer",
                message=f"no accepted offer for job {request.job_id} from {peer} (or it "
                "expired), and its module is not stored here; send a JobOffer first",
            )
        reason = admit_direct(request, peer, len(module), _now_ms(), self._policy, self._state)
        if reason is None:
            return None
        log.info("rejected direct job request %s from %s: %s", request.job_id, peer, reason)
        return Error(code=reason, message=f"job {request.job_id} refused: {reason}")

    def _refuse(self, peer: str, job_id: str, error: Error) -> PeerResponse:
        self._state.settle(peer, job_id)
        return self._respond(peer, error)

    def on_settled(self, delivery: Delivery) -> None:
        """A remote job ended (or the sweep timer, with empty ids, fired)."""
        settled = delivery.message
        assert isinstance(settled, RemoteJobSettled)
        if settled.peer_id:
            self._release(settled.peer_id, settled.job_id)
        for (peer, job_id), running in list(self._running.items()):
            if _state(running.done) != "pending" or _state(running.accepted) == "failed":
                self._release(peer, job_id)
        if not settled.peer_id:
            self._sweep_armed = False  # this was the sweep firing
        if self._running:
            self._arm_sweep()

    def _arm_sweep(self) -> None:
        """One sweep pending while remote jobs run (a timer is a thread: not one per job)."""
        if not self._sweep_armed:
            self._sweep_armed = True
            self._timers.after(
                "sweep", SWEEP_INTERVAL_S, self.actor_ref, RemoteJobSettled(peer_id="", job_id="")
            )

    def _release(self, peer: str, job_id: str) -> None:
        self._running.pop((peer, job_id), None)
        self._state.settle(peer, job_id)

    def _on_module_request(self, peer: str, request: ModuleRequest) -> Message:
        policy = self._policy
        if not policy.admits(peer):
            return Error(code="not_allowed", message="this node does not serve modules to you")
        data = self._lookup_module(request.module_sha256)
        if data is None:
            return Error(
                code="module_unavailable",
                message=f"module {request.module_sha256} is not stored here",
            )
        return ModuleData(module_sha256=request.module_sha256, data=data)

    # -- modules --------------------------------------------------------------------

    def _lookup_module(self, sha256: str) -> bytes | None:
        cached = self._module_cache.get(sha256)
        if cached is not None:
            return cached
        if self._modules is None:
            return None
        try:
            # The journal (or ingress) answers from its own state and never asks back.
            found = ask(self._modules, GetModule(module_sha256=sha256), timeout=LOOKUP_TIMEOUT_S)
        except Exception as exc:
            log.warning("module lookup of %s failed: %s", sha256, exc)
            return None
        if not isinstance(found, ModuleFound) or found.data is None:
            return None
        self._remember_module(sha256, found.data)
        return found.data

    def _remember_module(self, sha256: str, data: bytes) -> None:
        self._module_cache.put(sha256, data)


def _fit_to_limits(requirements: Requirements, job: ExecuteJob) -> Requirements:
    """The requirements a peer must meet to run `job` with its limits."""
    return replace(
        requirements,
        min_fuel=max(requirements.min_fuel, job.limits.fuel),
        min_memory_bytes=max(requirements.min_memory_bytes, job.limits.memory_bytes),
        min_timeout_ms=max(requirements.min_timeout_ms, job.limits.timeout_ms),
    )


def _manifest(request: JobRequest) -> bytes:
    """The manifest JSON the ingress journals for a job run on behalf of a peer."""
    job_input, limits = request.job_input, request.limits
    return json.dumps(
        {
            "module_sha256": request.module_sha256,
            "module_name": job_input.module_name,
            "stdin": base64.b64encode(job_input.stdin).decode("ascii"),
            "args": list(job_input.args),
            "env": dict(job_input.env),
            "limits": limits.to_json(),
            "placement": {"mode": "local"},
        },
        sort_keys=True,
    ).encode()


def _state(future: pykka.Future[Any]) -> str:
    """ "pending", "done" or "failed", without waiting."""
    try:
        future.get(timeout=0)
    except pykka.Timeout:
        return "pending"
    except Exception:
        return "failed"
    return "done"


def _answer_future(
    accepted: Future[Any],
    done: Future[Any],
    peer: str,
    job_id: str,
    negotiator: pykka.ActorRef[Any],
) -> Future[Any]:
    """The future the network actor waits on for the job's `PeerResponse`.

    It is answered from the thread that answers `accepted` (the ingress refused the job:
    an `Error`) or `done` (the job ended: its result), whichever decides first.
    """
    answer: Future[Any] = Future()
    once = threading.Lock()

    def settle_with(outcome: PeerResponse | BaseException) -> None:
        if not once.acquire(blocking=False):
            return  # already answered
        _settle(negotiator, peer, job_id)
        if isinstance(outcome, BaseException):
            answer.set_exception((type(outcome), outcome, outcome.__traceback__))
        else:
            answer.set(outcome)

    def on_accepted(future: Future[Any]) -> None:
        try:
            future.get(timeout=0)
        except Exception as exc:
            error = Error(code=wire_code(exc), message=str(exc))
            settle_with(PeerResponse(peer_id=peer, payload=encode_message(error)))

    def on_done(future: Future[Any]) -> None:
        try:
            finished = future.get(timeout=0)
        except Exception as exc:
            settle_with(exc)
            return
        settle_with(PeerResponse(peer_id=peer, payload=encode_message(_job_answer(finished))))

    accepted.add_done_callback(on_accepted)
    done.add_done_callback(on_done)
    return answer


def _job_answer(finished: Any) -> Message:
    if (
        isinstance(finished, JobFinished)
        and finished.executed is not None
        and finished.envelope is not None
    ):
        outcome = finished.executed.outcome
        return JobResult(
            job_id=finished.job_id,
            envelope=finished.envelope,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
        )
    status = finished.status if isinstance(finished, JobFinished) else "failed"
    return Error(code=status, message=f"the job ended {status} without a result")


def _settle(negotiator: pykka.ActorRef[Any], peer: str, job_id: str) -> None:
    tell_quietly(negotiator, RemoteJobSettled(peer_id=peer, job_id=job_id))
