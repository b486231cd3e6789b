"""In-process nodes for the negotiator and discovery actor tests.

Each `TestNode` runs the real negotiator and discovery actors, a real signer, a real
executor and sandbox. Two stand-ins replace what other parts of the project own:
`SwitchboardNetwork` plays the network actor (it hands a `PeerRequest` to the target
node's handler actor as an `InboundRequest`, in a worker thread, and tells the answer
back with the tag; failures and silences can be injected per peer and protocol), and
`StandInIngress` admits `SubmitJob` the way the wired ingress will for a remote
requester (its job id, requester and nonce) and runs it on the real executor.
`Responder` is a peer that answers with canned messages: a liar.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nacl.signing
import pykka

from plasm.actors._mailbox import (
    Delivery,
    LateRef,
    PlasmActor,
    ask_async,
    checked,
    handles,
    tell,
)
from plasm.actors.discovery import DiscoveryActor, LocalCapabilities
from plasm.actors.executor import ExecutorActor
from plasm.actors.ingress import new_job_id
from plasm.actors.messages import (
    FindProviders,
    GetIngressStats,
    GetModule,
    GetNetworkInfo,
    InboundRequest,
    IngressStats,
    JobAccepted,
    JobCompleted,
    JobFinished,
    ModuleFound,
    NetworkInfo,
    PeerFailure,
    PeerRequest,
    PeerResponse,
    Ping,
    Pong,
    Provide,
    ProviderInfo,
    Providers,
    PutRecord,
    RemoteJobDone,
    SubmitJob,
)
from plasm.actors.negotiator import NegotiatorActor
from plasm.actors.signer import SignerActor
from plasm.protocol.messages import (
    Capabilities,
    ExecuteJob,
    Message,
    decode_message,
    encode_message,
)
from plasm.protocol.negotiation import ExecutorPolicy
from plasm.protocol.p2p_messages import PROTOCOL_CAPS, PROTOCOLS
from plasm.runtime.job import Limits
from plasm.runtime.sandbox import Sandbox
from tests.negotiation.peers import key_of, peer_id_of

ANSWER_WAIT_S = 60.0


class StandInIngress(PlasmActor):
    def __init__(self, executor: pykka.ActorRef[Any], peer_id: str) -> None:
        super().__init__()
        self._executor = executor
        self._peer_id = peer_id
        self.modules: dict[str, bytes] = {}
        self._running = 0

    @handles(SubmitJob)
    def on_submit(self, request: SubmitJob, delivery: Delivery) -> JobAccepted:
        module = request.module or self.modules[request.module_sha256 or ""]
        assert request.module_sha256 is not None
        self.modules[request.module_sha256] = module
        job = ExecuteJob(
            job_id=request.job_id or new_job_id(),
            module=module,
            module_sha256=request.module_sha256,
            job_input=request.job_input,
            limits=request.limits,
            requester=request.requester or self._peer_id,
            nonce=request.nonce or os.urandom(16),
        )
        self._running += 1
        tell(self._executor, job, job=delivery.job, reply_to=self.actor_ref)
        return JobAccepted(job_id=job.job_id, status="queued")

    @handles(JobCompleted)
    def on_completed(self, completed: JobCompleted, delivery: Delivery) -> None:
        assert delivery.job is not None
        self._running -= 1
        delivery.job.done.set(
            checked(
                JobFinished(
                    job_id=completed.executed.job_id,
                    status="done",
                    executor=self._peer_id,
                    executed=completed.executed,
                    envelope=completed.envelope,
                )
            )
        )

    @handles(GetModule)
    def on_get_module(self, request: GetModule, delivery: Delivery) -> ModuleFound:
        return ModuleFound(
            module_sha256=request.module_sha256, data=self.modules.get(request.module_sha256)
        )

    @handles(GetIngressStats)
    def on_stats(self, request: GetIngressStats, delivery: Delivery) -> IngressStats:
        return IngressStats(
            queue_depth=0,
            running=self._running,
            busy_executors=min(1, self._running),
            executors=1,
            outcomes={},
            latency_counts=(),
            latency_sum_us=0,
        )

    @handles(RemoteJobDone)
    def on_remote_done(self, message: RemoteJobDone, delivery: Delivery) -> None:
        assert delivery.job is not None
        delivery.job.done.set(message)


@dataclass
class Switchboard:
    """Who answers for which peer id: protocol -> handler actor."""

    routes: dict[str, dict[str, pykka.ActorRef[Any]]] = field(default_factory=dict)
    latency_us: dict[str, int] = field(default_factory=dict)


@dataclass
class Wire:
    """What one node's stand-in network sent, and what it must do to whom."""

    failures: dict[tuple[str, str], str] = field(default_factory=dict)  # (peer, protocol)
    silent: set[tuple[str, str]] = field(default_factory=set)  # requests never answered
    sent: list[PeerRequest] = field(default_factory=list)
    announced: list[Message] = field(default_factory=list)

    def requests_to(self, peer_id: str, protocol: str) -> list[Message]:
        return [
            decode_message(r.payload)
            for r in self.sent
            if (r.peer_id, r.protocol) == (peer_id, protocol)
        ]


