"""Signed tree heads and log proofs (protocol/transparency.py), and the requester's witness of
each peer's log (actors/_log_witness.py) against a peer that forks its history."""

from __future__ import annotations

import base64

import cbor2
import nacl.signing
import pytest

from plasm.actors._log_witness import PeerLogs
from plasm.protocol import cose
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.merkle import MemoryNodes, MerkleTree
from plasm.protocol.p2p_messages import LogConsistency
from plasm.protocol.receipt import REASONS
from plasm.protocol.transparency import (
    LogError,
    LogProof,
    TreeHead,
    sign_tree_head,
    verify_log_proof,
    verify_tree_head,
)
from plasm.protocol.verification import check_log

pytestmark = pytest.mark.timeout(30)

KEY = nacl.signing.SigningKey(bytes(range(32)))
NODE = peer_id_from_public_key(KEY.verify_key.encode())
OTHER = nacl.signing.SigningKey(bytes(range(1, 33)))


def _log(entries: list[bytes]) -> MerkleTree:
    tree = MerkleTree(MemoryNodes())
    for entry in entries:
        tree.append(entry)
    return tree


def _head(tree: MerkleTree, size: int | None = None, key=KEY) -> bytes:
    size = tree.size if size is None else size
    node = peer_id_from_public_key(key.verify_key.encode())
    return sign_tree_head(TreeHead(size, tree.root(size), 1_700_000_000_000, node), key)


ENTRIES = [f"receipt {i}".encode() for i in range(9)]


def test_a_signed_head_reads_back_and_is_standard_cose() -> None:
    tree = _log(ENTRIES)
    signed = _head(tree)
    assert verify_tree_head(signed, node=NODE) == TreeHead(9, tree.root(), 1_700_000_000_000, NODE)
    decoded = cose.decode_sign1(signed, max_size=4096)
    assert decoded.content_type == "application/vnd.plasm.tree-head+cbor" and decoded.kid == NODE
    assert cbor2.loads(decoded.payload) == {
        "node": NODE, "root": tree.root(), "size": 9, "timestamp_ms": 1_700_000_000_000,
    }


def test_a_head_is_refused_when_forged_re_encoded_or_of_another_node() -> None:
    tree = _log(ENTRIES)
    signed = bytearray(_head(tree))
    signed[-1] ^= 1
    with pytest.raises(LogError) as bad:
        verify_tree_head(bytes(signed))
    assert bad.value.reason == "bad_signature"
    with pytest.raises(LogError) as other:
        verify_tree_head(_head(tree, key=OTHER), node=NODE)
    assert other.value.reason == "wrong_node"
    # Signed, but the payload is not canonical (keys out of order).
    payload = cbor2.dumps({"size": 9, "root": tree.root(), "node": NODE, "timestamp_ms": 1})
    loose = cose.sign1(payload, cose.CONTENT_TYPE_TREE_HEAD, NODE, KEY)
    with pytest.raises(LogError) as noncanonical:
        verify_tree_head(loose)
    assert noncanonical.value.reason == "malformed"
    # A receipt's signature never passes for a head.
    receipt = cose.sign1(payload, cose.CONTENT_TYPE_RECEIPT, NODE, KEY)
    with pytest.raises(LogError):
        verify_tree_head(receipt)
    with pytest.raises(ValueError):
        sign_tree_head(TreeHead(1, bytes(32), 0, NODE), OTHER)


