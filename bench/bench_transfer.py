"""A 64 MiB blob to a peer over /plasm/blob/1.0.0 vs plain trio TCP (no assertions).

    python -m bench transfer [--mib N] [--rounds R] [--job]

In one run, on loopback:

  trio tcp     the same bytes over one plain trio TCP connection, written in 1 MiB
               frames (4-byte length + payload) and read until the whole arrived:
               the floor of moving bytes between two Python trio tasks;
  blob fetch   two network actors (each its own libp2p host, TCP + Noise + Yamux): the
               fetcher asks FetchBlob of the holder, which serves a granted blob of N MiB
               as 1 MiB BlobChunk frames on one stream; the fetcher assembles the chunks
               and checks size and sha256 (time from the ask to the checked bytes);
  job          with --job: two whole nodes, a copy of hello.wasm padded to N MiB with a
               custom section run on the other node, from submit to the verified result
               (offer, JobRequest by reference, the module fetched over the blob
               protocol, compile, run, receipt). The first round compiles; later rounds
               use a new padding each, so every round moves the module.

Each figure is the median of R rounds; the ratio is blob fetch / trio tcp, measured in
the same run. Target (issue 12): within 3x.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from plasm.protocol.framing import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20
TARGET_RATIO = 3.0


def trio_tcp(data: bytes) -> float:
    """Seconds to move ``data`` over one loopback trio TCP connection in 1 MiB frames."""
    cap = MIB + 16

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            view = memoryview(data)
            for at in range(0, len(data), MIB):
                await stream.send_all(encode_frame(bytes(view[at : at + MIB]), cap))

    async def main() -> float:
        async with trio.open_nursery() as nursery:
            serve_loopback = functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
            (listener,) = await nursery.start(serve_loopback)
            port = listener.socket.getsockname()[1]
            started = time.perf_counter()
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            decoder, parts, got = FrameDecoder(cap), [], 0
            while got < len(data):
                for frame in decoder.feed(await stream.receive_some(MIB)):
                    parts.append(frame)
                    got += len(frame)
            whole = b"".join(parts)
            assert hashlib.sha256(whole).digest() == hashlib.sha256(data).digest()
            elapsed = time.perf_counter() - started
            await stream.aclose()
            nursery.cancel_scope.cancel()
        return elapsed

    return trio.run(main)


def blob_fetch(data: bytes, rounds: int) -> list[float]:
    from plasm.actors._mailbox import ask
    from plasm.actors.blob_grants import BlobGrants
    from plasm.actors.network import BlobFetched, Dial, FetchBlob, start_network

    grants = BlobGrants()
    holder, holder_info = start_network(seed=os.urandom(32), blob_grants=grants)
    fetcher, fetcher_info = start_network(seed=os.urandom(32))
    try:
        ask(fetcher, Dial(f"{holder_info.listen_addresses[0]}/p2p/{holder_info.peer_id}"), 15)
        times = []
        for _ in range(rounds):
            blob = data[:-8] + os.urandom(8)  # a new blob each round: nothing cached
            sha = hashlib.sha256(blob).hexdigest()
            grants.grant(fetcher_info.peer_id, sha, {sha: blob}, 600)
            started = time.perf_counter()
            answer = ask(fetcher, FetchBlob(holder_info.peer_id, sha, len(blob), 120_000), 180)
            times.append(time.perf_counter() - started)
            assert isinstance(answer, BlobFetched) and answer.data == blob, answer
            grants.revoke(fetcher_info.peer_id, sha)
        return times
    finally:
        fetcher.stop(block=True, timeout=10)
        holder.stop(block=True, timeout=10)


def padded(module: bytes, size: int) -> bytes:
    name = b"pad"
    payload = bytes([len(name)]) + name + os.urandom(size)
    length, encoded = len(payload), b""
    while True:  # unsigned LEB128
        byte, length = length & 0x7F, length >> 7
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return module + b"\x00" + encoded + payload


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="blob size in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (default 3)")
    parser.add_argument("--job", action="store_true", help="also run a whole remote job")
    args = parser.parse_args()
    data = os.urandom(args.mib * MIB)
    tcp = [trio_tcp(data) for _ in range(args.rounds)]
    fetch = blob_fetch(data, args.rounds)
    tcp_s, fetch_s = statistics.median(tcp), statistics.median(fetch)
    ratio = fetch_s / tcp_s
    print(f"{args.mib} MiB on loopback, median of {args.rounds}:")
    print(f"  trio tcp     {tcp_s * 1000:8.1f} ms   {args.mib / tcp_s:7.1f} MiB/s")
    print(f"  blob fetch   {fetch_s * 1000:8.1f} ms   {args.mib / fetch_s:7.1f} MiB/s")
    print(f"  ratio        {ratio:8.2f} x trio tcp (target <= {TARGET_RATIO:g}x)")
    if args.job:
        job = remote_job(args.mib * MIB, args.rounds)
        job_s = statistics.median(job)
        print(f"  remote job   {job_s * 1000:8.1f} ms   ({job_s / tcp_s:.2f} x trio tcp)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
