"""/plasm/blob/1.0.0 between real network actors and against hostile peers on loopback."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable

import pytest

from plasm.actors._future import Future
from plasm.actors._mailbox import ask, tell
from plasm.actors.blob_grants import BlobGrants
from plasm.actors.network import BlobFetched, BlobFetchFailed, Dial, FetchBlob
from tests.network.conftest import Node
from tests.network.hostile_peers import HostileBlobServer

MIB = 2**20
pytestmark = pytest.mark.timeout(120)


class CountingGrants(BlobGrants):
    """Grants that count the lookups the blob server makes (one per request served)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0
        self._count_lock = threading.Lock()

    def lookup(self, peer: str, sha256: str) -> bytes | None:
        with self._count_lock:
            self.lookups += 1
        return super().lookup(peer, sha256)


def fetch(node: Node, peer_id: str, data: bytes, size: int | None = None) -> object:
    sha = hashlib.sha256(data).hexdigest()
    request = FetchBlob(peer_id, sha, len(data) if size is None else size, timeout_ms=30_000)
    return ask(node.ref, request, timeout=60)


def test_a_granted_blob_arrives_whole_in_chunks(network: Callable[..., Node]) -> None:
    grants = BlobGrants()
    holder = network(blob_grants=grants)
    fetcher = network()
    data = os.urandom(5 * MIB + 123)
    grants.grant(fetcher.peer_id, "job", {hashlib.sha256(data).hexdigest(): data}, 60)
    ask(fetcher.ref, Dial(holder.address + f"/p2p/{holder.peer_id}"), timeout=15)
    answer = fetch(fetcher, holder.peer_id, data)
    assert isinstance(answer, BlobFetched) and answer.data == data


def test_a_blob_not_granted_to_the_asker_is_refused(network: Callable[..., Node]) -> None:
    grants = BlobGrants()
    holder = network(blob_grants=grants)
    fetcher = network()
    data = os.urandom(1000)
    grants.grant("12D3KooWsomeoneelse", "job", {hashlib.sha256(data).hexdigest(): data}, 60)
    ask(fetcher.ref, Dial(holder.address + f"/p2p/{holder.peer_id}"), timeout=15)
    answer = fetch(fetcher, holder.peer_id, data)
    assert isinstance(answer, BlobFetchFailed) and answer.reason == "not_found"
    unknown = fetch(fetcher, holder.peer_id, b"never stored")
    assert isinstance(unknown, BlobFetchFailed) and unknown.reason == "not_found"


def test_a_revoked_grant_is_refused(network: Callable[..., Node]) -> None:
    grants = BlobGrants()
    holder = network(blob_grants=grants)
    fetcher = network()
    data = os.urandom(1000)
    grants.grant(fetcher.peer_id, "job", {hashlib.sha256(data).hexdigest(): data}, 60)
    grants.revoke(fetcher.peer_id, "job")
    ask(fetcher.ref, Dial(holder.address + f"/p2p/{holder.peer_id}"), timeout=15)
    answer = fetch(fetcher, holder.peer_id, data)
    assert isinstance(answer, BlobFetchFailed) and answer.reason == "not_found"


def test_concurrent_fetches_of_one_blob_share_one_transfer(network: Callable[..., Node]) -> None:
    grants = CountingGrants()
    holder = network(blob_grants=grants)
    fetcher = network()
    data = os.urandom(8 * MIB)
    sha = hashlib.sha256(data).hexdigest()
    grants.grant(fetcher.peer_id, "job", {sha: data}, 60)
    ask(fetcher.ref, Dial(holder.address + f"/p2p/{holder.peer_id}"), timeout=15)
    futures: list[Future[object]] = []
    for _ in range(4):
        reply: Future[object] = Future()
        tell(fetcher.ref, FetchBlob(holder.peer_id, sha, len(data), 30_000), reply=reply)
        futures.append(reply)
    answers = [f.get(timeout=60) for f in futures]
    assert all(isinstance(a, BlobFetched) and a.data == data for a in answers)
    assert grants.lookups == 1


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("wrong", "hash_mismatch"),
        ("oversize", "oversize"),
        ("long_chunk", "oversize"),
        ("stall", "timeout"),
    ],
)
def test_a_hostile_holder_fails_the_fetch_with_a_clear_reason(
    network: Callable[..., Node], mode: str, reason: str
) -> None:
    data = os.urandom(2 * MIB + 7)
    fetcher = network(read_deadline_s=1.0)
    with HostileBlobServer(mode, data) as hostile:
        dialed = ask(fetcher.ref, Dial(hostile.address), timeout=15)
        answer = fetch(fetcher, dialed.peer_id, data)
        assert isinstance(answer, BlobFetchFailed), answer
        assert answer.reason == reason, answer.message
        assert hostile.requests == 1
    # the fetcher keeps serving: a fetch from a peer that does not exist fails cleanly too
    again = fetch(fetcher, dialed.peer_id, data)
    assert isinstance(again, BlobFetchFailed)
