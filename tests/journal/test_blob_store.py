"""The blob store on a real directory (and a real full tmpfs): streamed, checked, bounded."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from pathlib import Path

import pytest

from plasm.actors.blob_store import (
    BlobHashError,
    BlobNotFoundError,
    BlobStore,
    BlobStoreFullError,
    BlobTooLargeError,
)

pytestmark = pytest.mark.timeout(60)

MIB = 2**20


def _store(tmp_path: Path, max_bytes: int = 64 * MIB, max_blob: int = 16 * MIB) -> BlobStore:
    return BlobStore(tmp_path / "blobs", max_bytes, max_blob)


def _leftovers(store: BlobStore) -> list[str]:
    return [p.name for p in store.root.iterdir() if p.name.startswith(".tmp-")]


def test_streamed_chunks_make_one_blob_named_by_its_hash(tmp_path: Path) -> None:
    store = _store(tmp_path)
    data = os.urandom(3 * MIB + 17)
    with store.writer() as writer:
        for start in range(0, len(data), MIB):
            writer.write(data[start : start + MIB])
        digest = writer.commit()
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.read(digest) == data
    assert store.size(digest) == len(data) and store.used_bytes == len(data)
    assert store.read_range(digest, MIB, 10) == data[MIB : MIB + 10]
    assert store.read_range(digest, len(data) - 3, 100) == data[-3:]
    assert store.read_range(digest, len(data) + 5, 100) == b""
    assert b"".join(store.chunks(digest, 4096)) == data
    assert store.hashes() == [digest]


def test_the_same_bytes_twice_are_stored_and_counted_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.put(b"same")
    assert store.put(b"same") == first
    assert store.used_bytes == 4 and store.hashes() == [first]


def test_bytes_that_do_not_match_the_promised_hash_leave_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    promised = hashlib.sha256(b"the real thing").hexdigest()
    with pytest.raises(BlobHashError, match="not the promised"):
        store.put(b"something else", expected_sha256=promised)
    assert store.hashes() == [] and store.used_bytes == 0 and _leftovers(store) == []
    assert store.put(b"the real thing", expected_sha256=promised) == promised


def test_a_blob_over_the_per_blob_cap_is_stopped_at_the_chunk_that_crosses_it(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path, max_blob=2 * MIB)
    with store.writer() as writer:
        writer.write(b"x" * MIB)
        writer.write(b"x" * MIB)
        with pytest.raises(BlobTooLargeError, match=r"blobs\.max_blob_bytes"):
            writer.write(b"x")
    assert store.used_bytes == 0 and _leftovers(store) == [] and store.hashes() == []


def test_concurrent_writers_cannot_together_overshoot_the_store_budget(tmp_path: Path) -> None:
    store = _store(tmp_path, max_bytes=5 * MIB, max_blob=4 * MIB)
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def upload(seed: int) -> None:
        barrier.wait()
        try:
            with store.writer() as writer:
                for _ in range(2):
                    writer.write(bytes([seed]) * MIB)
                writer.commit()
            outcomes.append("stored")
        except BlobStoreFullError:
            outcomes.append("full")

    threads = [threading.Thread(target=upload, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["full", "stored", "stored"]
    assert store.used_bytes == 4 * MIB <= store.max_bytes
    assert _leftovers(store) == []


def test_collect_keeps_what_jobs_need_and_what_is_young(tmp_path: Path) -> None:
    store = _store(tmp_path)
    needed, young, stale = store.put(b"needed"), store.put(b"young"), store.put(b"stale")
    old = os.stat(store.path_for(stale)).st_mtime - 7200
    for digest in (needed, stale):
        os.utime(store.path_for(digest), (old, old))
    assert store.collect(keep={needed}, min_age_s=3600) == 1
    assert sorted(store.hashes()) == sorted([needed, young])
    assert store.used_bytes == len(b"needed") + len(b"young")
    with pytest.raises(BlobNotFoundError):
        store.read(stale)


def test_a_restart_counts_what_is_there_and_sweeps_interrupted_writes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    kept = store.put(b"kept")
    writer = store.writer()
    writer.write(b"half")  # the process dies here: its temporary file stays behind
    assert _leftovers(store)
    again = _store(tmp_path)
    assert _leftovers(again) == [] and again.hashes() == [kept] and again.used_bytes == 4


def test_names_that_are_not_hashes_are_not_found_and_reach_no_path(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for name in ("../../etc/passwd", "ab", "A" * 64, ""):
        assert store.size(name) is None
        with pytest.raises(BlobNotFoundError):
            store.read(name)


def test_a_full_disk_is_blob_store_full_and_leaves_nothing(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        store = BlobStore(mount / "blobs", 64 * MIB, 16 * MIB)
        with pytest.raises(BlobStoreFullError, match="disk"), store.writer() as writer:
            for _ in range(4):
                writer.write(b"y" * MIB)
        assert _leftovers(store) == [] and store.used_bytes == 0
        assert store.put(b"small") in store.hashes()  # space came back: it works again
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_sealed_writer_holds_the_bytes_in_its_file_until_it_ends(tmp_path: Path) -> None:
    store = _store(tmp_path, max_blob=MIB)
    data = os.urandom(2 * MIB)  # over max_blob_bytes, within this writer's own cap
    with store.writer(max_size=4 * MIB, limit_name="blobs.max_module_bytes") as writer:
        writer.write(data)
        assert writer.seal() == hashlib.sha256(data).hexdigest()
        assert writer.path.read_bytes() == data
        assert store.used_bytes == len(data)  # reserved while the caller copies it
    assert not writer.path.exists() and _leftovers(store) == []
    assert store.used_bytes == 0 and store.hashes() == []


def test_a_writer_over_its_own_cap_names_that_cap(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with (
        pytest.raises(BlobTooLargeError, match=r"blobs\.max_module_bytes"),
        store.writer(max_size=MIB, limit_name="blobs.max_module_bytes") as writer,
    ):
        writer.write(bytes(MIB + 1))
    assert _leftovers(store) == [] and store.used_bytes == 0
