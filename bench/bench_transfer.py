"""A 64 MiB blob to a peer over /plasm/blob/1.0.0 vs plain trio TCP (no assertions).

    python -m bench transfer [--mib N] [--rounds R] [--job]

In one run, on loopback, the sender in a child process (as a peer would be):

  trio tcp     the same bytes over one plain trio TCP connection, written in 1 MiB
               frames (4-byte length + payload) and read until the whole arrived:
               the floor of moving bytes between two Python trio processes;
  + sha256     the same, hashing the bytes as they arrive (what a fetch must do too);
  blob fetch   a network actor here asks FetchBlob of one in the child (each its own
               libp2p host, TCP + Noise + Yamux), which serves a granted blob of N MiB
               as 1 MiB BlobChunk frames on one stream; the fetcher assembles the chunks
               and checks size and sha256 (time from the ask to the checked bytes);
  job          with --job: two whole nodes, a copy of hello.wasm padded to N MiB with a
               custom section run on the other node, from submit to the verified result
               (offer, JobRequest by reference, the module fetched over the blob
               protocol, compile, run, receipt). The first round compiles; later rounds
               use a new padding each, so every round moves the module.

Each figure is the median of R rounds; the ratios are blob fetch / trio tcp (with and
without the hash), measured in the same run. Target (issue 12): within 3x.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from bench._modules import padded
from plasm.protocol.framing import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20
TARGET_RATIO = 3.0


def _serve_tcp(size: int) -> None:
    """Child process: on every connection to the printed port, send ``size`` bytes."""
    cap = MIB + 16
    data = os.urandom(size)

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            view = memoryview(data)
            for at in range(0, len(data), MIB):
                await stream.send_all(encode_frame(bytes(view[at : at + MIB]), cap))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            serve_loopback = functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
            (listener,) = await nursery.start(serve_loopback)
            print(json.dumps({"port": listener.socket.getsockname()[1]}), flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin
            nursery.cancel_scope.cancel()

    trio.run(main)


def trio_tcp(port: int, size: int, check: bool) -> float:
    """Seconds to receive ``size`` bytes in 1 MiB frames from the child (and hash them)."""

    async def main() -> float:
        started = time.perf_counter()
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        decoder, parts, got = FrameDecoder(MIB + 16), [], 0
        digest = hashlib.sha256()
        while got < size:
            for frame in decoder.feed(await stream.receive_some(MIB)):
                parts.append(frame)
                got += len(frame)
                if check:
                    digest.update(frame)
        b"".join(parts)
        elapsed = time.perf_counter() - started
        await stream.aclose()
        return elapsed

    return trio.run(main)


def _serve_blobs(size: int, rounds: int, fetcher_peer: str) -> None:
    """Child process: a network actor holding ``rounds`` blobs granted to the fetcher."""
    from plasm.actors.blob_grants import BlobGrants
    from plasm.actors.network import start_network

    grants = BlobGrants()
    base = os.urandom(size)
    shas = []
    for i in range(rounds):
        blob = base[:-8] + i.to_bytes(8, "big")  # a new blob each round: nothing cached
        sha = hashlib.sha256(blob).hexdigest()
        grants.grant(fetcher_peer, sha, {sha: blob}, 3600)
        shas.append(sha)
    ref, info = start_network(seed=os.urandom(32), blob_grants=grants)
    address = f"{info.listen_addresses[0]}/p2p/{info.peer_id}"
    print(json.dumps({"address": address, "peer_id": info.peer_id, "shas": shas}), flush=True)
    sys.stdin.read()  # until the parent closes stdin
    ref.stop(block=True, timeout=10)


def _child(*args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_transfer", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.kill()
        raise RuntimeError(f"the bench child {args} did not start")
    return child, json.loads(line)


def _end(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)


def blob_fetch(size: int, rounds: int) -> list[float]:
    from plasm.actors._mailbox import ask
    from plasm.actors.network import BlobFetched, Dial, FetchBlob, start_network

    seed = os.urandom(32)
    fetcher, fetcher_info = start_network(seed=seed)
    child, hello = _child("--serve-blobs", str(size), str(rounds), fetcher_info.peer_id)
    try:
        ask(fetcher, Dial(str(hello["address"])), 15)
        times = []
        shas = hello["shas"]
        assert isinstance(shas, list)
        for sha in shas:
            started = time.perf_counter()
            fetch = FetchBlob(str(hello["peer_id"]), sha, size, 120_000)
            answer = ask(fetcher, fetch, 180)
            times.append(time.perf_counter() - started)
            assert isinstance(answer, BlobFetched), answer
        return times
    finally:
        _end(child)
        fetcher.stop(block=True, timeout=10)


def remote_job(size: int, rounds: int) -> list[float]:
    from nacl.signing import SigningKey

    from plasm.actors.messages import JobFinished
    from plasm.actors.node import NetworkSettings, Node, NodeSettings
    from plasm.protocol.p2p_messages import Placement
    from plasm.runtime.job import JobInput, Limits

    hello = (ROOT / "wasm-examples" / "hello.wasm").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:

        def node(name: str, bootstrap: tuple[str, ...] = ()) -> Node:
            settings = NodeSettings(
                executor_count=1,
                journal_path=Path(tmp) / f"{name}.sqlite",
                module_cache_dir=Path(tmp) / f"{name}-cache",
                network=NetworkSettings(listen=("/ip4/127.0.0.1/tcp/0",), bootstrap=bootstrap),
            )
            return Node(SigningKey(os.urandom(32)), settings).start()

        a = node("a")
        b = node("b", (f"{a.network_info().listen_addresses[0]}/p2p/{a.peer_id}",))
        try:
            on_a = Placement(mode="peer", peer_id=a.peer_id)
            times: list[float] = []
            deadline = time.monotonic() + 60
            while len(times) < rounds + 1:
                module = padded(hello, size)
                started = time.perf_counter()
                submission = b.submit(
                    module=module,
                    module_sha256=None,
                    job_input=JobInput(stdin=b"big"),
                    limits=Limits(timeout_ms=60_000),
                    placement=on_a,
                )
                finished = submission.done.get(timeout=300)
                assert isinstance(finished, JobFinished)
                if finished.status != "done":  # discovery has not verified A yet
                    assert time.monotonic() < deadline, finished.error
                    time.sleep(0.2)
                    continue
                times.append(time.perf_counter() - started)
            return times[1:]  # the first round warms up the engine
        finally:
            b.stop(grace_s=1)
            a.stop(grace_s=1)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-tcp":
        _serve_tcp(int(sys.argv[2]))
        return
    if len(sys.argv) > 4 and sys.argv[1] == "--serve-blobs":
        _serve_blobs(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="blob size in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (default 3)")
    parser.add_argument("--job", action="store_true", help="also run a whole remote job")
    args = parser.parse_args()
    size = args.mib * MIB
    server, hello = _child("--serve-tcp", str(size))
    try:
        port = int(str(hello["port"]))
        tcp = [trio_tcp(port, size, check=False) for _ in range(args.rounds)]
        tcp_hashed = [trio_tcp(port, size, check=True) for _ in range(args.rounds)]
    finally:
        _end(server)
    fetch = blob_fetch(size, args.rounds)
    tcp_s, hashed_s = statistics.median(tcp), statistics.median(tcp_hashed)
    fetch_s = statistics.median(fetch)
    print(f"{args.mib} MiB on loopback between two processes, median of {args.rounds}:")
    print(f"  trio tcp          {tcp_s * 1000:8.1f} ms   {args.mib / tcp_s:7.1f} MiB/s")
    print(f"  trio tcp + sha256 {hashed_s * 1000:8.1f} ms   {args.mib / hashed_s:7.1f} MiB/s")
    print(f"  blob fetch        {fetch_s * 1000:8.1f} ms   {args.mib / fetch_s:7.1f} MiB/s")
    print(
        f"  ratio             {fetch_s / tcp_s:8.2f} x trio tcp, "
        f"{fetch_s / hashed_s:.2f} x trio tcp + sha256 (target <= {TARGET_RATIO:g}x)"
    )
    if args.job:
        job = remote_job(args.mib * MIB, args.rounds)
        job_s = statistics.median(job)
        print(f"  remote job        {job_s * 1000:8.1f} ms   ({job_s / tcp_s:.2f} x trio tcp)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
