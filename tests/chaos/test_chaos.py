"""Chaos: 10 real daemons, one lying, one slow, others SIGKILLed and restarted at random,
while jobs with `any` placement are submitted from several nodes (issue 15).

The cluster (real `plasmd run` processes on loopback, cpu_affinity off). A requester ranks
peers by trust, then free slots, then latency: the killable executors get two slots, the
others one, so the `any` jobs go mostly to nodes that get killed.

  n0        the seed; every other node bootstraps from it; never killed
  n1 n2     requesters, never killed
  n3        a requester that is also SIGKILLed and restarted (jobs it had accepted and not
            finished end `interrupted`; submissions it cannot answer go to another requester)
  liar      tests/p2p/liar_node.py in its default `forge` mode, 3 executor slots (more
            free slots than any other node: each requester offers it a job first, until
            its first rejected receipt ranks it last). Its receipts carry a
            valid signature over a forged stdout hash, so they fail verification. That is
            the liar used here because with plain `any` placement a requester has one
            receipt per job and nothing to compare it with: a liar whose receipts verify
            (PLASM_LIE=output:...) is indistinguishable from an honest node without a quorum.
            A forged receipt is detectable, and the invariant is that none is ever accepted:
            no done job names the liar as its executor, and every done job's receipt
            verifies offline against its result and output.
  slow      tests/chaos/slow_node.py: honest, but every job sleeps PLASM_SLOW_S (2 s) before
            it runs (no fault point delays a job, so a small wrapper does, like the liar's);
            two slots, so it ranks first while free and is often killed mid-job.
  n6..n9    honest executors with two slots, killed and restarted at random

Jobs: two in three are hello.wasm (it prints its stdin reversed) with a distinct stdin
each, one in three primes.wasm counting the primes below a distinct N near 800,000 (about
0.2 s of compute, so kills land mid-run; the count is checked against a sieve), placement
`{"mode": "any", "exclude_self": true}`, submitted round robin to n1..n3 by a pool of 8
threads (each waits up to 60 s for its job; a job still running then is polled later),
PLASM_CHAOS_RATE (3) submissions started per second so the load outlasts many kills. A
chaos thread meanwhile SIGKILLs a random killable node every 2-4 s (two times in three one
that is running a job, when one is) and restarts it (same state dir, same config, new port)
1-2 s later.

Invariants checked at the end, after every node is running again:
  - every job a requester accepted (an answer with a job ID) is final on that requester:
    `done` with a receipt that verifies offline (plasm.protocol.verification), signed for
    that requester, executor neither the liar nor the requester, output as expected
    (outcome ok; a signed wall-clock `timeout` is allowed too: jobs get 60 s, yet a
    machine shared with other suites has run out of it); or `failed`/`interrupted` with
    an error code and message;
  - no receipt from the liar was accepted (above), and the liar was offered jobs: the
    requesters counted its rejected receipts;
  - no journal lost a job it acknowledged: every accepted job is in its requester's
    journal, and every done job is in its executor's journal (the executor signed a
    receipt for it, killed and restarted or not);
  - every node answers /v1/health and runs a local job; the liar's local receipt still
    fails verification (it kept lying throughout).

Size: PLASM_CHAOS_JOBS (default 200, the CI run, ~2 minutes on 2 cores; about 7 for
1000). The full run:

    PLASM_CHAOS_JOBS=1000 .venv/bin/python -m pytest -q -p no:cacheprovider -s -m chaos \\
        tests/chaos --timeout 1800

The figures (accepted, done, failed by code, kills, wall time) are printed with -s.
PLASM_CHAOS_SEED fixes the chaos thread's random choices (printed otherwise).
"""

from __future__ import annotations

import base64
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from plasm.client import ApiRequestError, ClientError, DaemonUnavailableError
from plasm.protocol.verification import expectations_from_saved, verify_saved
from tests.conftest import Daemon, example, running_daemons
from tests.p2p.conftest import peer_id_of, seed_address, verified_peers, write_config

