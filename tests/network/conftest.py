"""Real network actors on loopback, the handler actors they route to, and a raw test peer.

`network` starts NetworkActors (each its own libp2p host in its own trio thread) and
stops them at teardown. `raw_exchange` is a libp2p peer that is *not* a NetworkActor: it
writes whatever bytes a test gives it on a stream, to play a hostile or broken peer.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import multiaddr
import nacl.signing
import pykka
import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr

from plasm.actors._mailbox import Delivery, PlasmActor, ask, handles
from plasm.actors.messages import (
    GetNetworkInfo,
    InboundRequest,
    NetworkInfo,
    PeerEvent,
    PeerResponse,
)
from plasm.actors.network import start_network
from plasm.actors.network._host import build_host
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.p2p_messages import PROTOCOLS

LOOPBACK_TCP = "/ip4/127.0.0.1/tcp/0"
LOOPBACK_QUIC = "/ip4/127.0.0.1/udp/0/quic-v1"


class Echo(PlasmActor):
    """Answers `<authenticated peer id>|<payload>`; sleeps first if the payload says so."""

    @handles(InboundRequest)
    def on_request(self, request: InboundRequest, delivery: Delivery) -> PeerResponse:
        if request.payload.startswith(b"sleep:"):
            time.sleep(float(request.payload[6:]))
        if request.payload == b"raise":
            raise RuntimeError("the handler broke on purpose")
        return PeerResponse(request.peer_id, request.peer_id.encode() + b"|" + request.payload)


class Later(PlasmActor):
    """Answers with a future that another thread resolves, like a long job."""

    @handles(InboundRequest)
    def on_request(self, request: InboundRequest, delivery: Delivery) -> pykka.Future[Any]:
        done: pykka.Future[Any] = pykka.ThreadingFuture()
        answer = PeerResponse(request.peer_id, b"later|" + request.payload)
        threading.Timer(0.2, done.set, args=(answer,)).start()
        return done


class Collector(PlasmActor):
    """Keeps every message told to it (PeerEvents, answers sent with reply_to)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def on_receive(self, delivery: Any) -> Any:
        if isinstance(delivery, Delivery):
            self.seen.append(delivery.message)
            return None
        return list(self.seen)  # a plain ask(): the list so far


def collected(ref: pykka.ActorRef[Any]) -> list[Any]:
    return list(ref.ask("list", timeout=5))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


@dataclass
class Node:
    ref: pykka.ActorRef[Any]
    info: NetworkInfo
    seed: bytes

    @property
    def peer_id(self) -> str:
        return self.info.peer_id

    @property
    def address(self) -> str:
        return self.info.listen_addresses[0]

    def current_info(self) -> NetworkInfo:
        info: NetworkInfo = ask(self.ref, GetNetworkInfo(), timeout=5)
        return info


def node_peer_id(seed: bytes) -> str:
    return peer_id_from_public_key(nacl.signing.SigningKey(seed).verify_key.encode())


@pytest.fixture
def actors() -> Iterator[Callable[[type[PlasmActor]], pykka.ActorRef[Any]]]:
    started: list[pykka.ActorRef[Any]] = []

    def start(cls: type[PlasmActor]) -> pykka.ActorRef[Any]:
        ref = cls.start()
        started.append(ref)
        return ref

    yield start
    for ref in started:
        ref.stop(block=True, timeout=10)


@pytest.fixture
def network(
    actors: Callable[[type[PlasmActor]], pykka.ActorRef[Any]],
) -> Iterator[Callable[..., Node]]:
    """`network(**constructor args)` -> a started Node; every protocol goes to an Echo."""
    echo = actors(Echo)
    started: list[Node] = []

    def start(**kwargs: Any) -> Node:
        seed = kwargs.pop("seed", None) or os.urandom(32)
        kwargs.setdefault("handlers", dict.fromkeys(PROTOCOLS, echo))
        ref, info = start_network(seed=seed, **kwargs)
        node = Node(ref, info, seed)
        started.append(node)
        return node

    yield start
    for node in reversed(started):
        node.ref.stop(block=True, timeout=10)


@dataclass(frozen=True)
class RawOutcome:
    received: bytes
    reset: bool  # the stream was reset (rather than closed) before the reader gave up


def raw_exchange(target: str, protocol: str, data: bytes, *, stall: float = 0.0) -> RawOutcome:
    """Connect a bare libp2p peer to `target`, write `data` on `protocol`, read until the
    stream ends (or 5 s pass), keeping the stream open `stall` s after writing."""

    async def main() -> RawOutcome:
        host = build_host(os.urandom(32), [multiaddr.Multiaddr(LOOPBACK_TCP)])
        async with host.run([multiaddr.Multiaddr(LOOPBACK_TCP)]):
            info = info_from_p2p_addr(multiaddr.Multiaddr(target))
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, [TProtocol(protocol)])
            await stream.write(data)
            received, reset = b"", False
            with trio.move_on_after(5.0 + stall):
                try:
                    while chunk := await stream.read(65536):
                        received += chunk
                except Exception:  # StreamReset and friends: the node reset the stream
                    reset = True
            await host.close()
            return RawOutcome(received, reset)

    return trio.run(main)


def event_kinds(events: list[Any], peer_id: str) -> list[str]:
    return [e.kind for e in events if isinstance(e, PeerEvent) and e.peer_id == peer_id]
