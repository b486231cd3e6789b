"""The determinism profile across node settings: the same jobs on real daemons that differ in
executor count, pool slots, CPU affinity, compile workers, queue length, cold and warm compile
caches (memory and disk) and network setup (a second node on its own port that runs the jobs
another node sends it) give byte-identical receipt bodies once the per-run fields are set
aside.

  quiet   --no-network, 1 executor, 1 pool slot, cpu_affinity off, 1 compile worker;
          every job twice (the second from the in-memory compile cache), then restarted on
          the same state dir and every job again (compiled code from the disk cache)
  busy    network on its own TCP port, 2 executors, 40 pool slots, affinity auto, 3 compile
          workers, a 4-job queue, a compile cache of 1 byte in memory (always from disk);
          all jobs submitted at once, so they run side by side
  sender  bootstraps from busy and sends every job to it: busy signs the receipts, with
          another requester and nonce

What differs between runs is listed in PER_RUN_FIELDS (the replay command's list, which this
test also checks is exactly the per-run part of a body).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import cbor2
import pytest
from daemon_checks import checked_result, example_bytes, wait_for_status, write_config

from plasm.client import ApiRequestError
from plasm.protocol.cose import decode_sign1
from plasm.protocol.receipt import MAX_ENVELOPE_SIZE
from plasm.replay import PER_RUN_FIELDS
from tests.conftest import running_daemons
from tests.p2p.conftest import peer_id_of, seed_address, verified_peers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Written out here so that a new field in the body makes this test (and the replay list)
# be looked at again rather than silently treated as deterministic.
EXPECTED_PER_RUN = {
    "job_id", "nonce", "requester", "executor", "started_at_ms", "finished_at_ms", "wall_time_us",
}  # fmt: skip
LIMITS = {"fuel": 5 * 10**9, "memory_bytes": 64 * 2**20, "timeout_ms": 60_000}
WAIT_S = 120
FILES = [
    {"path": "/input/a.txt", "content": base64.b64encode(b"alpha\n").decode()},
    {"path": "/input/deep/b.bin", "content": base64.b64encode(bytes(range(256)) * 9).decode()},
]
# name -> (example module, manifest fields)
JOBS: dict[str, tuple[str, dict]] = {
    "hello-arg": ("hello", {"args": ["determinism"]}),
    "hello-stdin": ("hello", {"stdin": base64.b64encode(b"from stdin\n").decode()}),
    "primes": ("primes", {"args": ["40000"]}),
    "clock-random": ("clock_random", {}),
    "clock-random-seeded": ("clock_random", {"seed": "0a0b0c", "epoch_ms": 86_400_000}),
    "floats": ("floats", {"args": ["5000"]}),
    "files": ("sha256sum", {"files": FILES}),
    "copy-files": ("copyfiles", {"files": FILES}),
    "wc": ("wc", {"stdin": base64.b64encode(b"one two\nthree\n" * 500).decode()}),
    "env-args": ("env_args", {"args": ["x", "--flag"], "env": {"K": "V", "EMPTY": ""}}),
    "exit3": ("exit3", {}),
    "trap": ("trap", {}),
}
QUIET = """\
[executor]
count = 1
pool_slots = 1
cpu_affinity = "off"
compile_workers = 1
"""
BUSY = """\
[executor]
count = 2
pool_slots = 40
cpu_affinity = "auto"
compile_workers = 3
queue_length = 4
module_cache_memory_bytes = 1
"""


def manifest(job: str) -> dict:
    module, fields = JOBS[job]
    wasm = base64.b64encode(example_bytes(module)).decode()
    return {"module": wasm, "module_name": f"{module}.wasm", "limits": LIMITS, **fields}


def body(result: dict) -> dict:
    """The signed receipt body of `result`, after checking the receipt signs the result."""
    checked_result(result)
    cose = decode_sign1(base64.b64decode(result["receipt"]["cose"]), max_size=MAX_ENVELOPE_SIZE)
    decoded = cbor2.loads(cose.payload)
    assert isinstance(decoded, dict)
    return decoded


def deterministic(signed: dict) -> bytes:
    """The body without its per-run fields, re-encoded canonically."""
    assert signed.keys() >= EXPECTED_PER_RUN, sorted(signed)
    return cbor2.dumps(
        {k: v for k, v in signed.items() if k not in EXPECTED_PER_RUN}, canonical=True
    )


def differing(one: dict, other: dict) -> list[str]:
    keys = (one.keys() | other.keys()) - EXPECTED_PER_RUN
    return sorted(k for k in keys if one.get(k) != other.get(k))


def submit(client, job: dict) -> str:
    """POST the job; a full queue (429 busy) is waited out, as a client should."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return str(client.request("POST", "/v1/jobs", json=job)["job_id"])
        except ApiRequestError as exc:
            if exc.status != 429 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run_all(daemon, placement: dict | None = None, at_once: int = len(JOBS)
            ) -> dict[str, dict]:  # fmt: skip
    """Submit the jobs `at_once` at a time, waiting for each batch: name -> signed body."""
    names, jobs = list(JOBS), {}
    with daemon.client(timeout=WAIT_S) as client:
        for start in range(0, len(names), at_once):
            ids = {
                job: submit(client, manifest(job) | ({"placement": placement} if placement else {}))
                for job in names[start : start + at_once]
            }
            jobs |= {
                job: wait_for_status(client, job_id, timeout=WAIT_S) for job, job_id in ids.items()
            }
    failed = {job: info.get("error") for job, info in jobs.items() if info["status"] != "done"}
    assert failed == {}, failed
    return {job: body(info["result"]) for job, info in jobs.items()}


