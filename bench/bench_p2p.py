"""Remote hello.wasm between two real plasmd daemons on loopback (no assertions).

    python -m bench p2p [--jobs N] [--clients C] [--profile DIR]

Starts daemon A (the executor) and daemon B (the requester, bootstrapping from A), each
in its own temporary state dir, with the network on 127.0.0.1 and logging at warning.
Waits until B holds A's verified capability record (GET /v1/peers), then, all from B's
API over its Unix socket, with the module bytes in every request (nothing uploaded):

  trio tcp     one loopback trio TCP connection, a 4-byte-length frame echoed back:
               the floor of any Python request/response round trip on this machine;
  local        POST /v1/jobs?wait, placement local on B: the daemon's own overhead;
  remote       POST /v1/jobs?wait, placement {"mode": "peer", "peer_id": A}, one at a
               time: offer + job request over libp2p, run and signed on A, receipt
               verified on B (median and p99);
  any          the same with placement {"mode": "any", "exclude_self": true}: adds the
               discovery lookup (FindCandidates) to every job;
  concurrent   C client threads, each on its own keep-alive connection, submitting
               remote jobs as fast as they are answered: remote jobs/s.

The first job of a module goes JobOffer then JobRequest (two exchanges); later jobs of
that module to the same peer go as a direct JobRequest (one exchange): the warm-up
covers the first, so the figures are the steady state.

Ratios are against the trio TCP round trip and the local job, both measured in the
same run. A runs 8 executors and allows B enough jobs and offers per minute that the
per-peer limits never refuse the bench (they stay on: that is what they are for).
With --profile DIR, py-spy records both daemons (raw stacks) during the remote phases.

Targets (issue 4): median <= 15 ms per remote job, >= 100 remote jobs/s concurrently.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from bench.bench_network import trio_echo  # python -m bench p2p
except ModuleNotFoundError:  # python bench/bench_p2p.py: bench/ is sys.path[0]
    from bench_network import trio_echo  # type: ignore[no-redef]

from plasm.client import Client, ClientError

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "wasm-examples" / "hello.wasm"
PY_SPY = Path(sys.executable).with_name("py-spy")
TARGET_MEDIAN_MS = 15.0
TARGET_RATE = 100.0
START_TIMEOUT_S = 60.0
# Each daemon gets a CPU of its own, as two machines would (executor.cpu_affinity): left to
# "auto", both may pick the CPU they start on and share it.
CONFIG = """[executor]
count = {executors}
cpu_affinity = {cpu}
queue_length = 4096
[network]
max_jobs_per_peer = 64
rate_limit_per_minute = 1000000
[log]
level = "warning"
"""


class Daemon:
    def __init__(
        self, base: Path, name: str, executors: int, bootstrap: str | None, cpu: int
    ) -> None:
        base.mkdir()
        self.socket = base / "api.sock"
        config = base / "plasmd.toml"
        config.write_text(CONFIG.format(executors=executors, cpu=cpu))
        command = [
            sys.executable, "-m", "plasm.cli", "run", "--config", str(config),
            "--state-dir", str(base / "state"), "--socket", str(self.socket),
            "--listen", "/ip4/127.0.0.1/tcp/0", "--log-format", "json",
        ]
        if bootstrap is not None:
            command += ["--bootstrap", bootstrap]
        self.log = base / "log"
        self.name = name
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115 - closed with the process
            env={**os.environ, "PLASM_STRICT_MESSAGES": "0"},
        )
        self.node = self._wait_ready()

    def _wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with Client(self.socket, timeout=2) as client:
                    node = client.node()
                if node.get("addresses"):
                    return node
            except ClientError:
                pass
            time.sleep(0.05)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"plasmd {self.name} did not start:\n{tail}")

    def client(self, timeout: float = 60.0) -> Client:
        return Client(self.socket, timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def wait_for_capabilities(requester: Daemon, executor_id: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT_S:
        with requester.client() as client:
            peers = client.request("GET", "/v1/peers")["peers"]
        if any(p["peer_id"] == executor_id and p.get("capabilities") for p in peers):
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit("B never learned A's capabilities")


def trio_echo_ms(requests: int) -> list[float]:
    """Per-round-trip ms of bench_network's framed 64-byte trio TCP echo (the baseline)."""
    return [seconds * 1e3 for seconds in trio_echo(requests)]


def submit(client: Client, module: bytes, placement: dict[str, Any]) -> str:
    result = client.submit(
        module=module, module_name="hello.wasm", stdin=b"Hello, World", placement=placement,
        wait=30,
    )
    if result.get("status") != "done" or result["outcome"]["kind"] != "ok":
        raise SystemExit(f"a job did not succeed: {result}")
    return str(result["executor"])


def timed_ms(fn: Callable[[], object], count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1e3)
    return out


