"""Bootstrap, provider records and capability records over the Kademlia DHT."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import nacl.signing
import pytest

from plasm.actors._mailbox import ask
from plasm.actors.messages import FindProviders, GetRecord, Provide, Providers, PutRecord, Record
from plasm.actors.network import RecordError
from plasm.protocol.capabilities import sign_capabilities
from plasm.protocol.messages import Capabilities
from plasm.runtime.job import Limits
from tests.network.conftest import Node, node_peer_id, wait_for

pytestmark = pytest.mark.timeout(60)

KEY = "plasm:runtime:wasi-preview1"


def capabilities_record(seed: bytes, *, peer_id: str | None = None) -> bytes:
    caps = Capabilities(
        peer_id=peer_id or node_peer_id(seed),
        arch="x86_64",
        os="linux",
        cpus=2,
        memory_bytes=2**30,
        runtimes=("wasi-preview1",),
        engine_name="wasmtime",
        engine_version="1",
        max_limits=Limits(),
        free_slots=1,
        addresses=(),
        expires_at_ms=int(time.time() * 1000) + 600_000,
    )
    return sign_capabilities(caps, nacl.signing.SigningKey(seed))


def connected_to(node: Node, other: Node) -> bool:
    return any(p.peer_id == other.peer_id for p in node.current_info().connected)


@pytest.fixture
def three(network: Callable[..., Node]) -> tuple[Node, Node, Node]:
    """B bootstraps from nothing, A and C from B."""
    b = network()
    a = network(bootstrap=(b.address,))
    c = network(bootstrap=(b.address,))
    wait_for(lambda: connected_to(a, b) and connected_to(c, b), what="bootstrap connections")
    return a, b, c


def test_bootstrap_peer_is_connected(three: tuple[Node, Node, Node]) -> None:
    a, b, _ = three
    assert connected_to(b, a)


def test_provider_is_found_through_the_bootstrap_peer(three: tuple[Node, Node, Node]) -> None:
    a, _, c = three
    ask(a.ref, Provide(KEY), timeout=20)

    def c_finds_a() -> bool:
        found = ask(c.ref, FindProviders(KEY, 5, 3000), timeout=10)
        assert isinstance(found, Providers)
        return a.peer_id in [p.peer_id for p in found.providers]

    wait_for(c_finds_a, timeout=15, what="C to find A as a provider")


def test_signed_capability_record_is_stored_and_read_back(three: tuple[Node, Node, Node]) -> None:
    a, _, c = three
    record = capabilities_record(a.seed)
    key = f"/plasm/{a.peer_id}"
    ask(a.ref, PutRecord(key, record), timeout=20)
    assert ask(c.ref, GetRecord(key, 5000), timeout=15) == Record(key, record)


def test_record_signed_by_another_key_is_refused(three: tuple[Node, Node, Node]) -> None:
    a, _, _ = three
    forged = capabilities_record(os.urandom(32))  # validly signed, but by someone else
    with pytest.raises(RecordError):
        ask(a.ref, PutRecord(f"/plasm/{a.peer_id}", forged), timeout=20)


def test_record_outside_the_plasm_namespace_is_refused(three: tuple[Node, Node, Node]) -> None:
    a, _, _ = three
    with pytest.raises(RecordError):
        ask(a.ref, PutRecord("/other/key", b"anything"), timeout=20)


def test_missing_record_reads_as_none(three: tuple[Node, Node, Node]) -> None:
    _, _, c = three
    key = f"/plasm/{node_peer_id(os.urandom(32))}"
    assert ask(c.ref, GetRecord(key, 2000), timeout=15) == Record(key, None)


def memo_record(seed: bytes, stdin: bytes = b"memo") -> tuple[bytes, bytes]:
    """(memo key, a valid memo record of a hello-sized run signed by `seed`'s node)."""
    import hashlib

    from plasm.protocol.receipt import build_receipt, sign_receipt
    from plasm.protocol.reuse import describe, memo_payload, sign_memo
    from plasm.runtime.job import JobInput, Outcome, OutcomeKind

    key = nacl.signing.SigningKey(seed)
    me = node_peer_id(seed)
    job_input = JobInput(stdin=stdin)
    outcome = Outcome(OutcomeKind.OK, None, None, b"out\n", b"", False, False, 10, 5, 1, 2)
    module = hashlib.sha256(b"module").hexdigest()
    receipt = build_receipt("0" * 32, module, job_input, Limits(), outcome, "wasmtime", "1", me,
                            me, bytes(16))
    memo_key = describe(module, job_input, Limits()).key()
    payload = memo_payload(memo_key, sign_receipt(receipt, key), b"out\n", b"", ())
    return memo_key, sign_memo(payload, key)


def test_a_memo_record_is_stored_and_read_back(three: tuple[Node, Node, Node]) -> None:
    from plasm.protocol.reuse import memo_record_key

    a, _, c = three
    key, record = memo_record(a.seed)
    ask(a.ref, PutRecord(memo_record_key(key), record), timeout=20)
    assert ask(c.ref, GetRecord(memo_record_key(key), 5000), timeout=15) == Record(
        memo_record_key(key), record)


def test_a_memo_record_under_another_key_or_unsigned_is_refused(
        three: tuple[Node, Node, Node], caplog: pytest.LogCaptureFixture) -> None:
    from plasm.protocol import cose
    from plasm.protocol.reuse import memo_record_key

    a, _, _ = three
    key, record = memo_record(a.seed)
    other, _ = memo_record(a.seed, stdin=b"another job")
    unsigned = cose.decode_sign1(record, max_size=2**20).payload
    # the signature's last byte flipped (setting it to 0 left it unchanged 1 time in 256)
    forged = record[:-1] + bytes([record[-1] ^ 1])
    for where, value in ((other, record), (key, unsigned), (key, forged)):
        with pytest.raises(RecordError):
            ask(a.ref, PutRecord(memo_record_key(where), value), timeout=20)
    assert caplog.text.count("refused memo record") >= 3
