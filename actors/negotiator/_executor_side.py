"""The executor side: run a peer's job here (`InboundRequest` -> `PeerResponse`).

Offers are judged by `evaluate_offer`, job requests must match an accepted offer (or
pass `admit_direct`), then go to the ingress as `SubmitJob`; the answer the network
actor waits on is a future that resolves once the job's `done` future completes.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pykka

from plasm.actors._deferred import Timers, tell_quietly
from plasm.actors._future import Future
from plasm.actors._mailbox import JobTicket, LateRef, tell
from plasm.actors.blob_grants import BlobGrants
from plasm.actors.errors import wire_code
from plasm.actors.messages import (
    BlobFetched,
    BlobFetchFailed,
    CancelJob,
    FetchBlob,
    InboundRequest,
    JobFinished,
    PeerResponse,
    RemoteJobSettled,
    SubmitJob,
    SweepRemoteJobs,
)
from plasm.actors.negotiator._shared import ModuleLookup, log, now_ms
from plasm.protocol.blob_transfer import SplitInput, join_input, split_outputs
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
    UPLOAD_BYTES_PER_S,
    ExecutorPolicy,
    ExecutorState,
    OfferMismatchError,
    admit_direct,
    evaluate_offer,
)
from plasm.protocol.p2p_messages import (
    PROTOCOL_CANCEL,
    PROTOCOL_JOB,
    PROTOCOL_MODULE,
    PROTOCOL_NEGOTIATE,
    CancelAnswer,
    CancelRequest,
    Placement,
)

if TYPE_CHECKING:
    from plasm.actors.negotiator import NegotiatorActor

SWEEP_INTERVAL_S = 1.0
OUTPUT_HOLD_S = 600.0  # how long a result's output files stay fetchable by its requester
FETCH_BASE_MS = 10_000  # a fetch may take this long, plus the size at UPLOAD_BYTES_PER_S
FETCH_TAG = "in:"  # the tags of this side's FetchBlob requests


@dataclass(slots=True)
class _Running:
    accepted: pykka.Future[Any]
    done: pykka.Future[Any]


@dataclass(slots=True)
class _Fetching:
    """A job request whose module or input parts are still coming from its requester."""

    request: JobRequest
    answer: _Answer
    module: bytes | None
    missing: dict[str, int]  # sha256 -> size, still to arrive
    blobs: dict[str, bytes] = field(default_factory=dict)


class _Answer:
    """The future the network actor waits on for a job's `PeerResponse`, answered once.

    Whoever decides first answers it: the fetch of the job's parts failed (an `Error`),
    the ingress refused the job (an `Error`) or the job ended (its result).
    """

    def __init__(self, negotiator: pykka.ActorRef[NegotiatorActor], peer: str, job_id: str):
        self.future: Future[Any] = Future()
        self._once = threading.Lock()
        self._negotiator, self._peer, self._job_id = negotiator, peer, job_id

    def settle(self, outcome: PeerResponse | BaseException) -> None:
        if not self._once.acquire(blocking=False):
            return  # already answered
        tell_quietly(self._negotiator, RemoteJobSettled(peer_id=self._peer, job_id=self._job_id))
        if isinstance(outcome, BaseException):
            self.future.set_exception((type(outcome), outcome, outcome.__traceback__))
        else:
            self.future.set(outcome)


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
        grants: BlobGrants | None = None,
        network: LateRef | None = None,
    ) -> None:
        self._actor = actor
        self._grants = grants
        self._network = network
        self._fetching: dict[str, _Fetching] = {}  # tag -> job waiting for its parts
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
        if inbound.protocol == PROTOCOL_CANCEL and isinstance(message, CancelRequest):
            return _respond(peer, self._on_cancel(peer, message))
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
        missing: dict[str, int] = {}
        if module is None:
            if self._network is None or request.module_size == 0:
                return self._refuse(
                    peer,
                    request.job_id,
                    Error(
                        code="module_unavailable",
                        message=f"module {request.module_sha256} is not stored here; "
                        "offer it again and send the bytes",
                    ),
                )
            missing[request.module_sha256] = request.module_size
        refusal = self._check_refs(request)
        if refusal is not None:
            return self._refuse(peer, request.job_id, refusal)
        if request.stdin_ref is not None:
            missing[request.stdin_ref.sha256] = request.stdin_ref.size
        for ref in request.file_refs:
            missing[ref.blob.sha256] = ref.blob.size
        if not self._ingress.is_set:
            return self._refuse(
                peer, request.job_id, Error(code="busy", message="the node is still starting")
            )
        answer = _Answer(self._actor, peer, request.job_id)
        self._running[(peer, request.job_id)] = _Running(Future(), answer.future)
        self._arm_sweep()
        fetching = _Fetching(request, answer, module, missing)
        if not missing:
            self._submit(peer, fetching)
            return answer.future
        tag = f"{FETCH_TAG}{peer}/{request.job_id}"
        self._fetching[tag] = fetching
        for sha, size in missing.items():
            fetch = FetchBlob(
                peer_id=peer,
                sha256=sha,
                size=size,
                timeout_ms=FETCH_BASE_MS + size * 1000 // UPLOAD_BYTES_PER_S,
                tag=tag,
            )
            assert self._network is not None
            try:
                tell(self._network.get(), fetch, reply_to=self._actor)
            except (RuntimeError, pykka.ActorDeadError) as exc:
                self._fetching.pop(tag, None)
                error = Error(code="busy", message=f"the network is not running: {exc}")
                answer.settle(_respond(peer, error))
                break
        return answer.future

    def _check_refs(self, request: JobRequest) -> Error | None:
        """Why the parts `request` names by reference are more than this node takes."""
        sizes = [r.blob.size for r in request.file_refs]
        sizes += [request.stdin_ref.size] if request.stdin_ref is not None else []
        if any(size > self._policy.max_blob_bytes for size in sizes):
            return Error(
                code="input_too_large",
                message=f"an input part is over this node's {self._policy.max_blob_bytes} bytes",
            )
        if request.module_size > self._policy.max_module_bytes:
            return Error(code="module_too_large", message="the module is over this node's maximum")
        if (request.file_refs or request.stdin_ref is not None) and self._network is None:
            return Error(code="input_too_large", message="this node fetches no input by reference")
        return None

    def fetched(self, answer: BlobFetched | BlobFetchFailed) -> None:
        """A part of a job's module or input arrived (or could not): submit when all are in."""
        fetching = self._fetching.get(answer.tag)
        if fetching is None or answer.sha256 not in fetching.missing:
            return
        request = fetching.request
        peer = answer.tag[len(FETCH_TAG) :].rpartition("/")[0]
        if isinstance(answer, BlobFetchFailed):
            del self._fetching[answer.tag]
            log.info("job %s from %s: fetch failed: %s", request.job_id, peer, answer.message)
            error = Error(
                code="fetch_failed",
                message=f"could not fetch blob {answer.sha256} from you ({answer.reason}): "
                f"{answer.message}",
            )
            fetching.answer.settle(_respond(peer, error))
            return
        del fetching.missing[answer.sha256]
        if answer.sha256 == request.module_sha256 and fetching.module is None:
            fetching.module = answer.data
            self._modules.remember(request.module_sha256, answer.data)
        fetching.blobs[answer.sha256] = answer.data
        if not fetching.missing:
            del self._fetching[answer.tag]
            self._submit(peer, fetching)

    def _submit(self, peer: str, fetching: _Fetching) -> None:
        request, module = fetching.request, fetching.module
        assert module is not None
        split = SplitInput(request.job_input, request.stdin_ref, request.file_refs)
        try:
            job_input = join_input(split, fetching.blobs)
        except (KeyError, ValueError) as exc:
            error = Error(code="malformed", message=f"the job's input is not valid: {exc}")
            fetching.answer.settle(_respond(peer, error))
            return
        submit = SubmitJob(
            module=module,
            module_sha256=request.module_sha256,
            job_input=job_input,
            limits=request.limits,
            manifest=_manifest(request, job_input),
            placement=Placement(),
            job_id=request.job_id,
            requester=peer,
            nonce=request.nonce,
        )
        accepted, done = Future[Any](), Future[Any]()
        _settle_on(fetching.answer, accepted, done, peer, self._grants)
        self._running[(peer, request.job_id)] = _Running(accepted, fetching.answer.future)
        tell(self._ingress.get(), submit, reply=accepted, job=JobTicket(request.job_id, done))

    def _on_cancel(self, peer: str, request: CancelRequest) -> CancelAnswer:
        """Stop a job ``peer`` sent (only that peer may): the ingress cancels it, and its
        cancelled result goes back on the job's stream as any result does."""
        if (peer, request.job_id) not in self._running or not self._ingress.is_set:
            return CancelAnswer(request.job_id, "unknown")
        log.info(
            "job %s: its requester %s cancels it",
            request.job_id,
            peer,
            extra={"event": "remote_cancel", "job_id": request.job_id, "peer_id": peer},
        )
        tell(self._ingress.get(), CancelJob(job_id=request.job_id))
        return CancelAnswer(request.job_id, "cancelling")

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


