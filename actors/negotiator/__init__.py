"""The negotiator: both sides of running a job on another node.

Theory of operation. One actor, one thread, two controllers that each own their state
(the way Mopidy's core actor composes its controllers); the actor's `@handles` methods
only delegate.

Requester side (`_requester.Requester`): the ingress tells `RunRemote` (with the job's
`done` future and `reply_to` = the ingress). The requester makes a `RemoteJob` state
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
Supervision belongs to this side: a handler that fails on a tagged answer ends the job
the tag names, and an actor this side asked that fails (`HandlerFailed`) ends it too.

Executor side (`_executor_side.ExecutorSide`): the network hands inbound streams over as
`InboundRequest`s. An offer is judged by `evaluate_offer` against the node's
`ExecutorPolicy`; a job request must match an accepted offer, or come without module
bytes for a module stored here and pass `admit_direct` (the same policy, as if it had
been offered), then goes to the ingress as `SubmitJob` (job id, requester, nonce of the
requester, placement local) and the handler returns a future that resolves to the
`PeerResponse(JobResult)` once the job's `done` future completes; the network actor
waits on it, this actor does not. Free slots are this side's own count: offers
accepted and not yet used plus remote jobs it submitted and that have not finished
(`ExecutorPolicy.slots` of them at most); a job that ends tells `RemoteJobSettled`, and
a `SweepRemoteJobs` timer frees any slot left over while jobs run. Local jobs are
bounded by the ingress queue, and a submission the ingress refuses is answered with an
`Error` (`busy`, ...).

Memo records (`_memos.Memos`, verified reuse over the network): the ingress tells
`LookupMemo` and `PublishMemo`; lookups ask the network without blocking and answer the
ingress `MemoLookedUp` once the record verified against the job (see `_memos`).

Both sides share one module lookup (`_shared.ModuleLookup`, a small cache in front of
the journal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pykka

from plasm.actors._deferred import Timers
from plasm.actors._mailbox import Delivery, JobTicket, LateRef, PlasmActor, handles
from plasm.actors.blob_grants import BlobGrants
from plasm.actors.messages import (
    BlobFetched,
    BlobFetchFailed,
    CancelGraceOver,
    CancelRemote,
    Candidates,
    HandlerFailed,
    InboundRequest,
    LookupMemo,
    MemoRecordFetched,
    NegotiationDeadline,
    PeerFailure,
    PeerResponse,
    PublishMemo,
    RemoteJobSettled,
    RunRemote,
    SweepRemoteJobs,
)
from plasm.actors.negotiator._executor_side import FETCH_TAG as INPUT_FETCH
from plasm.actors.negotiator._executor_side import SWEEP_INTERVAL_S, ExecutorSide
from plasm.actors.negotiator._memos import Memos
from plasm.actors.negotiator._requester import FETCH_TAG as OUTPUT_FETCH
from plasm.actors.negotiator._requester import WARM_MODULES, Requester
from plasm.actors.negotiator._shared import (
    LOOKUP_TIMEOUT_S,
    MODULE_CACHE_BYTES,
    ModuleLookup,
    NegotiatorError,
)
from plasm.protocol.negotiation import OFFER_TIMEOUT_MS, ExecutorPolicy

if TYPE_CHECKING:
    from plasm.actors.discovery import DiscoveryActor
    from plasm.actors.journal import JournalActor

__all__ = [
    "LOOKUP_TIMEOUT_S",
    "MODULE_CACHE_BYTES",
    "SWEEP_INTERVAL_S",
    "WARM_MODULES",
    "NegotiatorActor",
    "NegotiatorError",
]


class NegotiatorActor(PlasmActor):
    def __init__(
        self,
        peer_id: str,
        network: LateRef,
        discovery: pykka.ActorRef[DiscoveryActor],
        ingress: LateRef,
        policy: ExecutorPolicy,
        modules: pykka.ActorRef[JournalActor] | None,  # answers GetModule; a stand-in in tests
        *,
        offer_timeout_ms: int = OFFER_TIMEOUT_MS,
        blob_grants: BlobGrants | None = None,
        signer: pykka.ActorRef[Any] | None = None,  # signs memo records; None: none published
    ) -> None:
        super().__init__()
        self._timers = Timers()
        lookup = ModuleLookup(modules)
        self.requester = Requester(
            self.actor_ref,
            peer_id,
            network,
            discovery,
            lookup,
            self._timers,
            offer_timeout_ms,
            blob_grants,
        )
        self.executor_side = ExecutorSide(
            self.actor_ref, ingress, policy, lookup, self._timers, blob_grants, network
        )
        self.memos = Memos(self.actor_ref, network, signer)

    def on_stop(self) -> None:
        self._timers.cancel_all()
        self.requester.stop()

    # -- supervision (the requester side holds the jobs) -------------------------------

    def job_of(self, delivery: Delivery) -> JobTicket | None:
        if delivery.job is not None:
            return delivery.job
        tag = getattr(delivery.message, "tag", "")
        if tag.startswith(INPUT_FETCH):
            return None
        return self.requester.ticket_for_tag(tag.removeprefix(OUTPUT_FETCH))

    def end_job(self, job: JobTicket, reason: str) -> None:
        # Forget the machine first: the job is over, whatever its peers still answer.
        self.requester.forget(job.job_id)
        super().end_job(job, reason)

    @handles(HandlerFailed)
    def on_handler_failed(self, message: HandlerFailed, delivery: Delivery) -> None:
        self.requester.handler_failed(message)

    # -- requester side -------------------------------------------------------------

    @handles(RunRemote)
    def on_run_remote(self, message: RunRemote, delivery: Delivery) -> None:
        self.requester.run_remote(message, delivery.job, delivery.reply_to)

    @handles(CancelRemote)
    def on_cancel_remote(self, message: CancelRemote, delivery: Delivery) -> None:
        self.requester.cancel(message.job_id)

    @handles(CancelGraceOver)
    def on_cancel_grace_over(self, message: CancelGraceOver, delivery: Delivery) -> None:
        self.requester.cancel_grace_over(message.job_id)

    @handles(Candidates)
    def on_candidates(self, message: Candidates, delivery: Delivery) -> None:
        self.requester.candidates(message)

    @handles(PeerResponse)
    def on_peer_response(self, message: PeerResponse, delivery: Delivery) -> None:
        self.requester.peer_response(message)

    @handles(PeerFailure)
    def on_peer_failure(self, message: PeerFailure, delivery: Delivery) -> None:
        self.requester.peer_failure(message)

    @handles(NegotiationDeadline)
    def on_deadline(self, message: NegotiationDeadline, delivery: Delivery) -> None:
        self.requester.deadline()

    @handles(BlobFetched, BlobFetchFailed)
    def on_blob(self, message: BlobFetched | BlobFetchFailed, delivery: Delivery) -> None:
        if message.tag.startswith(INPUT_FETCH):
            self.executor_side.fetched(message)
        else:
            self.requester.fetched(message)

    # -- memo records (verified reuse) -----------------------------------------------

    @handles(LookupMemo)
    def on_lookup_memo(self, message: LookupMemo, delivery: Delivery) -> None:
        self.memos.lookup(message, delivery.reply_to)

    @handles(MemoRecordFetched)
    def on_memo_fetched(self, message: MemoRecordFetched, delivery: Delivery) -> None:
        self.memos.fetched(message)

    @handles(PublishMemo)
    def on_publish_memo(self, message: PublishMemo, delivery: Delivery) -> None:
        self.memos.publish(message)

    # -- executor side --------------------------------------------------------------

    @handles(InboundRequest)
    def on_inbound(
        self, message: InboundRequest, delivery: Delivery
    ) -> PeerResponse | pykka.Future[Any]:
        return self.executor_side.inbound(message)

    @handles(RemoteJobSettled)
    def on_settled(self, message: RemoteJobSettled, delivery: Delivery) -> None:
        self.executor_side.settled(message)

    @handles(SweepRemoteJobs)
    def on_sweep(self, message: SweepRemoteJobs, delivery: Delivery) -> None:
        self.executor_side.sweep()
