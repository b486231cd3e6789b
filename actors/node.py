"""A node: its actors, started in order and stopped in reverse.

Start order: signer, journal (it asks the signer for tree heads), executors, then (with a
network) discovery, negotiator and network, then the ingress. `stop()` runs in reverse,
and the shell calls it from a `finally`, so no actor thread (they are not daemon threads)
outlives the node.

`Node` is also the thread-safe façade the shell uses: every call here is a message to
an actor, never a direct touch of actor state.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pykka
from nacl.signing import SigningKey

from plasm.actors import _mailbox
from plasm.actors._future import Future
from plasm.actors._mailbox import JobTicket, LateRef, ask, ask_async
from plasm.actors.blob_grants import BlobGrants
from plasm.actors.blob_store import BlobStore
from plasm.actors.errors import (
    NodeFeatureError,
    NodeNotStartedError,
    UnknownModuleError,
    UnknownOutputError,
)
from plasm.actors.executor import ExecutorActor
from plasm.actors.ingress import IngressActor, new_job_id, result_json
from plasm.actors.journal import JournalActor
from plasm.actors.messages import (
    CancelJob,
    CountJobs,
    Drain,
    GetIngressStats,
    GetJob,
    GetModule,
    GetPeerDisputes,
    IngressStats,
    JobAccepted,
    JobCounts,
    JobFinished,
    JobInfo,
    JobList,
    JobStatus,
    JournalRecovered,
    ListJobs,
    ModuleFound,
    ModuleStored,
    PeerDispute,
    PeerDisputes,
    PutModule,
    PutModuleFile,
    RecoverJournal,
    SubmitJob,
)
from plasm.actors.signer import SignerActor
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import Message
from plasm.protocol.p2p_messages import LOCAL, Placement
from plasm.protocol.transparency import head_signer
from plasm.runtime.cpus import CpuPlan
from plasm.runtime.job import DEFAULT_MAX_LIMITS, JobInput, Limits
from plasm.runtime.sandbox import CompileSettings, Sandbox

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 30.0
# A staged module's copy into the journal gets this rate on top of ASK_TIMEOUT_S (a slow disk).
MODULE_COPY_BYTES_PER_S = 16 * 2**20
NO_NETWORK = "this node runs without the peer-to-peer network; set NodeSettings.network"
# Node.stop, past the grace: how long cancelled jobs get to end, and all actors together
# to stop. Grace + these + the interrupt ask stay under grace + 5 s (systemd's margin).
CANCEL_GRACE_S = 1.0
INTERRUPT_S = 0.5
ACTOR_STOP_S = 2.5


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """The peer-to-peer part of a node; a node without it runs jobs locally only."""

    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: tuple[str, ...] = ()
    mdns: bool = False
    allow: tuple[str, ...] = ()  # empty: every peer not denied may send jobs
    deny: tuple[str, ...] = ()
    max_jobs_per_peer: int = 4
    rate_limit_per_minute: int = 120
    offer_hold_ms: int = 2000  # an accepted offer holds its slot this long for the job
    max_connections: int = 64  # libp2p connections, inbound and outbound together
    forget_peers_after_ms: int = 600_000  # a peer gone this long leaves the peer table
    # A peer whose receipts disagreed with an agreed quorum this many times is offered no
    # jobs for dispute_cooldown_ms (again after each further dispute).
    dispute_threshold: int = 3
    dispute_cooldown_ms: int = 3_600_000


@dataclass(frozen=True, slots=True)
class NodeSettings:
    executor_count: int = 0  # 0: one per core
    pool_slots: int = 0  # the Sandbox's instance slots (0: its default)
    queue_length: int = 1024
    max_limits: Limits = DEFAULT_MAX_LIMITS
    journal_path: Path | None = None
    journal_synchronous: str = "normal"
    module_cache_dir: Path | None = None
    # Content-addressed blobs (input files, stdin, outputs): <dir>, within these budgets.
    # None: an in-memory-only node (tests, `plasmd execute-job`): outputs stay in results.
    blob_dir: Path | None = None
    blob_max_bytes: int = 8 * 2**30
    blob_max_blob_bytes: int = 256 * 2**20
    max_module_bytes: int = 256 * 2**20
    # Compile workers, their limits, the compiled-code cache budgets.
    compiling: CompileSettings = field(default_factory=CompileSettings)
    strict_messages: bool = False
    network: NetworkSettings | None = None
    # Where the node's threads run (runtime/cpus.py); None: unpinned (CpuPlan.choose("off")).
    # `plasmd run` passes the plan of executor.cpu_affinity.
    cpus: CpuPlan | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    job_id: str
    done: pykka.Future[Any]
    # The ingress's answer when `Node.submit(confirm=False)` did not wait for it.
    accepted: pykka.Future[Any] | None = None

    def confirm(self, timeout: float = 30.0) -> None:
        """Wait until the node admitted the job; raises its refusal (QueueFullError, ...)."""
        if self.accepted is not None:
            assert isinstance(self.accepted.get(timeout=timeout), JobAccepted)

    def wait(self, timeout: float) -> JobFinished | None:
        """The job's final state, or None if it has not finished within `timeout` s.

        A job the node refused raises the refusal here too.
        """
        try:
            finished = self.done.get(timeout=timeout)
        except pykka.Timeout:
            return None
        assert isinstance(finished, JobFinished)
        return finished


class Node:
    def __init__(self, signing_key: SigningKey, settings: NodeSettings | None = None) -> None:
        self.settings = settings or NodeSettings()
        self.public_key = bytes(signing_key.verify_key)
        self.peer_id = peer_id_from_public_key(self.public_key)
        self._key = signing_key
        self.sandbox: Sandbox | None = None
        s = self.settings
        self.blobs: BlobStore | None = (
            BlobStore(s.blob_dir, s.blob_max_bytes, s.blob_max_blob_bytes)
            if s.blob_dir is not None
            else None
        )
        self.cpus = self.settings.cpus or CpuPlan.choose("off")
        self._started: list[pykka.ActorRef[Any]] = []
        self._ingress: pykka.ActorRef[Any] | None = None
        self._journal: pykka.ActorRef[Any] | None = None
        self._network: pykka.ActorRef[Any] | None = None
        self._discovery: pykka.ActorRef[Any] | None = None
        # what peers may fetch from this node over /plasm/blob/1.0.0 (with the network)
        self.blob_grants: BlobGrants | None = None
        self.interrupted_jobs: list[str] = []

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Node:
        s = self.settings
        if s.strict_messages:
            _mailbox.set_strict(True)
        # Every actor thread starts here and so inherits the home CPU (runtime/cpus.py).
        with self.cpus.pinned():
            self._start_actors()
        return self

    def _start_actors(self) -> None:
        s = self.settings
        try:
            signer = self._spawn(SignerActor.start(self._key))
            if s.journal_path is not None:
                self._journal = self._spawn(
                    JournalActor.start(
                        s.journal_path,
                        s.journal_synchronous,
                        self.blobs,
                        head_signer(self._key),
                        self.peer_id,
                    )
                )
                recovered = ask(self._journal, RecoverJournal(), timeout=ASK_TIMEOUT_S)
                assert isinstance(recovered, JournalRecovered)
                self.interrupted_jobs = list(recovered.interrupted)
            self.sandbox = Sandbox(
                cache_dir=s.module_cache_dir,
                slots=s.pool_slots,
                spread_cpus=self.cpus.spread_cpus,
                compiling=s.compiling,
            )
            count = s.executor_count or os.cpu_count() or 1
            executors = [
                self._spawn(ExecutorActor.start(self.sandbox, signer, self.peer_id, i))
                for i in range(count)
            ]
            negotiator = None
            ingress_ref = LateRef()
            if s.network is not None:
                negotiator = self._start_network(s.network, signer, ingress_ref, count)
            self._ingress = self._spawn(
                IngressActor.start(
                    executors,
                    self.peer_id,
                    s.max_limits,
                    s.queue_length,
                    self._journal,
                    negotiator,
                )
            )
            ingress_ref.set(self._ingress)
        except BaseException:
            self.stop()
            raise

    def _start_network(
        self,
        net: NetworkSettings,
        signer: pykka.ActorRef[Any],
        ingress: LateRef,
        slots: int,
    ) -> pykka.ActorRef[Any]:
        """Discovery, negotiator, then the network actor that routes streams to them.

        Imported here so that a node without the network never loads trio or libp2p.
        """
        from plasm.actors.discovery import DiscoveryActor, LocalCapabilities
        from plasm.actors.negotiator import NegotiatorActor
        from plasm.actors.network import start_network
        from plasm.protocol.negotiation import ExecutorPolicy
        from plasm.protocol.p2p_messages import (
            PROTOCOL_CANCEL,
            PROTOCOL_CAPS,
            PROTOCOL_JOB,
            PROTOCOL_LOG,
            PROTOCOL_MODULE,
            PROTOCOL_NEGOTIATE,
        )

        assert self.sandbox is not None
        max_limits = self.settings.max_limits
        network_ref = LateRef()
        local = LocalCapabilities.detect(
            self.sandbox.engine_name, self.sandbox.engine_version, max_limits, slots
        )
        disputes: tuple[PeerDispute, ...] = ()
        if self._journal is not None:  # peers' dispute records survive restarts
            kept = ask(self._journal, GetPeerDisputes(), timeout=ASK_TIMEOUT_S)
            assert isinstance(kept, PeerDisputes)
            disputes = kept.disputes
        discovery = self._spawn(
            DiscoveryActor.start(
                self.peer_id,
                network_ref,
                signer,
                local,
                ingress=ingress,
                journal=self._journal,
                disputes=disputes,
                dispute_threshold=net.dispute_threshold,
                dispute_cooldown_ms=net.dispute_cooldown_ms,
                forget_after_ms=net.forget_peers_after_ms,
            )
        )
        policy = ExecutorPolicy(
            max_limits=max_limits,
            slots=slots,
            allow=frozenset(net.allow) or None,
            deny=frozenset(net.deny),
            max_jobs_per_peer=net.max_jobs_per_peer,
            rate_limit_per_minute=net.rate_limit_per_minute,
            offer_hold_ms=net.offer_hold_ms,
            max_module_bytes=self.settings.max_module_bytes,
            max_blob_bytes=self.settings.blob_max_blob_bytes,
        )
        # What this node lets peers fetch over /plasm/blob/1.0.0 (the parts of jobs it sent
        # them, the outputs of jobs they asked it to run), shared by negotiator and network.
        grants = BlobGrants()
        negotiator = self._spawn(
            NegotiatorActor.start(
                self.peer_id,
                network_ref,
                discovery,
                ingress,
                policy,
                self._journal,
                blob_grants=grants,
                signer=signer,
            )
        )
        # start_network waits until the host listens, and raises NetworkStartError (a
        # PlasmError that names the address) when it cannot: a port in use, say.
        network, _ = start_network(
            seed=bytes(self._key),
            listen=net.listen,
            bootstrap=net.bootstrap,
            mdns=net.mdns,
            max_connections=net.max_connections,
            handlers={
                PROTOCOL_NEGOTIATE: negotiator,
                PROTOCOL_JOB: negotiator,
                PROTOCOL_MODULE: negotiator,
                PROTOCOL_CANCEL: negotiator,
                PROTOCOL_CAPS: discovery,
                # Consistency proofs of this node's receipt log, for peers that hold its heads.
                **({PROTOCOL_LOG: self._journal} if self._journal is not None else {}),
            },
            events=discovery,
            blob_grants=grants,
        )
        self._spawn(network)
        network_ref.set(network)
        self._network = network
        self._discovery = discovery
        self.blob_grants = grants
        return negotiator

    def _spawn(self, ref: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        self._started.append(ref)
        return ref

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop within a deadline: finish running jobs within `grace_s`, cancel the rest
        (`CANCEL_GRACE_S` more for them to end), journal whatever still runs `interrupted`,
        then stop the actors in reverse (`ACTOR_STOP_S` for them all; one stuck in a
        handler is left behind, logged)."""
        try:
            if self._ingress is not None and self._ingress.is_alive():
                self._drain(grace_s)
        except Exception as exc:  # a dead or stuck ingress must not keep the node up
            log.error("draining the ingress failed: %s", exc)
        finally:
            deadline = time.monotonic() + ACTOR_STOP_S
            for ref in reversed(self._started):
                if not ref.is_alive():
                    continue
                try:
                    ref.stop(block=True, timeout=max(0.05, deadline - time.monotonic()))
                except pykka.Timeout:
                    log.error(
                        "%s did not stop in time (a handler is stuck); leaving it",
                        ref.actor_class.__name__,
                        extra={"event": "actor_stuck", "actor": ref.actor_class.__name__},
                    )
            self._started.clear()
            if self.sandbox is not None:
                self.sandbox.close()
                self.sandbox = None

    def _drain(self, grace_s: float) -> None:
        running = self._drain_step(Drain(cancel_running=False), grace_s)
        if not running:
            return
        log.warning("cancelling %d job(s) still running after %.1fs", running, grace_s)
        running = self._drain_step(Drain(cancel_running=True), CANCEL_GRACE_S)
        if running:
            log.warning(
                "%d job(s) did not stop when cancelled; journalling them interrupted", running
            )
            self._ask_ingress(
                Drain(cancel_running=True, interrupt=True), time.monotonic() + INTERRUPT_S
            )

    def _drain_step(self, drain: Drain, wait_s: float) -> int:
        """Tell the ingress `drain`, then wait up to `wait_s` for its jobs; how many still run."""
        deadline = time.monotonic() + wait_s
        stats = self._ask_ingress(drain, deadline + CANCEL_GRACE_S)
        while stats.running and time.monotonic() < deadline:
            time.sleep(0.02)
            stats = self._ask_ingress(GetIngressStats(), deadline + CANCEL_GRACE_S)
        return stats.running

    def _ask_ingress(self, message: Drain | GetIngressStats, deadline: float) -> IngressStats:
        assert self._ingress is not None
        stats = ask(self._ingress, message, timeout=max(0.1, deadline - time.monotonic()))
        assert isinstance(stats, IngressStats)
        return stats

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the façade ----------------------------------------------------------------

    @property
    def ingress(self) -> pykka.ActorRef[Any]:
        if self._ingress is None:
            raise NodeNotStartedError("the node is not started; call Node.start() first")
        return self._ingress

    def submit(
        self,
        *,
        module: bytes | None,
        module_sha256: str | None,
        job_input: JobInput,
        limits: Limits,
        manifest: bytes = b"{}",
        placement: Placement | None = None,
        confirm: bool = True,
        reuse: str = "off",
    ) -> Submission:
        """Admit a job; raises QueueFullError, LimitsExceededError, ... when refused.

        With ``confirm=False`` it returns at once, without the round trip to the ingress's
        answer: for a caller that waits for the result anyway, `Submission.wait` raises a
        refusal, and `Submission.confirm` waits for the admission alone.
        """
        done: Future[Any] = Future()
        job_id = new_job_id()  # chosen here so that the caller need not wait for it
        accepted = ask_async(
            self.ingress,
            SubmitJob(
                module=module,
                module_sha256=module_sha256,
                job_input=job_input,
                limits=limits,
                manifest=manifest,
                placement=placement or LOCAL,
                job_id=job_id,
                reuse=reuse,
            ),
            job=JobTicket(job_id, done, supervisor=self.ingress),
        )
        submission = Submission(job_id, done, accepted)
        if confirm:
            submission.confirm(ASK_TIMEOUT_S)
            return Submission(job_id, done)
        return submission

    def put_module(self, data: bytes) -> str:
        stored = ask(self.ingress, PutModule(data=data), timeout=ASK_TIMEOUT_S)
        assert isinstance(stored, ModuleStored)
        return stored.module_sha256

    def put_module_file(self, path: Path, sha256: str) -> str:
        """Store the module staged in ``path`` (its bytes hash to ``sha256``); the journal
        copies it in pieces, so it is never whole in memory on the way in. The file stays
        the caller's. A node without a journal keeps modules in memory: it reads the file."""
        if self._journal is None:
            return self.put_module(path.read_bytes())
        stored = ask(
            self._journal,
            PutModuleFile(path=str(path), sha256=sha256),
            timeout=ASK_TIMEOUT_S + path.stat().st_size / MODULE_COPY_BYTES_PER_S,
        )
        assert isinstance(stored, ModuleStored)
        return stored.module_sha256

    def cancel(self, job_id: str) -> JobStatus:
        status = ask(self.ingress, CancelJob(job_id=job_id), timeout=ASK_TIMEOUT_S)
        assert isinstance(status, JobStatus)
        return status

    def stats(self) -> IngressStats:
        stats = ask(self.ingress, GetIngressStats(), timeout=ASK_TIMEOUT_S)
        assert isinstance(stats, IngressStats)
        return stats

    @property
    def journal(self) -> pykka.ActorRef[Any]:
        if self._journal is None:
            raise NodeFeatureError(
                "this node runs without a journal; set NodeSettings.journal_path"
            )
        return self._journal

    def job(self, job_id: str) -> JobInfo:
        info = ask(self.journal, GetJob(job_id=job_id), timeout=ASK_TIMEOUT_S)
        assert isinstance(info, JobInfo)
        return info

    def log_read(self, request: Message) -> Any:
        """Ask the journal about the receipt log (GetLogHead, GetLogPath, GetLogEntries)."""
        return ask(self.journal, request, timeout=ASK_TIMEOUT_S)

    def module(self, sha256: str) -> bytes:
        """The bytes of a module this node holds (uploaded or run before); UnknownModuleError."""
        found = ask(self.journal, GetModule(module_sha256=sha256), timeout=ASK_TIMEOUT_S)
        assert isinstance(found, ModuleFound)
        if found.data is None:
            raise UnknownModuleError(f"no module {sha256} on this node; send its bytes")
        return found.data

    def output(self, job_id: str, path: str) -> bytes:
        """The bytes of the output file ``path`` (``/output/...``) a finished job left.

        Raises UnknownJobError, UnknownOutputError (no such output), BlobNotFoundError (the
        bytes are no longer kept), NodeFeatureError (a node without a blob store)."""
        if self.blobs is None:
            raise NodeFeatureError("this node keeps no output files (it has no blob store)")
        info = self.job(job_id)
        result = orjson.loads(info.result) if info.result is not None else {}
        for output in result.get("outputs", ()):
            if output["path"] == path:
                return self.blobs.read(output["sha256"])
        raise UnknownOutputError(
            f"job {job_id} left no output file {path}"
            + ("" if info.result is not None else f" (it is {info.status} and has no result)")
        )

    def jobs(self, status: str | None = None, limit: int = 50) -> JobList:
        listed = ask(self.journal, ListJobs(status=status, limit=limit), timeout=ASK_TIMEOUT_S)
        assert isinstance(listed, JobList)
        return listed

    @property
    def has_network(self) -> bool:
        return self._network is not None

    def network_info(self) -> Any:
        """This node's addresses and reachability (a NetworkInfo message)."""
        from plasm.actors.messages import GetNetworkInfo, NetworkInfo

        if self._network is None:
            raise NodeFeatureError(NO_NETWORK)
        info = ask(self._network, GetNetworkInfo(), timeout=ASK_TIMEOUT_S)
        assert isinstance(info, NetworkInfo)
        return info

    def peers(self) -> Any:
        """The discovery actor's peer table (a PeerList message)."""
        from plasm.actors.messages import ListPeers

        if self._discovery is None:
            raise NodeFeatureError(NO_NETWORK)
        return ask(self._discovery, ListPeers(), timeout=ASK_TIMEOUT_S)

    def job_counts(self) -> dict[str, int]:
        counts = ask(self.journal, CountJobs(), timeout=ASK_TIMEOUT_S)
        assert isinstance(counts, JobCounts)
        return dict(counts.counts)


__all__ = ["NetworkSettings", "Node", "NodeSettings", "Submission", "result_json"]