class SwitchboardNetwork(PlasmActor):
    def __init__(self, own_peer_id: str, board: Switchboard, wire: Wire) -> None:
        super().__init__()
        self._own = own_peer_id
        self._board = board
        self._wire = wire

    @handles(PeerRequest)
    def on_request(self, request: PeerRequest, delivery: Delivery) -> None:
        assert delivery.reply_to is not None
        self._wire.sent.append(request)
        reply_to, key = delivery.reply_to, (request.peer_id, request.protocol)
        if key in self._wire.silent:
            return
        if key in self._wire.failures or request.peer_id not in self._board.routes:
            reason = self._wire.failures.get(key, "unreachable")
            tell(reply_to, PeerFailure(request.peer_id, reason, "injected", tag=request.tag))
            return
        handler = self._board.routes[request.peer_id][request.protocol]
        inbound = InboundRequest(
            peer_id=self._own, protocol=request.protocol, payload=request.payload
        )
        threading.Thread(
            target=self._carry, args=(handler, inbound, request, reply_to), daemon=True
        ).start()

    @staticmethod
    def _carry(
        handler: pykka.ActorRef[Any],
        inbound: InboundRequest,
        request: PeerRequest,
        reply_to: pykka.ActorRef[Any],
    ) -> None:
        answer = ask_async(handler, inbound).get(timeout=ANSWER_WAIT_S)
        if isinstance(answer, pykka.Future):
            answer = answer.get(timeout=ANSWER_WAIT_S)
        assert isinstance(answer, PeerResponse)
        tell(
            reply_to, PeerResponse(peer_id=request.peer_id, payload=answer.payload, tag=request.tag)
        )

    @handles(Ping)
    def on_ping(self, ping: Ping, delivery: Delivery) -> None:
        assert delivery.reply_to is not None
        rtt = self._board.latency_us.get(ping.peer_id, 1_000)
        tell(delivery.reply_to, Pong(peer_id=ping.peer_id, rtt_us=rtt))

    @handles(FindProviders)
    def on_find_providers(self, find: FindProviders, delivery: Delivery) -> None:
        assert delivery.reply_to is not None
        providers = tuple(
            ProviderInfo(peer_id=p, addresses=(f"/ip4/127.0.0.1/tcp/1/p2p/{p}",))
            for p in self._board.routes
            if p != self._own
        )
        tell(delivery.reply_to, Providers(key=find.key, providers=providers))

    @handles(Provide, PutRecord)
    def on_announce(self, message: Provide | PutRecord, delivery: Delivery) -> None:
        self._wire.announced.append(message)

    @handles(GetNetworkInfo)
    def on_info(self, message: GetNetworkInfo, delivery: Delivery) -> NetworkInfo:
        return NetworkInfo(
            peer_id=self._own,
            listen_addresses=(f"/ip4/127.0.0.1/tcp/4001/p2p/{self._own}",),
            observed_addresses=(),
            reachability="private",
            connected=(),
        )


class Responder(PlasmActor):
    """A peer that answers each protocol with whatever `answers[protocol]` makes."""

    def __init__(self, answers: dict[str, Callable[[Message], Message]]) -> None:
        super().__init__()
        self._answers = answers

    @handles(InboundRequest)
    def on_inbound(self, inbound: InboundRequest, delivery: Delivery) -> PeerResponse:
        answer = self._answers[inbound.protocol](decode_message(inbound.payload))
        return PeerResponse(peer_id=inbound.peer_id, payload=encode_message(answer))


def capabilities(key: nacl.signing.SigningKey, **changes: Any) -> Capabilities:
    fields: dict[str, Any] = {
        "peer_id": peer_id_of(key),
        "arch": "x86_64",
        "os": "linux",
        "cpus": 4,
        "memory_bytes": 8 * 2**30,
        "runtimes": ("wasi-preview1",),
        "engine_name": "wasmtime",
        "engine_version": "test",
        "max_limits": Limits(),
        "free_slots": 1,
        "addresses": (),
        "expires_at_ms": time.time_ns() // 1_000_000 + 600_000,
    }
    fields.update(changes)
    return Capabilities(**fields)


class TestNode:
    """One in-process node; `stop()` stops every actor it started."""

    __test__ = False

    def __init__(
        self,
        name: str,
        board: Switchboard,
        sandbox: Sandbox,
        policy: ExecutorPolicy | None = None,
    ) -> None:
        self.key = key_of(name)
        self.peer_id = peer_id_of(self.key)
        self.board = board
        self._refs: list[pykka.ActorRef[Any]] = []
        self.signer = self._spawn(SignerActor.start(self.key))
        executor = self._spawn(ExecutorActor.start(sandbox, self.signer, self.peer_id))
        self.ingress = self._spawn(StandInIngress.start(executor, self.peer_id))
        network_ref, ingress_ref = LateRef(), LateRef()
        self.discovery = self._spawn(
            DiscoveryActor.start(
                self.peer_id,
                network_ref,
                self.signer,
                LocalCapabilities.detect("wasmtime", sandbox.engine_version, Limits(), 1),
                ingress=ingress_ref,
                search_timeout_ms=3_000,
            )
        )
        self.negotiator = self._spawn(
            NegotiatorActor.start(
                self.peer_id,
                network_ref,
                self.discovery,
                ingress_ref,
                policy or ExecutorPolicy(max_limits=Limits(fuel=10**10), slots=4),
                self.ingress,
            )
        )
        self.wire = Wire()
        self.network = self._spawn(SwitchboardNetwork.start(self.peer_id, board, self.wire))
        network_ref.set(self.network)
        ingress_ref.set(self.ingress)
        routes = {p: self.negotiator for p in PROTOCOLS}
        routes[PROTOCOL_CAPS] = self.discovery
        board.routes[self.peer_id] = routes

    def _spawn(self, ref: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        self._refs.append(ref)
        return ref

    def stop(self) -> None:
        for ref in reversed(self._refs):
            if ref.is_alive():
                ref.stop(block=True)
