"""PeerRequest round trips between two network actors vs a plain trio TCP echo (no asserts).

    python -m bench network [--requests N] [--inflight K] [--transport tcp|quic]

trio tcp:    one trio TCP connection, a 4-byte-length frame echoed back, one at a time:
             the floor any Python round trip on this machine can reach.
sequential:  ask(PeerRequest) then wait, one at a time, on an already open connection
             (each request is a new libp2p stream: multistream-select, one frame each
             way, close), through the actor and its trio thread on both sides.
pipelined:   K requests in flight at once; requests/s is what the pair sustains.

Both nodes and the echo handler live in this one process, so the figures include the
thread hops (actor -> trio -> worker thread -> handler actor and back) on both ends.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from typing import Any

import pykka
import trio

from plasm.actors._mailbox import Delivery, PlasmActor, ask, ask_async, handles
from plasm.actors.messages import Dial, InboundRequest, PeerRequest, PeerResponse
from plasm.actors.network import start_network
from plasm.protocol.framing import FrameDecoder, encode_frame
from plasm.protocol.p2p_messages import PROTOCOL_CAPS

PAYLOAD = b"x" * 64


class Echo(PlasmActor):
    @handles(InboundRequest)
    def on_request(self, request: InboundRequest, delivery: Delivery) -> PeerResponse:
        return PeerResponse(request.peer_id, request.payload)


def trio_echo(requests: int) -> list[float]:
    """Per-round-trip seconds of a framed echo over one loopback trio TCP connection."""

    async def serve(stream: trio.SocketStream) -> None:
        decoder = FrameDecoder(2**16)
        async with stream:
            while data := await stream.receive_some(65536):
                for frame in decoder.feed(data):
                    await stream.send_all(encode_frame(frame, 2**16))

    async def main() -> list[float]:
        async with trio.open_nursery() as nursery:
            serve_loopback = functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
            (listener,) = await nursery.start(serve_loopback)
            port = listener.socket.getsockname()[1]
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            decoder = FrameDecoder(2**16)
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                await stream.send_all(encode_frame(PAYLOAD, 2**16))
                frames: list[bytes] = []
                while not frames:
                    frames = decoder.feed(await stream.receive_some(65536))
                times.append(time.perf_counter() - started)
            await stream.aclose()
            nursery.cancel_scope.cancel()
        return times

    return trio.run(main)


def sequential(client: pykka.ActorRef[Any], server_id: str, requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = ask(client, PeerRequest(server_id, PROTOCOL_CAPS, PAYLOAD, 5000), timeout=10)
        times.append(time.perf_counter() - started)
        assert isinstance(answer, PeerResponse), answer
    return times


def pipelined(client: pykka.ActorRef[Any], server_id: str, requests: int, inflight: int) -> float:
    """Requests per second with `inflight` outstanding at all times."""
    started = time.perf_counter()
    pending: list[pykka.Future[Any]] = []
    for _ in range(requests):
        if len(pending) >= inflight:
            pending.pop(0).get(timeout=30)
        pending.append(ask_async(client, PeerRequest(server_id, PROTOCOL_CAPS, PAYLOAD, 10_000)))
    for future in pending:
        future.get(timeout=30)
    return requests / (time.perf_counter() - started)


def summary(name: str, times: list[float]) -> float:
    p50 = statistics.median(times)
    p99 = sorted(times)[int(len(times) * 0.99) - 1]
    print(
        f"{name:<12} p50 {p50 * 1e3:7.2f} ms  p99 {p99 * 1e3:7.2f} ms  {1 / p50:8.0f} round trips/s"
    )
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--transport", choices=("tcp", "quic"), default="tcp")
    args = parser.parse_args()
    listen = "/ip4/127.0.0.1/tcp/0" if args.transport == "tcp" else "/ip4/127.0.0.1/udp/0/quic-v1"

    echo = Echo.start()
    server, server_info = start_network(
        seed=os.urandom(32), listen=(listen,), handlers={PROTOCOL_CAPS: echo}
    )
    client, _ = start_network(seed=os.urandom(32), listen=(listen,))
    try:
        ask(client, Dial(server_info.listen_addresses[0]), timeout=15)
        sequential(client, server_info.peer_id, 20)  # warm up
        floor = summary("trio tcp", trio_echo(args.requests))
        actor = summary(
            f"sequential ({args.transport})", sequential(client, server_info.peer_id, args.requests)
        )
        rate = pipelined(client, server_info.peer_id, args.requests, args.inflight)
        print(f"pipelined         {rate:8.0f} requests/s with {args.inflight} in flight")
        print(f"ratio             sequential PeerRequest p50 / trio TCP p50 = {actor / floor:.1f}x")
    finally:
        client.stop(block=True, timeout=10)
        server.stop(block=True, timeout=10)
        echo.stop()


if __name__ == "__main__":
    main()