@pytest.fixture(autouse=True)
def own_cpu_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Daemons with cpu_affinity auto claim CPUs in a directory of this test's own."""
    monkeypatch.setenv("PLASM_CPU_CLAIM_DIR", str(tmp_path / "cpu-claims"))


def test_the_per_run_fields_are_the_replay_list() -> None:
    assert set(PER_RUN_FIELDS) == EXPECTED_PER_RUN


def test_receipt_bodies_are_identical_across_node_settings(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    (tmp_path / "quiet").mkdir()
    (tmp_path / "busy").mkdir()
    runs: dict[str, dict[str, dict]] = {}
    with running_daemons(tmp_path_factory) as make:
        quiet = make(config=write_config(tmp_path / "quiet", QUIET))
        runs["quiet, cold cache"] = run_all(quiet)
        runs["quiet, warm memory cache"] = run_all(quiet)
        assert quiet.stop() == 0
        cached = [p for p in (quiet.state_dir / "cache" / "modules").rglob("*") if p.is_file()]
        assert len(cached) >= len({module for module, _ in JOBS.values()}), cached
        quiet.start()  # an empty memory cache: compiled code comes from the disk cache
        runs["quiet restarted, warm disk cache"] = run_all(quiet)
        quiet.stop()

        busy = make(config=write_config(tmp_path / "busy", BUSY), network=True)
        runs["busy, side by side"] = run_all(busy)
        busy_id = peer_id_of(busy)
        sender = make(None, "--bootstrap", seed_address(busy), network=True)
        wait_until(lambda: busy_id in verified_peers(sender), "sender to verify busy's record")
        # A peer placement is not retried when the peer is busy (its queue holds 4 and it
        # takes 4 jobs from one peer at a time): send no more than its two executors run.
        runs["sent to busy by another node"] = run_all(
            sender, {"mode": "peer", "peer_id": busy_id}, at_once=2
        )

    baseline_name, baseline = next(iter(runs.items()))
    for job, signed in baseline.items():
        assert signed["profile"] == "wasi-p1-det/1", (job, signed["profile"])
    assert baseline["exit3"]["exit_code"] == 3 and baseline["trap"]["outcome"] == "trap"
    # The clock/random job sees another clock and stream with another seed and epoch.
    assert (
        baseline["clock-random"]["stdout_sha256"]
        != baseline["clock-random-seeded"]["stdout_sha256"]
    )
    differences = [
        f"{job}: {name} differs from {baseline_name} in {differing(signed, baseline[job])}"
        for name, bodies in runs.items()
        for job, signed in bodies.items()
        if deterministic(signed) != deterministic(baseline[job])
    ]
    assert differences == [], "\n".join(differences)
    # And the per-run fields did vary, so setting them aside was needed (not vacuous).
    sent = runs["sent to busy by another node"]
    for job in JOBS:
        assert sent[job]["requester"] != baseline[job]["requester"]
        assert sent[job]["nonce"] != baseline[job]["nonce"]
        assert len({bodies[job]["job_id"] for bodies in runs.values()}) == len(runs)
