"""Sans-IO peers for the negotiation tests: keys, jobs, an executor endpoint, a fake link.

`ExecutorEndpoint` is the executor side built from the real policy code
(`evaluate_offer`, `ExecutorState.take`) that signs a real receipt for a made-up run;
`drive` carries a requester machine's requests to endpoints and their answers back,
the way the negotiator and the network would, and returns what the machine decided.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.signing

from plasm.actors.ingress import new_job_id
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import (
    Error,
    ExecuteJob,
    JobOffer,
    JobRequest,
    JobResult,
    Message,
)
from plasm.protocol.negotiation import (
    Action,
    ExecutorPolicy,
    ExecutorState,
    Fail,
    OfferMismatchError,
    RemoteJob,
    ReportPeer,
    SendJob,
    SendOffer,
    Succeed,
    evaluate_offer,
)
from plasm.protocol.receipt import build_receipt, sign_receipt
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind

MODULE = b"\x00asm\x01\x00\x00\x00"
MODULE_SHA256 = hashlib.sha256(MODULE).hexdigest()
T0 = 1_700_000_000_000


def key_of(name: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(name.encode()).digest())


def peer_id_of(key: nacl.signing.SigningKey) -> str:
    return peer_id_from_public_key(key.verify_key.encode())


def make_job(requester: str, stdin: bytes = b"hello", limits: Limits | None = None) -> ExecuteJob:
    return ExecuteJob(
        job_id=new_job_id(),
        module=MODULE,
        module_sha256=MODULE_SHA256,
        job_input=JobInput(stdin=stdin, args=("a",), env=(("K", "v"),)),
        limits=limits or Limits(),
        requester=requester,
        nonce=os.urandom(16),
    )


def signed_result(
    request: JobRequest,
    requester: str,
    key: nacl.signing.SigningKey,
    stdout: bytes = b"olleh\n",
    *,
    executor: str | None = None,
) -> JobResult:
    """The result an honest executor holding `key` sends for `request`."""
    outcome = Outcome(
        kind=OutcomeKind.OK,
        exit_code=None,
        message=None,
        stdout=stdout,
        stderr=b"",
        stdout_truncated=False,
        stderr_truncated=False,
        fuel_consumed=1234,
        wall_time_us=50,
        started_at_ms=T0,
        finished_at_ms=T0 + 1,
    )
    receipt = build_receipt(
        job_id=request.job_id,
        module_sha256=request.module_sha256,
        job_input=request.job_input,
        limits=request.limits,
        outcome=outcome,
        engine_name="wasmtime",
        engine_version="test",
        executor=executor or peer_id_of(key),
        requester=requester,
        nonce=request.nonce,
    )
    envelope = sign_receipt(receipt, key)
    return JobResult(job_id=request.job_id, envelope=envelope, stdout=stdout, stderr=b"")


@dataclass
class ExecutorEndpoint:
    """An executor peer: real policy and bookkeeping, a real signature on a made-up run."""

    name: str
    policy: ExecutorPolicy = field(default_factory=lambda: ExecutorPolicy(max_limits=Limits()))
    has_module: bool = False
    # Replaces the honest result, e.g. to forge one: (request, honest result) -> answer.
    tamper: Callable[[JobRequest, JobResult], Message] | None = None
    fail_with: str | None = None  # a PeerFailure reason for every request
    state: ExecutorState = field(default_factory=ExecutorState)
    requests: list[JobRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = key_of(self.name)
        self.peer_id = peer_id_of(self.key)

    def answer(self, requester: str, message: Message, now_ms: int) -> Message:
        if isinstance(message, JobOffer):
            return evaluate_offer(
                message, requester, now_ms, self.policy, self.state, have_module=self.has_module
            )
        assert isinstance(message, JobRequest)
        self.requests.append(message)
        try:
            self.state.take(requester, message, now_ms)
        except OfferMismatchError as exc:
            return Error(code=exc.code, message=str(exc))
        result = signed_result(message, requester, self.key)
        self.state.settle(requester, message.job_id)
        return self.tamper(message, result) if self.tamper is not None else result


@dataclass
class Decision:
    final: Succeed | Fail
    reports: list[ReportPeer]
    sent: list[SendOffer | SendJob]


def drive(
    machine: RemoteJob,
    candidates: list[ExecutorEndpoint],
    now_ms: int = T0,
    *,
    before_answer: Callable[[SendOffer | SendJob], None] | None = None,
) -> Decision:
    """Run `machine` against `candidates` over a lossless link until it decides."""
    endpoints = {c.peer_id: c for c in candidates}
    actions: list[Action] = machine.start([c.peer_id for c in candidates], now_ms)
    reports: list[ReportPeer] = []
    sent: list[SendOffer | SendJob] = []
    while True:
        next_actions: list[Action] = []
        for action in actions:
            if isinstance(action, Succeed | Fail):
                return Decision(action, reports, sent)
            if isinstance(action, ReportPeer):
                reports.append(action)
                continue
            sent.append(action)
            if before_answer is not None:
                before_answer(action)
            endpoint = endpoints[action.peer_id]
            message = action.offer if isinstance(action, SendOffer) else action.request
            if endpoint.fail_with is not None:
                next_actions += machine.on_failure(
                    action.tag, action.peer_id, endpoint.fail_with, "test", now_ms
                )
            else:
                answer = endpoint.answer(machine.job.requester, message, now_ms)
                next_actions += machine.on_answer(action.tag, action.peer_id, answer, now_ms)
        assert next_actions, "the machine stopped without deciding"
        actions = next_actions
