"""The executor side: run a peer's job here (`InboundRequest` -> `PeerResponse`).

Offers are judged by `evaluate_offer`, job requests must match an accepted offer (or
pass `admit_direct`), then go to the ingress as `SubmitJob`; the answer the network
actor waits on is a future that resolves once the job's `done` future completes.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from plasm.actors._deferred import Timers, tell_quietly
from plasm.actors._future import Future
from plasm.actors._mailbox import JobTicket, LateRef, tell
from plasm.actors.errors import wire_code
from plasm.actors.messages import (
    InboundRequest,
    JobFinished,
    PeerResponse,
    RemoteJobSettled,
    SubmitJob,
    SweepRemoteJobs,
)
from plasm.actors.negotiator._shared import ModuleLookup, log, now_ms
from plasm.protocol.errors import DecodeError
from plasm.protocol.messages import (
    Error,
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
    ExecutorPolicy,
    ExecutorState,
    OfferMismatchError,
    admit_direct,
    evaluate_offer,
)
from plasm.protocol.p2p_messages import PROTOCOL_JOB, PROTOCOL_MODULE, PROTOCOL_NEGOTIATE, Placement

if TYPE_CHECKING:
    from plasm.actors.negotiator import NegotiatorActor

SWEEP_INTERVAL_S = 1.0


@dataclass(slots=True)
class _Running:
    accepted: pykka.Future[Any]
    done: pykka.Future[Any]


class ExecutorSide:
    """The peers' jobs this node accepted: offers not yet used, and jobs still running.

    Free slots are this side's own count, offers accepted and not yet used plus remote
    jobs it submitted that have not finished (`ExecutorPolicy.slots` of them at most).
    """

    def __init__(
        self,
        actor: pykka.ActorRef[NegotiatorActor],
        ingress: LateRef,
        policy: ExecutorPolicy,
        modules: ModuleLookup,
        timers: Timers,
    ) -> None:
        self._actor = actor
        self._ingress = ingress
        self._policy = policy
        self._modules = modules
        self._timers = timers
        self._state = ExecutorState()
        self._running: dict[tuple[str, str], _Running] = {}
        self._sweep_armed = False

    def inbound(self, inbound: InboundRequest) -> PeerResponse | pykka.Future[Any]:
        peer = inbound.peer_id
        try:
            message = decode_message(inbound.payload)
        except DecodeError as exc:
            return _respond(peer, Error(code="malformed", message=str(exc)))
        if inbound.protocol == PROTOCOL_NEGOTIATE and isinstance(message, JobOffer):
            return _respond(peer, self._on_offer(peer, message))
        if inbound.protocol == PROTOCOL_JOB and isinstance(message, JobRequest):
            return self._on_job(peer, message)
        if inbound.protocol == PROTOCOL_MODULE and isinstance(message, ModuleRequest):
            return _respond(peer, self._on_module_request(peer, message))
        return _respond(
            peer,
            Error(
                code="malformed",
                message=f"a {type(message).__name__} is not a request of {inbound.protocol}",
            ),
        )

    def settled(self, settled: RemoteJobSettled) -> None:
        """A remote job ended: free its slot (and those of any others that ended)."""
        self._release(settled.peer_id, settled.job_id)
        self._sweep()

    def sweep(self) -> None:
        """The sweep timer fired: free the slots of jobs that ended."""
        self._sweep_armed = False
        self._sweep()

    # -- internals ------------------------------------------------------------------

    def _on_offer(self, peer: str, offer: JobOffer) -> Message:
        have_module = self._modules.get(offer.module_sha256) is not None
        response = evaluate_offer(
            offer, peer, now_ms(), self._policy, self._state, have_module=have_module
        )
        if not response.accepted:
            log.info("rejected job offer %s from %s: %s", offer.job_id, peer, response.reason)
        return response

    def _on_job(self, peer: str, request: JobRequest) -> PeerResponse | pykka.Future[Any]:
        try:
            self._state.take(peer, request, now_ms(), self._policy.offer_hold_ms)
        except OfferMismatchError as exc:
            refusal = self._admit_direct(peer, request) if exc.code == "no_offer" else None
            if exc.code != "no_offer" or refusal is not None:
                refusal = refusal or Error(code=exc.code, message=str(exc))
                log.info("refused job request from %s: %s", peer, refusal.message)
                return _respond(peer, refusal)
        module = request.module
        if module is not None:
            self._modules.remember(request.module_sha256, module)
        else:
            module = self._modules.get(request.module_sha256)
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
        answer = _answer_future(accepted, done, peer, request.job_id, self._actor)
        tell(self._ingress.get(), submit, reply=accepted, job=JobTicket(request.job_id, done))
        self._running[(peer, request.job_id)] = _Running(accepted, done)
        self._arm_sweep()
        return answer

    def _admit_direct(self, peer: str, request: JobRequest) -> Error | None:
        """None if a job request without an offer may run here (now counted as running)."""
        module = None if request.module is not None else self._modules.get(request.module_sha256)
        if module is None:  # with bytes, or for a module not stored here: offer it first
            return Error(
                code="no_offer",
                message=f"no accepted offer for job {request.job_id} from {peer} (or it "
                "expired), and its module is not stored here; send a JobOffer first",
            )
        reason = admit_direct(request, peer, len(module), now_ms(), self._policy, self._state)
        if reason is None:
            return None
        log.info("rejected direct job request %s from %s: %s", request.job_id, peer, reason)
        return Error(code=reason, message=f"job {request.job_id} refused: {reason}")

    def _refuse(self, peer: str, job_id: str, error: Error) -> PeerResponse:
        self._state.settle(peer, job_id)
        return _respond(peer, error)

    def _sweep(self) -> None:
        for (peer, job_id), running in list(self._running.items()):
            if _state(running.done) != "pending" or _state(running.accepted) == "failed":
                self._release(peer, job_id)
        if self._running:
            self._arm_sweep()

    def _arm_sweep(self) -> None:
        """One sweep pending while remote jobs run (a timer is a thread: not one per job)."""
        if not self._sweep_armed:
            self._sweep_armed = True
            self._timers.after("sweep", SWEEP_INTERVAL_S, self._actor, SweepRemoteJobs())

    def _release(self, peer: str, job_id: str) -> None:
        self._running.pop((peer, job_id), None)
        self._state.settle(peer, job_id)

    def _on_module_request(self, peer: str, request: ModuleRequest) -> Message:
        policy = self._policy
        if not policy.admits(peer):
            return Error(code="not_allowed", message="this node does not serve modules to you")
        data = self._modules.get(request.module_sha256)
        if data is None:
            return Error(
                code="module_unavailable",
                message=f"module {request.module_sha256} is not stored here",
            )
        return ModuleData(module_sha256=request.module_sha256, data=data)


def _respond(peer_id: str, message: Message) -> PeerResponse:
    return PeerResponse(peer_id=peer_id, payload=encode_message(message))


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
    negotiator: pykka.ActorRef[NegotiatorActor],
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
        tell_quietly(negotiator, RemoteJobSettled(peer_id=peer, job_id=job_id))
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
