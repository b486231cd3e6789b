"""The receipt log's tree against RFC 9162's definitions and the CT project's test vectors."""

from __future__ import annotations

import hashlib

import pytest

from plasm.protocol.merkle import (
    EMPTY_ROOT,
    MemoryNodes,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

pytestmark = pytest.mark.timeout(60)

# The leaves and roots of the certificate-transparency test data (RFC 6962 / 9162 hashing).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def reference_root(entries: list[bytes]) -> bytes:
    """MTH as RFC 9162 §2.1.1 writes it, recursively over the entries."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return leaf_hash(entries[0])
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    return node_hash(reference_root(entries[:k]), reference_root(entries[k:]))


def _tree(count: int) -> tuple[MerkleTree, list[bytes]]:
    entries = [f"receipt {i}".encode() for i in range(count)]
    tree = MerkleTree(MemoryNodes())
    for entry in entries:
        tree.append(entry)
    return tree, entries


def test_roots_match_the_certificate_transparency_vectors() -> None:
    tree = MerkleTree(MemoryNodes())
    assert tree.root() == EMPTY_ROOT
    for count, (entry, expected) in enumerate(zip(CT_LEAVES, CT_ROOTS, strict=True), start=1):
        tree.append(entry)
        assert tree.root().hex() == expected, count
    assert [tree.root(n).hex() for n in range(1, 9)] == CT_ROOTS


def test_every_prefix_root_matches_the_recursive_definition() -> None:
    tree, entries = _tree(70)
    for size in range(71):
        assert tree.root(size) == reference_root(entries[:size]), size


def test_a_batch_append_stores_the_same_nodes_as_one_by_one() -> None:
    one_by_one, entries = _tree(37)
    batched = MerkleTree(MemoryNodes())
    batched.append_leaf_hashes([leaf_hash(e) for e in entries[:5]])
    batched.append_leaf_hashes([leaf_hash(e) for e in entries[5:]])
    assert batched.store.nodes == one_by_one.store.nodes  # type: ignore[attr-defined]


def test_every_inclusion_proof_verifies_and_only_for_its_leaf_and_root() -> None:
    tree, entries = _tree(33)
    for size in range(1, 34):
        root = tree.root(size)
        for index in range(size):
            path = tree.inclusion_path(index, size)
            assert verify_inclusion(index, size, leaf_hash(entries[index]), path, root)
            other = (index + 1) % size
            if other != index:
                assert not verify_inclusion(other, size, leaf_hash(entries[index]), path, root)
            assert not verify_inclusion(index, size, leaf_hash(b"forged"), path, root)
            if path:
                bent = [bytes(32), *path[1:]]
                assert not verify_inclusion(index, size, leaf_hash(entries[index]), bent, root)
                assert not verify_inclusion(index, size, leaf_hash(entries[index]), path[:-1], root)
                assert not verify_inclusion(
                    index, size, leaf_hash(entries[index]), [*path, bytes(32)], root
                )


def test_every_consistency_proof_verifies_and_a_rewritten_history_does_not() -> None:
    tree, entries = _tree(40)
    rewritten = MerkleTree(MemoryNodes())
    for i, entry in enumerate(entries):
        rewritten.append(b"rewritten" if i == 3 else entry)
    for second in range(41):
        for first in range(second + 1):
            path = tree.consistency_path(first, second)
            assert verify_consistency(first, second, tree.root(first), tree.root(second), path)
            if first > 3:  # leaf 3 differs: the old head cannot be a prefix of the new tree
                assert not verify_consistency(
                    first,
                    second,
                    tree.root(first),
                    rewritten.root(second),
                    rewritten.consistency_path(first, second),
                )
            if path:
                assert not verify_consistency(
                    first, second, tree.root(first), tree.root(second), path[:-1]
                )


def test_sizes_out_of_range_are_refused() -> None:
    tree, _ = _tree(5)
    with pytest.raises(ValueError):
        tree.inclusion_path(5, 5)
    with pytest.raises(ValueError):
        tree.root(6)
    with pytest.raises(ValueError):
        tree.consistency_path(4, 3)
    assert not verify_inclusion(5, 5, bytes(32), [], bytes(32))
    assert not verify_consistency(4, 3, bytes(32), bytes(32), [])
    assert not verify_consistency(2, 4, tree.root(2), tree.root(4), [])