def _manifest(request: JobRequest, job_input: Any) -> bytes:
    """The manifest JSON the ingress journals for a job run on behalf of a peer."""
    limits = request.limits
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


def _settle_on(
    answer: _Answer,
    accepted: Future[Any],
    done: Future[Any],
    peer: str,
    grants: BlobGrants | None,
) -> None:
    """Answer `answer` from the thread that answers `accepted` (the ingress refused the
    job: an `Error`) or `done` (the job ended: its result), whichever decides first."""
    settle_with = answer.settle

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
        message = _job_answer(finished, peer, grants)
        settle_with(PeerResponse(peer_id=peer, payload=encode_message(message)))

    accepted.add_done_callback(on_accepted)
    done.add_done_callback(on_done)


def _job_answer(finished: Any, peer: str, grants: BlobGrants | None) -> Message:
    if (
        isinstance(finished, JobFinished)
        and finished.executed is not None
        and finished.envelope is not None
    ):
        outcome = finished.executed.outcome
        inline, refs, blobs = split_outputs(outcome.output_files)
        if refs and grants is None:  # nothing to serve them from: all inline, as before
            inline, refs = outcome.output_files, ()
        elif refs and grants is not None:
            grants.grant(peer, finished.job_id, blobs, OUTPUT_HOLD_S)
        return JobResult(
            job_id=finished.job_id,
            envelope=finished.envelope,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            output_files=inline,
            output_refs=refs,
            log=finished.log,
        )
    status = finished.status if isinstance(finished, JobFinished) else "failed"
    return Error(code=status, message=f"the job ended {status} without a result")
