"""A discrete-event simulation of `any` placement at internet scale (no assertions).

    python -m bench sim [--nodes 10000] [--jobs 10000] [--liars 0.1] [--churn 0.05] [...]
    python -m bench sim --validate 20 [--jobs 100]    # the same against a real devnet

No threads, no sockets: one heap of timed events on one core. What runs is Plasm's own
sans-IO code, the same objects the daemons use:

  requester   one `RemoteJob` (protocol/negotiation.py) per job, fed the candidates, every
              decoded answer, every timeout and the deadline; its actions are carried out
              here (SendOffer / SendJob become messages, ReportPeer updates the requester's
              peer table, Succeed / Fail end the job). A result is accepted only if the
              machine's `verify_result` accepts its receipt.
  executor    `evaluate_offer` / `ExecutorState.take` / `admit_direct` / `settle` with an
              `ExecutorPolicy` per node (slots, max_jobs_per_peer, token bucket, offer holds
              and strikes): the daemon's negotiator does nothing else with an offer.
  discovery   `rank_candidates` / `fits` (actors/discovery.py) over the peer table the
              requester holds (signed-record facts, latency, jobs run, receipts rejected,
              failures), best 8 (DEFAULT_CANDIDATE_LIMIT), the daemon's ranking.
  messages    every JobOffer, JobResponse, JobRequest, JobResult and Error is built as the
              real dataclass, encoded with `encode_message` and decoded with
              `decode_message` at the receiver (bytes per job are real CBOR sizes).
  receipts    each node has its own Ed25519 key (PyNaCl) and peer ID; an honest executor
              builds the real receipt (`build_receipt` + `sign_receipt`) of one real
              hello.wasm run made once at start (its Outcome re-timed per job: no wasmtime
              per simulated job). A liar's result is a real lie the verification must
              catch, in turn: stdout altered after signing (hash_mismatch), the receipt of
              an earlier job replayed (job_id_mismatch), a signature with one bit flipped
              (bad_signature). "liar results accepted" counts Succeeds naming a liar: any
              non-zero value would be a hole in `verify_result`.

The model (every figure is an option; defaults in --help):

  nodes       N nodes; `--weak` of them advertise max memory 32 MiB (fit no job: the
              default job asks 64 MiB), `--strong` of them 4 GiB, the rest 256 MiB;
              `--no-capacity` of them have 0 executor slots (they advertise free_slots 0
              and answer every offer `busy`); the others `--slots` slots.
              Per-peer limits as plasmd's defaults: max_jobs_per_peer 4, 120 offers/min.
  jobs        `--jobs` jobs, Poisson arrivals at `--rate` per second, each from a random
              online node, placement {"mode": "any", "exclude_self": true}; `--big` of them
              ask for 1 GiB of memory (only strong nodes fit). Deadline: timeout_ms + 15 s
              (the ingress's REMOTE_SLACK_MS), offer timeout 5 s. A job runs `--job-ms`
              (log-normal, median as given, sigma 0.5) and holds its executor slot.
  latency     each pair of nodes has a fixed round-trip time drawn once from a log-normal
              of median `--latency-ms` and sigma `--latency-sigma`; a message takes half of
              it one way. Every node is one CPU queue: sending a request (encode, open a
              stream), handling one at the receiver and handling the answer each cost
              `--msg-cost-ms` of that node's time, in arrival order (the GIL of one daemon).
              Dialing a peer not connected costs 2 RTT + `--connect-ms`. `--api-ms` is the
              local part of a job (client -> API -> ingress -> negotiator and back), added
              once per job.
  discovery   a requester knows a bounded set of peers: `--known` (64, network
              .max_connections) online nodes picked at random when it first submits, with
              their verified records and measured RTT, `--connected` of them (1.0) over
              an open connection (the others are dialed when first asked). When none of
              them fits the job it asks the DHT: ceil(log2 N) sequential round trips to
              random nodes, `--alpha` (3) queries each (2 messages a query), then the
              signed records of up to 20 providers (PROVIDER_LIMIT; random nodes, offline
              ones included: provider records outlive their node) are fetched in parallel
              over new connections.
              The answer comes when a fetched record fits, when all fetches ended, or 2 s
              (discovery's search_timeout) after the question, whichever is first; found
              peers join the table. Records are not refreshed (free_slots stay as
              advertised).
  churn       each online node leaves at rate `--churn` per simulated minute and comes back
              after an exponential `--downtime-s` (mean); at start the offline share is the
              steady state. A node that leaves loses everything in flight (messages to it,
              jobs it runs, the jobs it asked for: "requester_left", left out of the
              success ratio) and comes back with an empty executor state and module cache
              (a restart). `--graceful` of leaves close their connections: requests pending
              on them fail `reset` one way-latency later; otherwise (and for every request
              sent to an offline node) the request times out at its timeout_ms (5 s for an
              offer, the deadline for a job request). Peers keep a departed node's record
              (as discovery does for forget_peers_after_ms) and rank it down by failures.

Reports: placement success (jobs that got a verified result / jobs whose requester
stayed), failures by code and by the last attempt's reason, latency p50/p90/p99 (submit
-> verified result, with --api-ms), attempts per job, messages and bytes per job (offers,
responses, job requests, results/errors, DHT, record fetches), liar results rejected and
accepted, and the simulation's own wall time and events per second.

Measured here (2 cores shared with other work; one run each; details, and what the model
leaves out, in docs/architecture.md "Simulating the network"):

  10,000 nodes, 10,000 jobs at 100/s, --liars 0.1 --churn 0.05: 98.9% placed (79
  deadline_exceeded, 27 no_executor), p50/p90/p99 154/280/504 ms, 3.77 messages per job,
  0 of 761 lies accepted; 12.6-16.9 s wall on one core. 100,000 nodes: 99.65%, 19.5-25.4 s.
  --validate 20: success 100% on both; p50/p90/p99 devnet 15.3/64.8/73.6 ms, sim
  11.8/20.5/21.2 ms; leaving out each node's first job, devnet 14.6/19.0/21.2, sim
  11.7/12.2/13.5 ms. --validate 50: success 100% on both; the devnet's latency (p50 210
  ms, p99 5.7 s) measured a saturated machine (load average 35), not the protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import heapq
import itertools
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.signing

from plasm.actors.discovery import PROVIDER_LIMIT, RUNTIME, rank_candidates
from plasm.actors.messages import DEFAULT_CANDIDATE_LIMIT, PeerInfo
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import (
    Capabilities,
    Error,
    ExecuteJob,
    JobOffer,
    JobRequest,
    JobResponse,
    JobResult,
    Message,
    decode_message,
    encode_message,
)
from plasm.protocol.negotiation import (
    OFFER_TIMEOUT_MS,
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
from plasm.protocol.p2p_messages import Requirements
from plasm.protocol.receipt import build_receipt, sign_receipt
from plasm.runtime.job import JobInput, Limits, Outcome

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "wasm-examples" / "hello.wasm"
STDIN = b"Hello, World"
REMOTE_SLACK_MS = 15_000  # actors/ingress.py: a remote job's deadline is timeout_ms + this
SEARCH_TIMEOUT_MS = 2_000  # DiscoveryActor's search_timeout_ms
CAPS_TIMEOUT_MS = 5_000
MIB = 2**20
WEAK_MEMORY = 32 * MIB
NORMAL_MEMORY = 256 * MIB
STRONG_MEMORY = 4096 * MIB
BIG_JOB_MEMORY = 1024 * MIB
JOB_SIGMA = 0.5
EPOCH_MS = 1_800_000_000_000  # simulated time 0, in unix ms (records expire a day later)
LIES = ("tampered_stdout", "replayed_receipt", "bad_signature")


# --- the world ------------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    index: int
    peer_id: str
    key: nacl.signing.SigningKey
    caps: Capabilities
    policy: ExecutorPolicy
    liar: bool
    online: bool = True
    epoch: int = 0  # +1 at every leave: what was addressed to an older epoch is lost
    cpu_free_at: float = 0.0
    state: ExecutorState | None = None  # made at the first offer (and anew after a restart)
    modules: set[str] = field(default_factory=set)
    table: dict[int, PeerInfo] | None = None  # the requester's peer table, made when first used
    connected: dict[int, int] = field(default_factory=dict)  # peer -> its epoch when dialed
    warm: set[str] = field(default_factory=set)  # peers that ran our module (direct requests)
    last_envelope: bytes | None = None  # a liar's previous receipt, to replay
    lies_told: int = 0
    pending_to: set[tuple[str, str]] = field(default_factory=set)  # (job id, tag) sent here
    own_jobs: set[str] = field(default_factory=set)  # the jobs it asked for, in flight


@dataclass(slots=True)
class SimJob:
    job_id: str
    requester: int
    machine: RemoteJob
    submitted: float
    big: bool
    first: bool  # its requester's first job
    pending: dict[str, int] = field(default_factory=dict)  # tag -> peer asked
    done: bool = False
    dht: bool = False


@dataclass
class Stats:
    submitted: int = 0
    succeeded: int = 0
    requester_left: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    last_attempt: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    later_latencies: list[float] = field(default_factory=list)  # not a requester's first job
    attempts: list[int] = field(default_factory=list)
    messages: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    liar_results: int = 0
    liar_rejected: Counter[str] = field(default_factory=Counter)
    liar_accepted: int = 0
    dht_lookups: int = 0
    leaves: int = 0
    events: int = 0
    ignored_answers: int = 0


class Sim:
    def __init__(self, args: argparse.Namespace, outcome: Outcome, module: bytes) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.stats = Stats()
        self.outcome = outcome
        self.module = module
        self.module_sha256 = hashlib.sha256(module).hexdigest()
        self.job_input = JobInput(stdin=STDIN, module_name="hello.wasm")
        self.stdout = outcome.stdout
        self._rtt: dict[tuple[int, int], float] = {}
        self.jobs: dict[str, SimJob] = {}
        self._job_ids = itertools.count(1)
        self.submitting_done = False
        self.nodes = self._make_nodes()
        self.online_count = sum(1 for n in self.nodes if n.online)

    # -- the event loop ---------------------------------------------------------------------

    def at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), fn, args))

    def run(self) -> None:
        heap = self._heap
        while heap and not (self.submitting_done and not self.jobs):  # churn never ends
            when, _, fn, args = heapq.heappop(heap)
            self.now = when
            self.stats.events += 1
            fn(*args)

    def now_ms(self) -> int:
        return EPOCH_MS + int(self.now)

    # -- nodes --------------------------------------------------------------------------------

    def _make_nodes(self) -> list[Node]:
        a, rng = self.args, self.rng
        nodes = []
        liars = set(rng.sample(range(a.nodes), round(a.nodes * a.liars)))
        down_share = (a.churn * a.downtime_s / 60) / (1 + a.churn * a.downtime_s / 60)
        for index in range(a.nodes):
            seed = hashlib.sha256(b"plasm-sim-%d-%d" % (a.seed, index)).digest()
            key = nacl.signing.SigningKey(seed)
            peer_id = peer_id_from_public_key(key.verify_key.encode())
            draw = rng.random()
            memory = (
                WEAK_MEMORY
                if draw < a.weak
                else STRONG_MEMORY
                if draw < a.weak + a.strong
                else NORMAL_MEMORY
            )
            max_limits = Limits(memory_bytes=memory, fuel=10**12, timeout_ms=60_000)
            slots = 0 if rng.random() < a.no_capacity else a.slots
            caps = Capabilities(
                peer_id=peer_id, arch="x86_64", os="linux", cpus=2, memory_bytes=memory,
                runtimes=(RUNTIME,), engine_name="wasmtime", engine_version="sim",
                max_limits=max_limits, free_slots=slots, addresses=(),
                expires_at_ms=EPOCH_MS + 86_400_000,
            )  # fmt: skip
            policy = ExecutorPolicy(
                max_limits=max_limits, slots=slots, max_jobs_per_peer=a.max_jobs_per_peer,
                rate_limit_per_minute=a.rate_limit,
            )  # fmt: skip
            node = Node(index, peer_id, key, caps, policy, liar=index in liars)
            nodes.append(node)
        self.by_peer = {n.peer_id: n for n in nodes}
        for node in nodes:
            if a.churn > 0 and rng.random() < down_share:
                node.online = False
                self.at(rng.expovariate(1 / (a.downtime_s * 1000)), self._return, node)
            elif a.churn > 0:
                self.at(rng.expovariate(a.churn / 60_000), self._leave, node)
        return nodes

    def rtt(self, a: int, b: int) -> float:
        key = (a, b) if a < b else (b, a)
        value = self._rtt.get(key)
        if value is None:
            value = self.args.latency_ms * math.exp(self.args.latency_sigma * self.rng.gauss())
            self._rtt[key] = value
        return value

    def cpu(self, node: Node, arrival: float) -> float:
        """When `node` is done with a message that reached it at `arrival` (its CPU queue)."""
        start = max(arrival, node.cpu_free_at)
        node.cpu_free_at = start + self.args.msg_cost_ms
        return node.cpu_free_at

    # -- churn --------------------------------------------------------------------------------

    def _leave(self, node: Node) -> None:
        if not node.online:
            return
        self.stats.leaves += 1
        self.online_count -= 1
        node.online = False
        node.epoch += 1
        node.state = None
        node.modules.clear()
        node.connected.clear()
        node.warm.clear()
        node.cpu_free_at = self.now
        for job_id in list(node.own_jobs):
            self._finish(self.jobs[job_id])
            self.stats.requester_left += 1
        if self.rng.random() < self.args.graceful:
            for job_id, tag in list(node.pending_to):
                job = self.jobs.get(job_id)
                if job is not None and not job.done and tag in job.pending:
                    later = self.now + self.rtt(job.requester, node.index) / 2
                    self.at(later, self._failure, job, tag, node.index, "reset")
        node.pending_to.clear()
        self.at(self.now + self.rng.expovariate(1 / (self.args.downtime_s * 1000)),
                self._return, node)  # fmt: skip

    def _return(self, node: Node) -> None:
        node.online = True
        self.online_count += 1
        if self.args.churn > 0:
            self.at(self.now + self.rng.expovariate(self.args.churn / 60_000), self._leave, node)

    # -- jobs: submit and discovery -----------------------------------------------------------

    def submit_next(self, remaining: int) -> None:
        if remaining <= 0:
            self.submitting_done = True
            return
        self.at(self.now + self.rng.expovariate(self.args.rate / 1000), self.submit_next,
                remaining - 1)  # fmt: skip
        if self.online_count < 2:
            return
        while True:
            requester = self.nodes[self.rng.randrange(len(self.nodes))]
            if requester.online:
                break
        self.stats.submitted += 1
        number = next(self._job_ids)
        job_id = f"{EPOCH_MS + int(self.now):012x}{number:020x}"
        big = self.rng.random() < self.args.big
        limits = Limits(memory_bytes=BIG_JOB_MEMORY) if big else Limits()
        execute = ExecuteJob(
            job_id=job_id, module=self.module, module_sha256=self.module_sha256,
            job_input=self.job_input, limits=limits, requester=requester.peer_id,
            nonce=self.rng.randbytes(16),
        )  # fmt: skip
        deadline = self.now_ms() + limits.timeout_ms + REMOTE_SLACK_MS
        machine = RemoteJob(
            execute, deadline, offer_timeout_ms=OFFER_TIMEOUT_MS, warm=frozenset(requester.warm)
        )
        job = SimJob(job_id, requester.index, machine, self.now, big, requester.table is None)
        self.jobs[job_id] = job
        requester.own_jobs.add(job_id)
        self.at(self.now + (deadline - self.now_ms()), self._deadline, job)
        table = self._table(requester)
        requirements = Requirements(
            min_fuel=limits.fuel, min_memory_bytes=limits.memory_bytes,
            min_timeout_ms=limits.timeout_ms,
        )  # fmt: skip
        found = self._rank(requester, table, requirements)
        start = self.now + self.args.api_ms / 2
        if found:
            self.at(start, self._start, job, found)
            return
        job.dht = True
        self.stats.dht_lookups += 1
        self._dht_search(job, requester, requirements, start)

    def _table(self, node: Node) -> dict[int, PeerInfo]:
        if node.table is None:
            node.table = {}
            want = min(self.args.known, self.online_count - 1)
            tries = 0
            while len(node.table) < want and tries < want * 20:
                tries += 1
                other = self.rng.randrange(len(self.nodes))
                peer = self.nodes[other]
                if other != node.index and peer.online and other not in node.table:
                    node.table[other] = self._info(node, peer)
                    if self.rng.random() < self.args.connected:
                        node.connected[other] = peer.epoch
        return node.table

    def _info(self, node: Node, peer: Node) -> PeerInfo:
        return PeerInfo(
            peer_id=peer.peer_id, addresses=(), capabilities=peer.caps, last_seen_ms=0,
            latency_us=int(self.rtt(node.index, peer.index) * 1000), jobs_run=0,
            receipts_rejected=0, failures=0, connected=True,
        )  # fmt: skip

    def _rank(
        self, node: Node, table: dict[int, PeerInfo], requirements: Requirements
    ) -> tuple[str, ...]:
        return rank_candidates(
            list(table.values()), requirements, (node.peer_id,), self.now_ms(),
            DEFAULT_CANDIDATE_LIMIT,
        )  # fmt: skip

    def _dht_search(self, job: SimJob, node: Node, requirements: Requirements, t: float) -> None:
        """FindProviders over Kademlia, then the providers' records, as discovery does."""
        asked_at = t
        rounds = max(1, math.ceil(math.log2(max(2, len(self.nodes)))))
        for _ in range(rounds):
            hop = self.rng.randrange(len(self.nodes))
            t += self.rtt(node.index, hop) + 2 * self.args.msg_cost_ms
        self.stats.messages["dht"] += 2 * self.args.alpha * rounds
        answer_by = asked_at + SEARCH_TIMEOUT_MS
        if t >= answer_by:
            self.at(answer_by, self._search_answer, job, requirements, ())
            return
        providers = self.rng.sample(range(len(self.nodes)), min(PROVIDER_LIMIT, len(self.nodes)))
        arrivals: list[tuple[float, int]] = []
        for other in providers:
            if other == node.index:
                continue
            peer = self.nodes[other]
            self.stats.messages["record_fetch"] += 2
            if not peer.online:
                continue  # its fetch times out (CAPS_TIMEOUT_MS): after the answer is due
            rtt = self.rtt(node.index, other)
            done = self.cpu(node, t) + 3 * rtt + self.args.connect_ms + self.args.msg_cost_ms
            arrivals.append((done, other))
            node.connected[other] = peer.epoch
        arrivals.sort()
        for done, other in arrivals:
            if done >= answer_by:
                break
            peer = self.nodes[other]
            table = self._table(node)
            table.setdefault(other, self._info(node, peer))
            if rank_candidates([table[other]], requirements, (), self.now_ms(), 1):
                self.at(done, self._search_answer, job, requirements, tuple(arrivals))
                return
        end = min(answer_by, max([t, *(d for d, _ in arrivals)]))
        all_done = len(arrivals) == len(providers) - (node.index in providers)
        self.at(end if all_done else answer_by, self._search_answer, job, requirements, ())

    def _search_answer(
        self, job: SimJob, requirements: Requirements, _found: tuple[Any, ...]
    ) -> None:
        if job.done:
            return
        node = self.nodes[job.requester]
        self._start(job, self._rank(node, self._table(node), requirements))

    def _start(self, job: SimJob, candidates: tuple[str, ...]) -> None:
        if job.done:
            return
        self._perform(job, job.machine.start(candidates, self.now_ms()))

    def _deadline(self, job: SimJob) -> None:
        if not job.done and not job.machine.finished:
            self._perform(job, job.machine.on_deadline(self.now_ms()))

    # -- requester: carrying out the machine's actions ----------------------------------------

    def _perform(self, job: SimJob, actions: list[Any]) -> None:
        node = self.nodes[job.requester]
        for action in actions:
            if isinstance(action, SendOffer):
                self.stats.messages["offer"] += 1
                self._send(job, node, action.peer_id, action.tag, action.offer, action.timeout_ms)
            elif isinstance(action, SendJob):
                self.stats.messages["job_request"] += 1
                self._send(
                    job, node, action.peer_id, action.tag, action.request, action.timeout_ms
                )
            elif isinstance(action, ReportPeer):
                self._report(node, action.peer_id, action.outcome)
            elif isinstance(action, Succeed):
                self._finish(job)
                self.stats.succeeded += 1
                latency = self.now - job.submitted + self.args.api_ms / 2
                self.stats.latencies.append(latency)
                if not job.first:
                    self.stats.later_latencies.append(latency)
                self.stats.attempts.append(len(action.attempts))
                node.warm.add(action.executor)
                if self.by_peer[action.executor].liar:
                    self.stats.liar_accepted += 1
            elif isinstance(action, Fail):
                self._finish(job)
                self.stats.failed[action.code] += 1
                last = action.attempts[-1].result if action.attempts else "no_candidate"
                self.stats.last_attempt[last] += 1
                self.stats.attempts.append(len(action.attempts))

    def _finish(self, job: SimJob) -> None:
        job.done = True
        for tag, peer in job.pending.items():
            self.nodes[peer].pending_to.discard((job.job_id, tag))
        job.pending.clear()
        del self.jobs[job.job_id]
        self.nodes[job.requester].own_jobs.discard(job.job_id)

    def _report(self, node: Node, peer_id: str, outcome: str) -> None:
        table = self._table(node)
        index = self.by_peer[peer_id].index
        info = table.get(index)
        if info is None:
            return
        if outcome == "ran":
            table[index] = dataclasses.replace(info, jobs_run=info.jobs_run + 1)
        elif outcome == "receipt_rejected":
            table[index] = dataclasses.replace(info, receipts_rejected=info.receipts_rejected + 1)
        else:
            table[index] = dataclasses.replace(info, failures=info.failures + 1)

    def _send(
        self, job: SimJob, node: Node, peer_id: str, tag: str, message: Message, timeout_ms: int
    ) -> None:
        payload = encode_message(message)
        self.stats.bytes += len(payload)
        peer = self.by_peer[peer_id]
        job.pending[tag] = peer.index
        peer.pending_to.add((job.job_id, tag))
        self.at(self.now + timeout_ms, self._timeout, job, tag, peer.index)
        t = self.cpu(node, self.now)
        rtt = self.rtt(node.index, peer.index)
        if node.connected.get(peer.index) != peer.epoch or not peer.online:
            if not peer.online:
                return  # the dial (then the request) never completes: it times out
            t += 2 * rtt + self.args.connect_ms
            node.connected[peer.index] = peer.epoch
        self.at(t + rtt / 2, self._arrive, job, tag, node.index, peer.index, peer.epoch, payload)

    def _timeout(self, job: SimJob, tag: str, peer: int) -> None:
        if tag in job.pending:
            self._failure(job, tag, peer, "timeout")

    def _failure(self, job: SimJob, tag: str, peer: int, reason: str) -> None:
        if job.done or job.pending.pop(tag, None) is None:
            return
        self.nodes[peer].pending_to.discard((job.job_id, tag))
        peer_id = self.nodes[peer].peer_id
        self._feed(job, lambda m: m.on_failure(tag, peer_id, reason, reason, self.now_ms()))

    def _feed(self, job: SimJob, step: Callable[[RemoteJob], list[Any]]) -> None:
        try:
            actions = step(job.machine)
        except RemoteProtocolError:
            self.stats.ignored_answers += 1
            return
        self._perform(job, actions)

    def _answer(self, job: SimJob, tag: str, peer: int, payload: bytes) -> None:
        """The answer reached the requester's CPU queue: decode it and feed the machine."""
        if job.done or job.pending.pop(tag, None) is None:
            return  # timed out already, or the job ended
        self.nodes[peer].pending_to.discard((job.job_id, tag))
        message = decode_message(payload)
        before = len(job.machine.attempts)
        if isinstance(message, JobResult):
            self.stats.messages["result"] += 1
            if self.nodes[peer].liar:
                self.stats.liar_results += 1
        elif isinstance(message, JobResponse):
            self.stats.messages["response"] += 1
        else:
            self.stats.messages["error"] += 1
        peer_id = self.nodes[peer].peer_id
        self._feed(job, lambda m: m.on_answer(tag, peer_id, message, self.now_ms()))
        if isinstance(message, JobResult) and self.nodes[peer].liar:
            attempts = job.machine.attempts
            if len(attempts) > before and attempts[-1].result.startswith("receipt_"):
                self.stats.liar_rejected[attempts[-1].result] += 1

    # -- executor -----------------------------------------------------------------------------

    def _arrive(
        self, job: SimJob, tag: str, source: int, target: int, epoch: int, payload: bytes
    ) -> None:
        node = self.nodes[target]
        if not node.online or node.epoch != epoch:
            return  # lost with the node
        done = self.cpu(node, self.now)
        self.at(done, self._handle, job, tag, source, target, epoch, payload)

    def _handle(
        self, job: SimJob, tag: str, source: int, target: int, epoch: int, payload: bytes
    ) -> None:
        node = self.nodes[target]
        if not node.online or node.epoch != epoch:
            return
        requester = self.nodes[source].peer_id
        message = decode_message(payload)
        if node.state is None:
            node.state = ExecutorState()
        now = self.now_ms()
        if isinstance(message, JobOffer):
            answer: Message = evaluate_offer(
                message, requester, now, node.policy, node.state,
                have_module=message.module_sha256 in node.modules,
            )  # fmt: skip
            self._reply(job, tag, node, source, answer)
            return
        assert isinstance(message, JobRequest)
        refusal = self._take(node, requester, message, now)
        if refusal is not None:
            self._reply(job, tag, node, source, refusal)
            return
        run_ms = self.args.job_ms * math.exp(JOB_SIGMA * self.rng.gauss())
        if message.module_sha256 not in node.modules:
            run_ms += self.args.compile_ms  # its first run here compiles the module
        if message.module is not None:
            node.modules.add(message.module_sha256)
        self.at(self.now + run_ms, self._ran, job, tag, node, source, epoch, message, run_ms)

    def _take(self, node: Node, requester: str, request: JobRequest, now: int) -> Error | None:
        """As the daemon's executor side: the offer it answers, else a direct request."""
        assert node.state is not None
        try:
            node.state.take(requester, request, now, node.policy.offer_hold_ms)
            return None
        except OfferMismatchError as exc:
            if exc.code != "no_offer":
                return Error(code=exc.code, message=str(exc))
        if request.module is not None or request.module_sha256 not in node.modules:
            return Error(code="no_offer", message="send a JobOffer first")
        reason = admit_direct(
            request, requester, len(self.module), now, node.policy, node.state
        )
        return None if reason is None else Error(code=reason, message=f"refused: {reason}")

    def _ran(
        self, job: SimJob, tag: str, node: Node, source: int, epoch: int,
        request: JobRequest, run_ms: float,
    ) -> None:  # fmt: skip
        if not node.online or node.epoch != epoch:
            return  # the node left while the job ran: no result will come
        assert node.state is not None
        node.state.settle(self.nodes[source].peer_id, request.job_id)
        self._reply(job, tag, node, source, self._result(node, source, request, run_ms))

    def _result(self, node: Node, source: int, request: JobRequest, run_ms: float) -> JobResult:
        finished = self.now_ms()
        outcome = dataclasses.replace(
            self.outcome, started_at_ms=finished - int(run_ms), finished_at_ms=finished,
            wall_time_us=int(run_ms * 1000),
        )  # fmt: skip
        receipt = build_receipt(
            request.job_id, request.module_sha256, self.job_input, request.limits, outcome,
            "wasmtime", "sim", node.peer_id, self.nodes[source].peer_id, request.nonce,
        )  # fmt: skip
        envelope = sign_receipt(receipt, node.key)
        stdout = self.stdout
        if node.liar:
            lie = LIES[node.lies_told % len(LIES)]
            node.lies_told += 1
            if lie == "replayed_receipt" and node.last_envelope is not None:
                envelope, node.last_envelope = node.last_envelope, envelope
            elif lie == "bad_signature":
                envelope = envelope[:-1] + bytes([envelope[-1] ^ 1])
            else:
                node.last_envelope = envelope
                stdout = b"Hello, Liar!\n"
        return JobResult(job_id=request.job_id, envelope=envelope, stdout=stdout, stderr=b"")

    def _reply(self, job: SimJob, tag: str, node: Node, source: int, answer: Message) -> None:
        payload = encode_message(answer)
        self.stats.bytes += len(payload)
        back = self.now + self.rtt(node.index, source) / 2
        self.at(back, self._reply_arrives, job, tag, source, node.index, payload)

    def _reply_arrives(self, job: SimJob, tag: str, source: int, peer: int, payload: bytes) -> None:
        requester = self.nodes[source]
        if job.done or not requester.online:
            return
        self.at(self.cpu(requester, self.now), self._answer, job, tag, peer, payload)


