"""An executor: runs one job at a time in the shared sandbox and gets it signed.

The pool is several of these actors (one per core by default). Wasmtime releases the
GIL while guest code runs, so executors overlap where jobs are long; where jobs are
tiny the Python binding layer dominates and the pool mostly hides hop latency.

Flow: ExecuteJob in -> Sandbox.run -> build the receipt -> SignReceipt to the signer,
which sends JobCompleted on to the actor in `reply_to` (the ingress), passing the job's
`done` future along. The sandbox checks the module's hash before compiling or running it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pykka

from plasm.actors._mailbox import Delivery, PlasmActor, handles, tell
from plasm.actors.messages import SignReceipt
from plasm.protocol.messages import ExecuteJob, JobExecuted
from plasm.protocol.receipt import build_receipt
from plasm.runtime.job import Outcome, OutcomeKind
from plasm.runtime.sandbox import CancelToken, Sandbox

if TYPE_CHECKING:
    from plasm.actors.signer import SignerActor


class ExecutorActor(PlasmActor):
    def __init__(
        self,
        sandbox: Sandbox,
        signer: pykka.ActorRef[SignerActor],
        executor_peer_id: str,
        index: int = 0,
    ) -> None:
        super().__init__()
        self._sandbox = sandbox
        self._signer = signer
        self._peer_id = executor_peer_id
        self.index = index

    @handles(ExecuteJob)
    def on_execute(self, job: ExecuteJob, delivery: Delivery) -> None:
        outcome = self._run(job, delivery.cancel)
        receipt = build_receipt(
            job_id=job.job_id,
            module_sha256=job.module_sha256,
            job_input=job.job_input,
            limits=job.limits,
            outcome=outcome,
            engine_name=self._sandbox.engine_name,
            engine_version=self._sandbox.engine_version,
            executor=self._peer_id,
            requester=job.requester,
            nonce=job.nonce,
        )
        executed = JobExecuted.of(job, outcome)
        # The signer forwards JobCompleted to `reply_to` itself: this executor is free
        # for its next job while the receipt is being signed.
        tell(
            self._signer,
            SignReceipt(receipt=receipt),
            reply_to=delivery.reply_to,
            job=delivery.job,
            executed=executed,
        )

    def _run(self, job: ExecuteJob, cancel: CancelToken | None) -> Outcome:
        module = job.module
        if module is None:
            return _not_run("no module bytes came with the job; nothing was run")
        # The sandbox hashes the bytes to key its cache: that hash is the check that they
        # are the module the job names (bytes under another name are refused, never
        # compiled or run). It compiles them in a worker process, under the node's compile
        # limits and the job's timeout and cancel token.
        return self._sandbox.run(
            module, job.job_input, job.limits, cancel, expect_sha256=job.module_sha256
        )


def _not_run(message: str) -> Outcome:
    return Outcome.not_run(OutcomeKind.INVALID_MODULE, message, time.time_ns() // 1_000_000)