def concurrent_rate(daemon: Daemon, module: bytes, placement: dict[str, Any],
                    clients: int, jobs: int,
                    one: Callable[[Any, bytes, dict[str, Any]], object] | None = None) -> float:
    """Jobs per second with ``clients`` threads each submitting its share of ``jobs`` (with
    ``one(client, module, placement)``, default ``submit``)."""
    per_client = max(1, jobs // clients)
    errors: list[BaseException] = []
    run_one = one or submit

    def work() -> None:
        try:
            with daemon.client() as client:
                for _ in range(per_client):
                    run_one(client, module, placement)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"a client failed: {errors[0]}")
    return per_client * clients / elapsed


class Profiler:
    """py-spy on each daemon while it runs; raw (collapsed) stacks into DIR/<name>.txt."""

    def __init__(self, out: Path | None, daemons: list[Daemon]) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        if out is None:
            return
        out.mkdir(parents=True, exist_ok=True)
        for daemon in daemons:
            self._procs.append(subprocess.Popen(
                [str(PY_SPY), "record", "-p", str(daemon.proc.pid), "-f", "raw", "-r", "250",
                 "-o", str(out / f"{daemon.name}.txt"), "--threads", "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        for proc in self._procs:
            proc.send_signal(signal.SIGINT)
        for proc in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def row(name: str, ms: float, floor: float, local: float) -> str:
    return f"{name:<34}{ms:>9.2f}{ms / floor:>11.1f}{ms / local:>10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--profile", type=Path, default=None,
                        help="record both daemons with py-spy into this directory")
    args = parser.parse_args()
    module = HELLO.read_bytes()
    floor_times = trio_echo_ms(max(args.jobs, 1000))
    with tempfile.TemporaryDirectory(prefix="plasm-p2p-") as tmp:
        daemons: list[Daemon] = []
        try:
            cpus = sorted(os.sched_getaffinity(0))
            a = Daemon(Path(tmp) / "a", "a", executors=8, bootstrap=None, cpu=cpus[0])
            daemons.append(a)
            b = Daemon(
                Path(tmp) / "b",
                "b",
                executors=2,
                bootstrap=a.node["addresses"][0],
                cpu=cpus[-1],
            )
            daemons.append(b)
            formed = wait_for_capabilities(b, a.node["peer_id"])
            remote = {"mode": "peer", "peer_id": a.node["peer_id"]}
            local = {"mode": "local"}
            anywhere = {"mode": "any", "exclude_self": True}
            with b.client() as client:
                timed_ms(lambda: submit(client, module, local), 50)  # warm up
                timed_ms(lambda: submit(client, module, remote), 50)
                if submit(client, module, remote) != a.node["peer_id"]:
                    raise SystemExit("a remote job was not run by A")
                local_times = timed_ms(lambda: submit(client, module, local), args.jobs)
                profiler = Profiler(args.profile, daemons)
                try:
                    remote_times = timed_ms(lambda: submit(client, module, remote), args.jobs)
                    any_times = timed_ms(lambda: submit(client, module, anywhere), args.jobs)
                    rate = concurrent_rate(b, module, remote, args.clients, args.jobs * 2)
                finally:
                    profiler.stop()
            local_rate = concurrent_rate(b, module, local, args.clients, args.jobs * 2)
        finally:
            for daemon in reversed(daemons):
                daemon.stop()
    floor = statistics.median(floor_times)
    local_ms = statistics.median(local_times)
    remote_times.sort()
    median = statistics.median(remote_times)
    p99 = remote_times[min(len(remote_times) - 1, int(len(remote_times) * 0.99))]
    print(f"hello.wasm, two plasmd on loopback (TCP, Noise, Yamux), {args.jobs} jobs, "
          f"{os.cpu_count()} CPUs; B knew A's record {formed:.1f} s after start")
    print(f"{'measure':<34}{'ms':>9}{'x trio tcp':>11}{'x local':>10}")
    print(row("trio TCP round trip median", floor, floor, local_ms))
    print(row("local job on B median", local_ms, floor, local_ms))
    print(row("remote job B->A median", median, floor, local_ms))
    print(row("remote job B->A p99", p99, floor, local_ms))
    print(row("remote job B->any median", statistics.median(any_times), floor, local_ms))
    print(f"concurrent, {args.clients} clients: remote {rate:.0f} jobs/s, "
          f"local {local_rate:.0f} jobs/s ({rate / local_rate:.2f}x local)")
    print(f"targets: median <= {TARGET_MEDIAN_MS:g} ms -> {median:.2f} ms "
          f"({'met' if median <= TARGET_MEDIAN_MS else 'NOT met'}); "
          f">= {TARGET_RATE:g} remote jobs/s -> {rate:.0f} jobs/s "
          f"({'met' if rate >= TARGET_RATE else 'NOT met'})")


if __name__ == "__main__":
    main()