JOBS = int(os.environ.get("PLASM_CHAOS_JOBS", "200"))
RATE = float(os.environ.get("PLASM_CHAOS_RATE", "3"))  # submissions started per second
IN_FLIGHT = 8
RESTART_TIMEOUT_S = 120
FORM_TIMEOUT_S = 240  # the machine may be busy: forming ten nodes can take a while
HERE = Path(__file__).resolve().parent
LIAR = (sys.executable, str(HERE.parent / "p2p" / "liar_node.py"))
SLOW = (sys.executable, str(HERE / "slow_node.py"))
PLACEMENT = {"mode": "any", "exclude_self": True}
LIMITS = {"timeout_ms": 60_000}  # the default 10 s is short on a machine shared with others
FINAL = {"done", "failed", "cancelled", "interrupted", "rejected", "disputed"}
# The CI size takes a few minutes; the bound grows with the number of jobs.
TIMEOUT_S = 600 + 2 * JOBS
MODULES = {name: example(name).read_bytes() for name in ("hello", "primes")}

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(TIMEOUT_S)]


@dataclass
class Node:
    name: str
    daemon: Daemon
    peer_id: str = ""
    killable: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while down


@dataclass
class Accepted:
    job_id: str
    node: Node
    job: Job


@dataclass
class Record:
    accepted: list[Accepted] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # submissions not accepted
    kills: Counter[str] = field(default_factory=Counter)
    chaos_errors: list[str] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)  # how long each restart took
    lock: threading.Lock = field(default_factory=threading.Lock)


class Cluster:
    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.by_name = {node.name: node for node in nodes}
        self.requesters = [self.by_name[name] for name in ("n1", "n2", "n3")]
        self.liar = self.by_name["liar"]
        self.ids = {node.peer_id: node for node in nodes}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("chaos")
    one = write_config(tmp, "one", '[executor]\ncount = 1\ncpu_affinity = "off"\n')
    two = write_config(tmp, "two", '[executor]\ncount = 2\ncpu_affinity = "off"\n')
    with running_daemons(tmp_path_factory) as make:
        seed = make(config=one, network=True)
        boot = ("--bootstrap", seed_address(seed))
        nodes = [Node("n0", seed)]
        for name in ("n1", "n2", "n3"):
            nodes.append(Node(name, make(None, *boot, config=one, network=True),
                              killable=name == "n3"))
        three = write_config(tmp, "three", '[executor]\ncount = 3\ncpu_affinity = "off"\n')
        nodes.append(Node("liar", make(None, *boot, config=three, network=True, program=LIAR)))
        nodes.append(Node("slow", make(None, *boot, config=two, network=True, program=SLOW,
                                       env={"PLASM_SLOW_S": "2"}), killable=True))
        for index in range(6, 10):
            nodes.append(Node(f"n{index}", make(None, *boot, config=two, network=True),
                              killable=True))
        for node in nodes:
            node.peer_id = peer_id_of(node.daemon)
        found = Cluster(nodes)
        everyone = set(found.ids)
        for requester in found.requesters:
            def missing(r: Node = requester) -> list[str]:
                seen = verified_peers(r.daemon)
                return [found.ids[p].name for p in everyone - {r.peer_id} - seen]

            deadline = time.monotonic() + FORM_TIMEOUT_S
            while (lacking := missing()) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not lacking, f"{requester.name} has not verified {lacking}"
        yield found


PRIMES_FROM = 800_000  # primes jobs count the primes below PRIMES_FROM + index (~0.2 s)


def primes_below(limit: int) -> list[int]:
    """count[n] = the number of primes below n, for n < limit (a sieve)."""
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\0\0"
    for n in range(2, int(limit**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit, n)))
    counts, total = [0] * limit, 0
    for n in range(limit):
        counts[n] = total
        total += sieve[n]
    return counts


@dataclass(frozen=True)
class Job:
    """One job of the load and the stdout it must print."""

    module: str
    stdin: bytes = b""
    args: tuple[str, ...] = ()
    expected: bytes = b""


def job_for(index: int, primes: list[int]) -> Job:
    if index % 3 == 2:  # a third of the jobs compute for a while: kills land mid-run
        n = PRIMES_FROM + index
        return Job("primes", args=(str(n),), expected=f"{primes[n]}\n".encode())
    stdin = f"chaos job {index:05d} {random.random():.9f}".encode()
    return Job("hello", stdin=stdin, expected=stdin[::-1] + b"\n")


