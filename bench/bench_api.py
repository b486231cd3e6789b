"""hello.wasm through a real plasmd over its Unix socket (no assertions).

    python -m bench api [--jobs N] [--clients C]

Starts a daemon in a temporary state dir, uploads hello.wasm once, then:
  floor       the work of one job as plain calls in this process (Sandbox.run,
              build_receipt, sign_receipt) -- what no API can beat;
  health      GET /v1/health round trips: the HTTP + socket cost alone;
  sequential  POST /v1/jobs?wait=30 by module_sha256, one at a time: median and p99;
  concurrent  C clients (threads, keep-alive connections) submitting and waiting;
  idle        with --idle N: N connections held open and silent; the daemon's threads
              and RSS, and GET /v1/health while they are held.

Targets (issue 3): sequential median <= 3 ms (about 7x the floor), concurrent >= 400 jobs/s.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nacl.signing import SigningKey

from plasm.client import Client, ClientError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import build_receipt, sign_receipt
from plasm.runtime.job import JobInput, Limits
from plasm.runtime.sandbox import Sandbox

# --idle runs need connections to stay: more than the default max, a long idle timeout.
EXTRA_CONFIG = ""
HELLO = Path(__file__).resolve().parent.parent / "wasm-examples" / "hello.wasm"


def floor_ms(jobs: int) -> float:
    key = SigningKey(os.urandom(32))
    peer = peer_id_from_public_key(bytes(key.verify_key))
    module = HELLO.read_bytes()
    job_input, limits = JobInput(stdin=b"Hello, World", module_name="hello.wasm"), Limits()
    with Sandbox() as sandbox:
        sha = sandbox.compile(module).sha256
        start = time.perf_counter()
        for i in range(jobs):
            outcome = sandbox.run(module, job_input, limits)
            sign_receipt(build_receipt(
                job_id=f"{i:032x}", module_sha256=sha, job_input=job_input, limits=limits,
                outcome=outcome, engine_name=sandbox.engine_name,
                engine_version=sandbox.engine_version, executor=peer, requester=peer,
                nonce=os.urandom(16)), key)
        return (time.perf_counter() - start) / jobs * 1e3


def start_daemon(base: Path) -> tuple[subprocess.Popen[bytes], Path]:
    config = base / "plasmd.toml"
    config.write_text("[executor]\nqueue_length = 4096\n[network]\nenabled = false\n"
                      "[log]\nlevel = \"warning\"\n" + EXTRA_CONFIG)
    socket = base / "api.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "plasm.cli", "run", "--config", str(config), "--state-dir",
         str(base / "state"), "--socket", str(socket), "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=open(base / "log", "wb"),  # noqa: SIM115
        env={**os.environ, "PLASM_STRICT_MESSAGES": "0"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with Client(socket, timeout=2) as client:
                client.health()
            return proc, socket
        except ClientError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("plasmd did not start")


def timed(fn, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def concurrent_jobs_per_s(socket: Path, sha: str, clients: int, jobs: int) -> float:
    per_client = jobs // clients
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with Client(socket) as client:
                for _ in range(per_client):
                    client.submit(module_sha256=sha, stdin=b"Hello, World", wait=30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"a client failed: {errors[0]}")
    return per_client * clients / elapsed


def daemon_footprint(pid: int) -> tuple[int, float]:
    """(threads, RSS in MiB) of process `pid`, from /proc."""
    threads = len(os.listdir(f"/proc/{pid}/task"))
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:"))
    return threads, rss_kib / 1024


def idle_phase(proc: subprocess.Popen[bytes], path: Path, count: int) -> None:
    import resource
    import socket as sockets

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 1000)), hard))
    before = daemon_footprint(proc.pid)
    held = []
    try:
        for _ in range(count):
            sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
            held.append(sock)
            sock.connect(str(path))
        time.sleep(1)  # let the daemon accept them all
        threads, rss = daemon_footprint(proc.pid)
        with Client(path) as client:
            health = timed(client.health, 500)
    finally:
        for sock in held:
            sock.close()
    print(f"idle: {count} connections held: threads {before[0]} -> {threads}, "
          f"RSS {before[1]:.0f} -> {rss:.0f} MiB, GET /v1/health median "
          f"{statistics.median(health):.3f} ms, p99 {sorted(health)[494]:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--idle", type=int, default=0, help="idle connections to hold")
    args = parser.parse_args()
    if args.idle:
        global EXTRA_CONFIG
        EXTRA_CONFIG = (f"[api]\nmax_connections = {args.idle + 100}\n"
                        "idle_timeout_ms = 600000\n")
    floor = floor_ms(args.jobs)
    with tempfile.TemporaryDirectory(prefix="plasm-bench-") as tmp:
        proc, socket = start_daemon(Path(tmp))
        try:
            with Client(socket) as client:
                sha = client.upload_module(HELLO.read_bytes())
                timed(lambda: client.submit(module_sha256=sha, stdin=b"x", wait=30), 100)
                health = timed(client.health, args.jobs)
                sequential = timed(
                    lambda: client.submit(module_sha256=sha, stdin=b"Hello, World", wait=30),
                    args.jobs)
            rate = concurrent_jobs_per_s(socket, sha, args.clients, args.jobs * 2)
            if args.idle:
                idle_phase(proc, socket, args.idle)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    sequential.sort()
    median = statistics.median(sequential)
    p99 = sequential[int(len(sequential) * 0.99)]
    print(f"hello.wasm over the Unix socket, {args.jobs} jobs, {os.cpu_count()} CPUs")
    print(f"{'measure':<40}{'ms':>9}{'x floor':>9}")
    print(f"{'floor: run+receipt+sign, plain calls':<40}{floor:>9.3f}{1:>9.2f}")
    print(f"{'GET /v1/health median':<40}{statistics.median(health):>9.3f}"
          f"{statistics.median(health) / floor:>9.2f}")
    print(f"{'POST /v1/jobs?wait median':<40}{median:>9.3f}{median / floor:>9.2f}")
    print(f"{'POST /v1/jobs?wait p99':<40}{p99:>9.3f}{p99 / floor:>9.2f}")
    print(f"concurrent: {args.clients} clients -> {rate:.0f} jobs/s")
    print(f"targets: median <= 3 ms -> {median:.2f} ms; >= 400 jobs/s -> {rate:.0f} jobs/s")


if __name__ == "__main__":
    main()
