"""The receipt log in the journal's SQLite file (actors/journal_store.py): leaves with their
jobs, one signed head per batch, nothing rewritten, a damaged log refused at start."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

import nacl.signing
import pytest

from plasm.actors.journal_store import JournalError, JournalStore
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.merkle import leaf_hash, verify_consistency, verify_inclusion
from plasm.protocol.transparency import TreeHead, sign_tree_head, verify_log_proof

pytestmark = pytest.mark.timeout(30)

KEY = nacl.signing.SigningKey(bytes(32))
NODE = peer_id_from_public_key(KEY.verify_key.encode())
MODULE_SHA = "ab" * 32


def _sign(head: TreeHead) -> bytes:
    return sign_tree_head(head, KEY)


def _job(store: JournalStore, n: int, *, logged: bool = True) -> int | None:
    jid = f"{n:032x}"
    store.add_job(jid, b"{}", MODULE_SHA, created_at_ms=n)
    return store.finish_job(
        jid, "done", finished_at_ms=n, outcome="ok", result=b"{}",
        envelope=f"receipt {n}".encode(), error=None, logged=logged,
    )


def test_logged_receipts_are_leaves_in_order_and_a_batch_signs_one_head(tmp_path: Path) -> None:
    with JournalStore(tmp_path / "j.sqlite3") as store:
        store.begin_batch()
        indexes = [_job(store, n) for n in range(1, 4)]
        assert _job(store, 9, logged=False) is None  # a peer's receipt: not ours to log
        head = store.sign_tree_head(NODE, 1000, _sign)
        assert store.sign_tree_head(NODE, 1001, _sign) is None  # nothing new: no second head
        store.commit_batch()
        assert indexes == [0, 1, 2] and head is not None and head[0].size == 3
        for n, index in zip(range(1, 4), indexes, strict=True):
            proof = store.log_proof(index, head)
            assert verify_log_proof(f"receipt {n}".encode(), proof, NODE).size == 3
        assert store.log_entries(0, 3, most=3) == [b"receipt 1", b"receipt 2", b"receipt 3"]
        with pytest.raises(ValueError):
            store.log_entries(0, 3, most=2)
        assert store.log_index(f"{9:032x}") is None


def test_the_log_survives_reopening_and_grows_consistently(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with JournalStore(path) as store:
        for n in range(1, 6):
            _job(store, n)
        first = store.sign_tree_head(NODE, 1, _sign)
    assert first is not None
    with JournalStore(path) as store:
        assert store.latest_head() == first and store.log_size == 5
        for n in range(6, 12):
            _job(store, n)
        second = store.sign_tree_head(NODE, 2, _sign)
        assert second is not None
        path_ = store.log_consistency(5, 11)
        inclusion = store.log_inclusion(7, 11)
        with pytest.raises(ValueError):
            store.log_inclusion(0, 12)  # past the last signed head
    assert verify_consistency(5, 11, first[0].root, second[0].root, path_)
    assert verify_inclusion(7, 11, leaf_hash(b"receipt 8"), inclusion, second[0].root)


def test_a_finish_that_fails_leaves_no_leaf_behind(tmp_path: Path) -> None:
    with JournalStore(tmp_path / "j.sqlite3") as store:
        _job(store, 1)
        store.add_job(f"{2:032x}", b"{}", MODULE_SHA, created_at_ms=2)
        with pytest.raises(JournalError):
            # The leaf is appended, then naming the blobs fails (SQLite cannot bind an
            # object): the whole finish rolls back, the leaf with it.
            store.finish_job(
                f"{2:032x}", "done", finished_at_ms=3, outcome="ok", result=b"{}",
                envelope=b"lost", error=None, logged=True, blobs=[cast(str, object())],
            )
        assert store.log_size == 1 and store.log_index(f"{2:032x}") is None
        assert _job(store, 4) == 1  # the next leaf takes the next index, no gap
        head = store.sign_tree_head(NODE, 5, _sign)
        assert head is not None and head[0].size == 2


def test_the_log_tables_refuse_rewrites_and_a_damaged_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with JournalStore(path) as store:
        for n in range(1, 4):
            _job(store, n)
        store.sign_tree_head(NODE, 1, _sign)
    raw = sqlite3.connect(path)
    for statement in (
        "UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0",
        "DELETE FROM log_entries WHERE idx = 2",
        "UPDATE log_heads SET size = 9",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(statement)
    # Someone who drops the triggers to rewrite a leaf is found out at the next start.
    raw.execute("DROP TRIGGER log_nodes_are_append_only")
    raw.execute("UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 0")
    raw.commit()
    raw.close()
    with pytest.raises(JournalError, match="receipt log"):
        JournalStore(path)