def submit_one(cluster: Cluster, record: Record, index: int, job: Job, started: float) -> None:
    # Paced, so the load lasts long enough for the chaos thread to hit it many times.
    time.sleep(max(0.0, started + index / RATE - time.monotonic()))
    module = MODULES[job.module]
    for turn in range(len(cluster.requesters)):
        node = cluster.requesters[(index + turn) % len(cluster.requesters)]
        try:
            with node.daemon.client(timeout=30) as client:
                answer = client.submit(module=module, module_name=f"{job.module}.wasm",
                                       stdin=job.stdin, args=job.args, placement=PLACEMENT,
                                       limits=LIMITS, wait=60)
        except ApiRequestError as exc:
            with record.lock:
                record.refused[exc.code] += 1
            return
        except DaemonUnavailableError:
            with record.lock:
                record.refused["unavailable"] += 1
            continue  # that requester is down (or went down mid-request): try the next
        except ClientError:
            with record.lock:
                record.refused["no_answer"] += 1
            continue
        with record.lock:
            record.accepted.append(Accepted(answer["job_id"], node, job))
        return


def busy(node: Node) -> bool:
    """Whether the node is running a job now (a node that does not answer is not)."""
    try:
        with node.daemon.client(timeout=5) as client:
            return bool(client.jobs(status="running", limit=1))
    except ClientError:
        return False


def chaos(cluster: Cluster, record: Record, stop: threading.Event, rng: random.Random) -> None:
    killable = [node for node in cluster.nodes if node.killable]
    while not stop.wait(rng.uniform(2.0, 4.0)):
        # Two kills in three go to a node that is running a job, when one is.
        running = [node for node in killable if busy(node)] if rng.random() < 2 / 3 else []
        node = rng.choice(running or killable)
        with node.lock:
            node.daemon.kill()
            record.kills[node.name] += 1
            time.sleep(rng.uniform(1.0, 2.0))
            began = time.monotonic()
            try:
                # A loaded machine (2 cores, other suites) can take a while to start Python.
                node.daemon.start(ready_timeout=RESTART_TIMEOUT_S)
                record.restart_s.append(time.monotonic() - began)
            except AssertionError as exc:  # it did not come back: the test fails below
                record.chaos_errors.append(f"{node.name}: {exc}")
                return


def job_of(node: Node, job_id: str) -> dict[str, Any]:
    with node.daemon.client(timeout=30) as client:
        job: dict[str, Any] = client.job(job_id)
    return job


def final_job(node: Node, job_id: str, deadline: float) -> dict[str, Any]:
    while True:
        job = job_of(node, job_id)
        if job["status"] in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def check_done(cluster: Cluster, accepted: Accepted, job: dict[str, Any]) -> Node:
    """The done job's receipt verifies offline; the executor it names is honest."""
    result = job["result"]
    envelope, expected = expectations_from_saved(orjson.dumps(result))
    verdict = verify_saved(envelope, expected)
    assert verdict["valid"], (accepted.job_id, verdict)
    assert verdict["checked_output"]
    assert verdict["receipt"]["requester"] == accepted.node.peer_id
    # Only a run that ended ok printed its output; a timeout (the wall clock ran out on a
    # machine busier than the limit allows for) is an honest, signed outcome too.
    kind = result["outcome"]["kind"]
    assert kind in ("ok", "timeout"), (accepted.job_id, result["outcome"])
    if kind == "ok":
        assert base64.b64decode(result["stdout"]) == accepted.job.expected, accepted
    executor = result["executor"]
    assert executor != cluster.liar.peer_id, f"{accepted.job_id}: a receipt from the liar"
    assert executor != accepted.node.peer_id  # exclude_self
    assert executor in cluster.ids, executor
    return cluster.ids[executor]