# --- running it -------------------------------------------------------------------------------


def real_outcome(module: bytes) -> Outcome:
    """One real run of hello.wasm: the Outcome every honest simulated executor re-signs."""
    from plasm.runtime.sandbox import Sandbox

    with Sandbox(slots=1) as sandbox:
        outcome = sandbox.run(module, JobInput(stdin=STDIN, module_name="hello.wasm"), Limits())
    if outcome.kind != "ok":
        raise SystemExit(f"hello.wasm did not run: {outcome}")
    return outcome


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    module = HELLO.read_bytes()
    outcome = real_outcome(module)
    wall = time.perf_counter()
    sim = Sim(args, outcome, module)
    setup_s = time.perf_counter() - wall
    sim.at(0.0, sim.submit_next, args.jobs)
    sim.run()
    wall_s = time.perf_counter() - wall
    s = sim.stats
    settled = s.submitted - s.requester_left
    jobs = max(1, s.submitted)
    return {
        "nodes": args.nodes,
        "jobs": s.submitted,
        "settled": settled,
        "succeeded": s.succeeded,
        "success_pct": 100.0 * s.succeeded / settled if settled else float("nan"),
        "requester_left": s.requester_left,
        "failed": dict(s.failed),
        "last_attempt": dict(s.last_attempt),
        "p50_ms": percentile(s.latencies, 0.50),
        "p90_ms": percentile(s.latencies, 0.90),
        "p99_ms": percentile(s.latencies, 0.99),
        "later_jobs": len(s.later_latencies),
        "later_p50_ms": percentile(s.later_latencies, 0.50),
        "later_p90_ms": percentile(s.later_latencies, 0.90),
        "later_p99_ms": percentile(s.later_latencies, 0.99),
        "attempts_mean": statistics.fmean(s.attempts) if s.attempts else 0.0,
        "messages_per_job": {k: v / jobs for k, v in sorted(s.messages.items())},
        "total_messages_per_job": sum(s.messages.values()) / jobs,
        "bytes_per_job": s.bytes / jobs,
        "dht_lookups": s.dht_lookups,
        "liar_results": s.liar_results,
        "liar_rejected": dict(s.liar_rejected),
        "liar_accepted": s.liar_accepted,
        "leaves": s.leaves,
        "ignored_answers": s.ignored_answers,
        "simulated_s": sim.now / 1000,
        "events": s.events,
        "setup_s": setup_s,
        "wall_s": wall_s,
    }


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"sim: {r['nodes']} nodes, {r['jobs']} jobs at {args.rate:g}/s, liars {args.liars:g}, "
        f"churn {args.churn:g}/min (downtime {args.downtime_s:g} s), RTT median "
        f"{args.latency_ms:g} ms (sigma {args.latency_sigma:g}), msg cost {args.msg_cost_ms:g} ms"
    )
    print(
        f"placement success     {r['success_pct']:.2f}% ({r['succeeded']}/{r['settled']}; "
        f"{r['requester_left']} dropped: their requester left)"
    )
    print(f"failures by code      {r['failed'] or '-'}")
    print(f"  last attempt        {r['last_attempt'] or '-'}")
    print(
        f"latency submit->verified  p50 {r['p50_ms']:.1f} ms  p90 {r['p90_ms']:.1f} ms  "
        f"p99 {r['p99_ms']:.1f} ms  (attempts/job {r['attempts_mean']:.2f})"
    )
    per = "  ".join(f"{k} {v:.2f}" for k, v in r["messages_per_job"].items())
    print(f"messages per job      {r['total_messages_per_job']:.2f}: {per}")
    print(f"bytes per job         {r['bytes_per_job']:.0f} (encoded offers, requests, answers)")
    share = 100 * r["dht_lookups"] / max(1, r["jobs"])
    print(f"DHT lookups           {r['dht_lookups']} ({share:.1f}% of jobs)")
    print(
        f"liar results          {r['liar_results']} received, rejected {r['liar_rejected'] or '-'},"
        f" ACCEPTED {r['liar_accepted']}"
    )
    print(
        f"churn                 {r['leaves']} leaves; {r['ignored_answers']} answers ignored by "
        "the machine"
    )
    print(
        f"simulation            {r['simulated_s']:.1f} s simulated in {r['wall_s']:.1f} s wall "
        f"(setup {r['setup_s']:.1f} s), {r['events']} events "
        f"({r['events'] / max(r['wall_s'], 1e-9):.0f}/s)"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = p.add_argument
    add("--nodes", type=int, default=10_000)
    add("--jobs", type=int, default=10_000)
    add("--rate", type=float, default=100.0, help="jobs submitted per simulated second")
    add("--liars", type=float, default=0.1, help="share of executors whose results lie")
    add("--churn", type=float, default=0.05, help="leaves per online node per minute")
    add("--downtime-s", type=float, default=60.0, help="mean time a node stays away")
    add("--graceful", type=float, default=0.5, help="share of leaves that close connections")
    add("--latency-ms", type=float, default=40.0, help="median round-trip time of a pair")
    add("--latency-sigma", type=float, default=0.6, help="log-normal sigma of the RTTs")
    add("--msg-cost-ms", type=float, default=1.0,
        help="CPU per message step (send a request, handle it, handle its answer)")
    add("--connect-ms", type=float, default=20.0, help="CPU of a new libp2p connection")
    add("--api-ms", type=float, default=5.0, help="a job's local path (API, ingress), once")
    add("--job-ms", type=float, default=100.0, help="median run time of a job")
    add("--compile-ms", type=float, default=40.0,
        help="added to a module's first run on a node (compiling it)")
    add("--slots", type=int, default=2, help="executor slots of a node with capacity")
    add("--no-capacity", type=float, default=0.1, help="share of nodes with 0 slots")
    add("--weak", type=float, default=0.2, help="share of nodes that fit no job (32 MiB)")
    add("--strong", type=float, default=0.05, help="share of nodes with 4 GiB")
    add("--big", type=float, default=0.05, help="share of jobs asking 1 GiB")
    add("--known", type=int, default=64, help="peers whose records a requester holds")
    add("--connected", type=float, default=1.0,
        help="share of those it holds a connection to (others are dialed when asked)")
    add("--alpha", type=int, default=3, help="parallel queries of a DHT lookup round")
    add("--max-jobs-per-peer", type=int, default=4)
    add("--rate-limit", type=int, default=120, help="offers per peer per minute")
    add("--seed", type=int, default=1)
    add("--validate", type=int, metavar="N", default=None,
        help="start a real devnet of N nodes, place --jobs jobs on it, then simulate it")
    add("--json", type=Path, default=None, help="also write the figures here")
    return p  # fmt: skip


def check(args: argparse.Namespace) -> None:
    shares = ("liars", "churn", "graceful", "no_capacity", "weak", "strong", "big", "connected")
    for name in shares:
        value = getattr(args, name)
        if not 0 <= value <= (10 if name == "churn" else 1):
            raise SystemExit(f"--{name.replace('_', '-')} must be a share in 0..1, got {value}")
    if args.weak + args.strong > 1:
        raise SystemExit("--weak + --strong must not exceed 1")
    if args.nodes < 2 or args.jobs < 1 or args.rate <= 0 or args.known < 1 or args.slots < 0:
        raise SystemExit("need --nodes >= 2, --jobs >= 1, --rate > 0, --known >= 1, --slots >= 0")
    for name in ("latency_ms", "msg_cost_ms", "connect_ms", "api_ms", "job_ms", "compile_ms",
                 "downtime_s"):
        if getattr(args, name) < 0:
            raise SystemExit(f"--{name.replace('_', '-')} must not be negative")


def main() -> None:
    import json

    args = parser().parse_args()
    check(args)
    if args.validate is not None:
        from bench.bench_sim_validate import validate

        validate(args)
        return
    result = simulate(args)
    report(result, args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