def test_a_log_proof_holds_only_for_its_receipt_index_and_head() -> None:
    tree = _log(ENTRIES)
    signed = _head(tree)
    for index, entry in enumerate(ENTRIES):
        proof = LogProof(index, 9, tree.root(), signed, tuple(tree.inclusion_path(index, 9)))
        assert verify_log_proof(entry, proof, NODE).size == 9
        assert LogProof.from_json(proof.to_json()) == proof
        with pytest.raises(LogError) as wrong:
            verify_log_proof(ENTRIES[(index + 1) % 9], proof, NODE)
        assert wrong.value.reason == "not_included"
    proof = LogProof(2, 9, tree.root(), signed, tuple(tree.inclusion_path(2, 9)))
    with pytest.raises(LogError) as lying_root:
        verify_log_proof(ENTRIES[2], LogProof(2, 9, bytes(32), signed, proof.path), NODE)
    assert lying_root.value.reason == "malformed"
    with pytest.raises(LogError) as not_executor:
        verify_log_proof(ENTRIES[2], proof, peer_id_from_public_key(OTHER.verify_key.encode()))
    assert not_executor.value.reason == "wrong_node"


@pytest.mark.parametrize(
    "change",
    [
        {"index": "1"},
        {"path": "ab"},
        {"root": "AB" * 32},
        {"head": "not base64!"},
        {"extra": 1},
    ],
)
def test_a_malformed_log_field_is_log_invalid(change: dict) -> None:
    tree = _log(ENTRIES)
    proof = LogProof(1, 9, tree.root(), _head(tree), tuple(tree.inclusion_path(1, 9))).to_json()
    assert "log_invalid" in REASONS
    check_log(ENTRIES[1], proof, NODE)
    with pytest.raises(Exception) as info:
        check_log(ENTRIES[1], {**proof, **change}, NODE)
    assert getattr(info.value, "reason", None) == "log_invalid"


def _consistency(tree: MerkleTree, first: int, second: int) -> LogConsistency:
    return LogConsistency(first, second, tuple(tree.consistency_path(first, second)))


def test_the_witness_follows_an_honest_log_with_consistency_proofs() -> None:
    tree = _log(ENTRIES)
    logs = PeerLogs()
    assert logs.observe(NODE, _head(tree, 3)) is None  # the first head is taken as it is
    asked = logs.observe(NODE, _head(tree, 7))
    assert asked is not None
    tag, request = asked
    assert tag == f"log:{NODE}" and (request.first, request.second) == (3, 7)
    assert logs.observe(NODE, _head(tree, 8)) is None  # one proof at a time
    logs.proved(NODE, _consistency(tree, 3, 7))
    state = logs.of(NODE)
    assert state.head is not None and state.head.size == 7 and state.inconsistencies == 0
    # An older head is checked too (proof from it to the held one), and the held one stays.
    asked = logs.observe(NODE, _head(tree, 5))
    assert asked is not None and (asked[1].first, asked[1].second) == (5, 7)
    logs.proved(NODE, _consistency(tree, 5, 7))
    assert logs.of(NODE).head.size == 7 and logs.of(NODE).inconsistencies == 0


def test_the_witness_counts_a_peer_that_rewrote_its_history() -> None:
    honest = _log(ENTRIES)
    forked = _log([*ENTRIES[:4], b"a different receipt 4", *ENTRIES[5:]])
    logs = PeerLogs()
    logs.observe(NODE, _head(honest, 6))
    # Same size, another root: two histories signed.
    logs.observe(NODE, _head(forked, 6))
    assert logs.of(NODE).inconsistencies == 1
    # A larger head of the forked history: its own consistency proof cannot hold.
    asked = logs.observe(NODE, _head(forked, 9))
    assert asked is not None
    logs.proved(NODE, _consistency(forked, 6, 9))
    state = logs.of(NODE)
    assert state.inconsistencies == 2 and state.head.size == 6  # the honest head is kept
    assert state.last_problem and "rewrote its history" in state.last_problem
    # No answer or a refusal is not proof of anything: asked again with the next head.
    asked = logs.observe(NODE, _head(honest, 9))
    logs.proved(NODE, None)
    assert logs.of(NODE).inconsistencies == 2
    assert logs.observe(NODE, _head(honest, 9)) is not None


def test_a_head_that_does_not_verify_is_ignored() -> None:
    logs = PeerLogs()
    assert logs.observe(NODE, base64.b64decode("AAAA")) is None
    assert logs.of(NODE).head is None
