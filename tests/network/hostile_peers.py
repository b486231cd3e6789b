"""Two hostile peers for resource-limit tests (test use only).

`IdleSockets` opens TCP connections to a libp2p port from one source address and never
says a byte: each one a listener counts as pending until its handshake deadline. It keeps
`count` of them open, reopening those the target closes, until stopped.

`squat` is one throwaway libp2p peer (one key for its whole run) that sends `JobOffer`s
on the negotiation protocol and never the job: it holds as many of the target's slots as
the target lets it, for as long as it runs, and reports every answer it got.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import threading
import time
from dataclasses import dataclass

import multiaddr
import trio
from libp2p.peer.peerinfo import info_from_p2p_addr

from plasm.actors.network._host import build_host
from plasm.actors.network._streams import exchange
from plasm.protocol.messages import JobOffer, JobResponse, decode_message, encode_message
from plasm.protocol.p2p_messages import PROTOCOL_NEGOTIATE
from plasm.runtime.job import Limits

LOOPBACK_TCP = "/ip4/127.0.0.1/tcp/0"


def tcp_endpoint(address: str) -> tuple[str, int]:
    """(ip, port) of a /ip4/.../tcp/... multiaddr."""
    parts = address.split("/")
    return parts[2], int(parts[4])


class IdleSockets:
    """`count` idle TCP connections from `source_ip` to `target`, kept open by a thread."""

    def __init__(self, target: tuple[str, int], count: int, source_ip: str) -> None:
        self._target = target
        self._count = count
        self._source_ip = source_ip
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, name="idle-sockets", daemon=True)
        self.opened = 0  # connections made so far, reopened ones included

    def __enter__(self) -> IdleSockets:
        for _ in range(self._count):
            self._sockets.append(self._open())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self._sockets:
            sock.close()

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self._source_ip, 0))
        sock.settimeout(5)
        sock.connect(self._target)
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _hold(self) -> None:
        # Once a second, reopen what the target closed (readable + empty read = EOF);
        # what the target sends (its multistream header) is read and dropped.
        while not self._stop.wait(1.0):
            readable, _, _ = select.select(self._sockets, [], [], 0)
            for sock in readable:
                try:
                    if sock.recv(65536):
                        continue
                except OSError:
                    pass
                sock.close()
                index = self._sockets.index(sock)
                try:
                    self._sockets[index] = self._open()
                except OSError:
                    return


@dataclass(frozen=True)
class Answer:
    at: float  # seconds since the squat began
    accepted: bool
    reason: str | None


def squat(target: str, seconds: float, module: bytes, every: float = 0.2) -> list[Answer]:
    """Offer jobs to `target` (a full multiaddr) every `every` s for `seconds`, one peer,
    never sending a job; return every answer."""
    sha = hashlib.sha256(module).hexdigest()

    async def main() -> list[Answer]:
        host = build_host(os.urandom(32), [multiaddr.Multiaddr(LOOPBACK_TCP)])
        answers: list[Answer] = []
        async with host.run([multiaddr.Multiaddr(LOOPBACK_TCP)]):
            info = info_from_p2p_addr(multiaddr.Multiaddr(target))
            with trio.fail_after(10):
                await host.connect(info)
            began = time.monotonic()
            while (now := time.monotonic()) - began < seconds:
                offer = JobOffer(
                    job_id=os.urandom(16).hex(),
                    module_sha256=sha,
                    module_size=len(module),
                    limits=Limits(),
                    input_size=0,
                    deadline_ms=int(time.time() * 1000) + 5_000,
                    nonce=os.urandom(16),
                )
                with trio.fail_after(10):
                    raw = await exchange(
                        host, info.peer_id, PROTOCOL_NEGOTIATE, encode_message(offer), 2**16
                    )
                response = decode_message(raw)
                assert isinstance(response, JobResponse), response
                answers.append(Answer(now - began, response.accepted, response.reason))
                await trio.sleep(every)
            await host.close()
        return answers

    return trio.run(main)


async def time_to_connect(target: str, timeout: float) -> float:
    """Seconds a fresh libp2p host takes to connect to `target`; raises if it cannot."""
    host = build_host(os.urandom(32), [multiaddr.Multiaddr(LOOPBACK_TCP)])
    async with host.run([multiaddr.Multiaddr(LOOPBACK_TCP)]):
        info = info_from_p2p_addr(multiaddr.Multiaddr(target))
        started = time.monotonic()
        with trio.fail_after(timeout):
            await host.connect(info)
        elapsed = time.monotonic() - started
        await host.close()
    return elapsed


class HostileBlobServer:
    """A bare libp2p peer that answers every /plasm/blob/1.0.0 request the way `mode` says.

    `wrong`: chunks of other bytes than the blob's; `oversize`: the blob, then a chunk past
    its end; `long_chunk`: a last chunk that runs past the end; `stall`: the first chunk,
    then silence. Runs `trio.run` in its own thread until the context ends; `address` is
    its full multiaddr.
    """

    def __init__(self, mode: str, data: bytes) -> None:
        self.mode, self.data = mode, data
        self.address = ""
        self.requests = 0
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    def __enter__(self) -> HostileBlobServer:
        self._thread.start()
        assert self._ready.wait(15), "the hostile blob server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._stop is not None:
            self._token.run_sync_soon(self._stop.set)
        self._thread.join(15)

    async def _main(self) -> None:
        from libp2p.custom_types import TProtocol

        from plasm.protocol.blob_transfer import PROTOCOL_BLOB

        self._stop, self._token = trio.Event(), trio.lowlevel.current_trio_token()
        listen = [multiaddr.Multiaddr(LOOPBACK_TCP)]
        host = build_host(os.urandom(32), listen)
        host.set_stream_handler(TProtocol(PROTOCOL_BLOB), self._serve)
        async with host.run(listen):
            self.address = f"{host.get_addrs()[0]}"
            if "/p2p/" not in self.address:
                self.address += f"/p2p/{host.get_id()}"
            self._ready.set()
            await self._stop.wait()
            await host.close()

    async def _serve(self, stream: object) -> None:
        from plasm.protocol.blob_transfer import BlobChunk, chunk_plan
        from plasm.protocol.framing import encode_frame

        self.requests += 1
        sha = hashlib.sha256(self.data).hexdigest()
        plan = chunk_plan(0, len(self.data))
        try:
            await stream.read(65536)  # type: ignore[attr-defined]  # the request frame
            for number, (at, n) in enumerate(plan):
                piece = self.data[at : at + n]
                if self.mode == "wrong":
                    piece = bytes(len(piece))
                if self.mode == "long_chunk" and number == len(plan) - 1:
                    piece += b"past the end"
                frame = encode_frame(encode_message(BlobChunk(sha, at, piece)), 2**21)
                await stream.write(frame)  # type: ignore[attr-defined]
                if self.mode == "stall" and number == 0:
                    await trio.sleep(8)
            if self.mode == "oversize":
                extra = BlobChunk(sha, len(self.data), b"more than was promised")
                await stream.write(encode_frame(encode_message(extra), 2**21))  # type: ignore[attr-defined]
            await stream.close()  # type: ignore[attr-defined]
        except Exception:  # the fetcher gave up and reset: that is what the tests want
            pass
