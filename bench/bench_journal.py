"""Jobs per second through the journal: add_job + mark_running + finish_job (with receipt).

Run: .venv/bin/python -m bench journal [--jobs N]

Prints figures for synchronous=normal and synchronous=full, and their ratio, measured in one
run on a temporary file in the system temp dir (so on the same disk). Then what the receipt
log costs: the journal actor's batched path (64 jobs per transaction, as MAX_BATCH) without
the log, and with it (a leaf per receipt, one Ed25519-signed tree head per batch, each job's
inclusion proof computed for its answer), in interleaved rounds, best of each, in batches
of 64 (a full inbox) and of 4 (about what bench api's 8 clients give). Last, what a COSE
receipt costs to sign and to verify, against a hello.wasm run in the same process.
No assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import orjson
from nacl.signing import SigningKey

from plasm.actors.journal import MAX_BATCH
from plasm.actors.journal_store import JournalStore
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.transparency import head_signer

MANIFEST = b'{"module_sha256":"' + b"ab" * 32 + b'","args":["hello"],"stdin":"aGVsbG8="}'
RESULT = b'{"job_id":"x","status":"done","stdout":"SGVsbG8sIFdvcmxkIQo="}' + b" " * 800
ENVELOPE = os.urandom(420)  # about the size of a real receipt envelope


def jobs_per_second(path: Path, synchronous: str, jobs: int) -> float:
    with JournalStore(path, synchronous=synchronous) as store:
        start = time.perf_counter()
        for n in range(jobs):
            job_id = f"{n:032x}"
            store.add_job(job_id, MANIFEST, "ab" * 32, created_at_ms=n)
            store.mark_running(job_id, started_at_ms=n)
            store.finish_job(
                job_id,
                "done",
                finished_at_ms=n,
                outcome="ok",
                result=RESULT,
                envelope=ENVELOPE,
                error=None,
            )
        elapsed = time.perf_counter() - start
    return jobs / elapsed


def batched_us_per_job(
    path: Path, jobs: int, logged: bool, first: int = 0, batch_size: int = MAX_BATCH
) -> float:
    """Per-job time of `jobs` jobs in batches of `batch_size`, as the journal actor writes
    them (MAX_BATCH when its inbox is full; a few under bench api's 8 clients)."""
    key = SigningKey(bytes(32))
    node = peer_id_from_public_key(key.verify_key.encode())

    sign = head_signer(key)

    with JournalStore(path) as store:
        start = time.perf_counter()
        for batch in range(first, first + jobs, batch_size):
            store.begin_batch()
            leaves = []
            for n in range(batch, min(batch + batch_size, first + jobs)):
                job_id = f"{n:032x}"
                store.add_job(job_id, MANIFEST, "ab" * 32, created_at_ms=n, started_at_ms=n)
                index = store.finish_job(
                    job_id, "done", finished_at_ms=n, outcome="ok", result=RESULT,
                    envelope=ENVELOPE + n.to_bytes(8, "big"), error=None, logged=logged,
                )
                if index is not None:
                    leaves.append((job_id, index))
            head = store.sign_tree_head(node, batch, sign) if leaves else None
            if head is not None:
                answers = []  # each job's answer with its proof, as the journal actor's
                for _, index in leaves:
                    proof = orjson.dumps(store.log_proof(index, head).to_json())
                    answers.append(RESULT[:-1] + b',"log":' + proof + b"}")
            store.commit_batch()
        elapsed = time.perf_counter() - start
    return elapsed / jobs * 1e6


def receipt_costs(count: int = 2000) -> None:
    """What a COSE_Sign1 receipt costs: hello.wasm's run (the baseline, same process), the
    receipt built and signed, and verified offline as `plasmd verify` does."""
    from plasm.protocol.receipt import build_receipt, sign_receipt, verify_envelope
    from plasm.runtime.job import JobInput, Limits
    from plasm.runtime.sandbox import Sandbox

    key = SigningKey(os.urandom(32))
    peer = peer_id_from_public_key(bytes(key.verify_key))
    module = (Path(__file__).resolve().parent.parent / "wasm-examples" / "hello.wasm").read_bytes()
    job_input, limits = JobInput(stdin=b"Hello, World", module_name="hello.wasm"), Limits()
    with Sandbox() as sandbox:
        sha = sandbox.compile(module).sha256
        outcome = sandbox.run(module, job_input, limits)
        run = _us(lambda: sandbox.run(module, job_input, limits), count)
        engine = sandbox.engine_name, sandbox.engine_version

    def signed() -> bytes:
        return sign_receipt(build_receipt(
            job_id="0" * 32, module_sha256=sha, job_input=job_input, limits=limits,
            outcome=outcome, engine_name=engine[0], engine_version=engine[1], executor=peer,
            requester=peer, nonce=bytes(16)), key)  # fmt: skip

    envelope = signed()
    sign = _us(signed, count)
    verify = _us(lambda: verify_envelope(envelope, expected_executor=peer,
                                         stdout=outcome.stdout, stderr=outcome.stderr), count)
    print(f"hello.wasm run (baseline):     {run:8.1f} us")
    print(f"receipt built + COSE-signed:   {sign:8.1f} us ({sign / run:.2f}x the run)")
    print(f"receipt verified (COSE + body):{verify:8.1f} us ({verify / run:.2f}x the run)")


def _us(fn, count: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - start) / count * 1e6


def module_puts_per_second(path: Path, count: int) -> float:
    modules = [os.urandom(16 * 1024) for _ in range(count)]
    with JournalStore(path) as store:
        start = time.perf_counter()
        for data in modules:
            store.put_module(hashlib.sha256(data).hexdigest(), data)
        elapsed = time.perf_counter() - start
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        normal = jobs_per_second(Path(tmp) / "normal.sqlite3", "normal", args.jobs)
        full = jobs_per_second(Path(tmp) / "full.sqlite3", "full", max(args.jobs // 5, 100))
        puts = module_puts_per_second(Path(tmp) / "modules.sqlite3", 500)
        print(f"journal synchronous=normal: {normal:10,.0f} jobs/s (3 transactions per job)")
        print(f"journal synchronous=full:   {full:10,.0f} jobs/s")
        print(f"normal / full ratio:        {normal / full:10.1f}x")
        print(f"put_module (16 KiB, new):   {puts:10,.0f} modules/s")
        for batch_size in (MAX_BATCH, 4):
            plain, logged = [], []
            for round_ in range(5):  # interleaved, on growing files: the log's depth counts
                offset = round_ * args.jobs
                for name, into, log in (("plain", plain, False), ("log", logged, True)):
                    path = Path(tmp) / f"{name}-{batch_size}.sqlite3"
                    into.append(batched_us_per_job(path, args.jobs, log, offset, batch_size))
            best_plain, best_logged = min(plain), min(logged)
            print(f"{batch_size:2d} per batch, no receipt log:   {best_plain:8.1f} us/job")
            print(f"{batch_size:2d} per batch, with receipt log: {best_logged:8.1f} us/job "
                  f"(+{best_logged - best_plain:.1f} us, {best_logged / best_plain:.2f}x; "
                  f"log of {5 * args.jobs} leaves)")
        receipt_costs()


if __name__ == "__main__":
    main()