def test_jobs_survive_a_liar_a_slow_node_and_random_kills(cluster: Cluster) -> None:
    hello = MODULES["hello"]
    primes = primes_below(PRIMES_FROM + JOBS)
    record = Record()
    seed = int(os.environ.get("PLASM_CHAOS_SEED", str(random.randrange(1 << 32))))
    print(f"\nchaos: {JOBS} jobs, seed {seed}")
    stop = threading.Event()
    chaos_thread = threading.Thread(
        target=chaos, args=(cluster, record, stop, random.Random(seed)), daemon=True
    )
    started = time.monotonic()
    chaos_thread.start()
    try:
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            for future in [pool.submit(submit_one, cluster, record, i, job_for(i, primes), started)
                           for i in range(JOBS)]:
                future.result()
    finally:
        stop.set()
        chaos_thread.join(timeout=60)
    assert not chaos_thread.is_alive()
    assert not record.chaos_errors, record.chaos_errors
    submitted_s = time.monotonic() - started
    for node in cluster.nodes:  # every node is running again
        assert node.daemon.proc is not None and node.daemon.proc.poll() is None, node.name

    # Every accepted job is final on the requester that accepted it.
    deadline = time.monotonic() + 180
    statuses: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    executors: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()  # of the done jobs
    stuck = []
    problems: list[str] = []
    for accepted in record.accepted:
        job = final_job(accepted.node, accepted.job_id, deadline)
        assert job["job_id"] == accepted.job_id  # in the journal: not lost
        statuses[job["status"]] += 1
        if job["status"] not in FINAL:
            stuck.append((accepted.node.name, accepted.job_id, job["status"]))
        elif job["status"] == "done":
            try:
                executor = check_done(cluster, accepted, job)
                # The executor signed a receipt for it: its journal has the job too.
                assert job_of(executor, accepted.job_id)["job_id"] == accepted.job_id
            except AssertionError as exc:
                problems.append(f"{accepted.node.name} {accepted.job_id}: {exc}")
                continue
            executors[executor.name] += 1
            outcomes[job["result"]["outcome"]["kind"]] += 1
        else:
            error = job.get("error") or {}
            if not (error.get("code") and error.get("message")):
                problems.append(f"{accepted.node.name} {accepted.job_id}: no clear error {job}")
            failures[f"{job['status']}/{error.get('code')}"] += 1
    total_s = time.monotonic() - started
    print(
        f"chaos: accepted {len(record.accepted)} of {JOBS}, statuses {dict(statuses)}, "
        f"done by outcome {dict(outcomes)}, "
        f"failed by code {dict(failures)}, not accepted {dict(record.refused)}, "
        f"kills {sum(record.kills.values())} {dict(record.kills)}, executors {dict(executors)}, "
        f"slowest restart {max(record.restart_s, default=0):.1f} s, "
        f"submitted in {submitted_s:.0f} s, all final in {total_s:.0f} s"
    )
    assert not stuck, f"jobs still not final: {stuck[:10]}"
    assert not problems, f"{len(problems)} bad jobs: {problems[:5]}"
    assert len(record.accepted) >= JOBS * 0.9, record.refused
    assert sum(record.kills.values()) >= 1

    # The liar was offered jobs and its receipts were rejected: by each requester that was
    # never restarted (it offered the liar, which advertises the most free slots, its first
    # job) -- a restarted one starts its counts afresh.
    rejected = {}
    for requester in cluster.requesters:
        with requester.daemon.client() as client:
            peers = {p["peer_id"]: p for p in client.peers()}
        liar = peers.get(cluster.liar.peer_id, {})
        rejected[requester.name] = int(liar.get("receipts_rejected", 0))
    print(f"chaos: the liar's receipts rejected, by requester: {rejected}")
    assert all(rejected[r.name] >= 1 for r in cluster.requesters if not r.killable), rejected

    # Every node still answers and runs a job.
    for node in cluster.nodes:
        stdin = f"after the chaos, {node.name}".encode()
        with node.daemon.client(timeout=60) as client:
            assert client.health()["status"] == "ok"
            result = client.submit(module=hello, stdin=stdin, placement={"mode": "local"},
                                   wait=30)
        assert result["status"] == "done", (node.name, result)
        assert base64.b64decode(result["stdout"]) == stdin[::-1] + b"\n"
        verdict = verify_saved(*expectations_from_saved(orjson.dumps(result)))
        assert verdict["valid"] is (node is not cluster.liar), (node.name, verdict)
