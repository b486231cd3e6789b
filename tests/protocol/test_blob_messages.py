"""The blob transfer protocol, sans I/O: its messages, the chunk assembler, inline or by ref."""

from __future__ import annotations

import hashlib
import os

import pytest

from plasm.protocol import cbor
from plasm.protocol.blob_transfer import (
    CHUNK_FRAME_CAP,
    CHUNK_SIZE,
    INLINE_MAX,
    BlobChunk,
    BlobRequest,
    BlobTransferError,
    ChunkAssembler,
    chunk_plan,
    join_input,
    split_input,
    split_outputs,
)
from plasm.protocol.errors import DecodeError
from plasm.protocol.messages import BlobRef, decode_message, encode_message
from plasm.runtime.job import JobInput

SHA = "ab" * 32


def chunks_of(data: bytes) -> list[BlobChunk]:
    sha = hashlib.sha256(data).hexdigest()
    return [BlobChunk(sha, at, data[at : at + n]) for at, n in chunk_plan(0, len(data))]


def test_a_full_chunk_fits_its_frame_cap() -> None:
    encoded = encode_message(BlobChunk(SHA, 2**40, b"\xff" * CHUNK_SIZE))
    assert len(encoded) <= CHUNK_FRAME_CAP
    assert decode_message(encoded, max_size=CHUNK_FRAME_CAP) == BlobChunk(
        SHA, 2**40, b"\xff" * CHUNK_SIZE
    )


def test_a_chunk_above_the_chunk_size_is_refused_on_decode() -> None:
    with pytest.raises(ValueError, match="at most"):
        BlobChunk(SHA, 0, b"\0" * (CHUNK_SIZE + 1))
    body = {"sha256": SHA, "offset": 0, "data": b"\0" * (CHUNK_SIZE + 1)}
    raw = cbor.dumps({"t": "blob_chunk", "v": 1, "b": body})
    with pytest.raises(DecodeError, match="at most"):
        decode_message(raw, max_size=CHUNK_FRAME_CAP)


def test_a_request_names_a_hash_and_a_non_negative_range() -> None:
    assert decode_message(encode_message(BlobRequest(SHA, 5, 7))) == BlobRequest(SHA, 5, 7)
    with pytest.raises(ValueError):
        BlobRequest("not a hash", 0, 1)
    with pytest.raises(ValueError):
        BlobRequest(SHA, -1, 1)


def test_the_plan_covers_the_range_in_chunks_of_one_mib() -> None:
    assert chunk_plan(0, 2 * CHUNK_SIZE + 3) == [
        (0, CHUNK_SIZE),
        (CHUNK_SIZE, CHUNK_SIZE),
        (2 * CHUNK_SIZE, 3),
    ]
    assert chunk_plan(10, 0) == []


def test_the_assembler_gives_back_the_blob_it_was_promised() -> None:
    data = os.urandom(3 * CHUNK_SIZE + 17)
    assembler = ChunkAssembler(BlobRef.of(data))
    for chunk in chunks_of(data):
        assembler.feed(chunk)
    assert assembler.finish() == data


def test_an_empty_blob_needs_no_chunk() -> None:
    assert ChunkAssembler(BlobRef.of(b"")).finish() == b""


def test_a_chunk_past_the_promised_size_is_refused() -> None:
    data = os.urandom(CHUNK_SIZE + 10)
    assembler = ChunkAssembler(BlobRef(hashlib.sha256(data).hexdigest(), CHUNK_SIZE))
    assembler.feed(chunks_of(data)[0])
    with pytest.raises(BlobTransferError) as caught:
        assembler.feed(chunks_of(data)[1])
    assert caught.value.reason == "oversize"


def test_a_chunk_out_of_place_is_refused() -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    assembler = ChunkAssembler(BlobRef.of(data))
    with pytest.raises(BlobTransferError) as caught:
        assembler.feed(chunks_of(data)[1])
    assert caught.value.reason == "out_of_order"


def test_bytes_that_do_not_hash_to_the_name_are_never_returned() -> None:
    data = os.urandom(CHUNK_SIZE + 5)
    assembler = ChunkAssembler(BlobRef.of(data))
    for chunk in chunks_of(b"\0" * len(data)):
        assembler.feed(BlobChunk(BlobRef.of(data).sha256, chunk.offset, chunk.data))
    with pytest.raises(BlobTransferError) as caught:
        assembler.finish()
    assert caught.value.reason == "hash_mismatch"


def test_a_blob_cut_short_is_refused() -> None:
    data = os.urandom(CHUNK_SIZE + 5)
    assembler = ChunkAssembler(BlobRef.of(data))
    assembler.feed(chunks_of(data)[0])
    with pytest.raises(BlobTransferError) as caught:
        assembler.finish()
    assert caught.value.reason == "short"


def test_big_input_parts_go_by_reference_and_come_back_whole() -> None:
    big, small = os.urandom(INLINE_MAX + 1), b"small"
    job_input = JobInput(
        stdin=os.urandom(INLINE_MAX + 2),
        args=("a",),
        files=(("/input/big.bin", big), ("/input/small.txt", small)),
    )
    split, blobs = split_input(job_input)
    assert split.inline.stdin == b"" and split.stdin is not None
    assert split.inline.files == (("/input/small.txt", small),)
    assert [ref.path for ref in split.files] == ["/input/big.bin"]
    assert set(blobs) == {split.stdin.sha256, split.files[0].blob.sha256}
    assert join_input(split, blobs) == job_input
    assert join_input(split, blobs).sha256() == job_input.sha256()


def test_a_small_input_travels_inline() -> None:
    job_input = JobInput(stdin=b"hi", files=(("/input/a", b"x"),))
    split, blobs = split_input(job_input)
    assert split.inline == job_input and split.stdin is None and not split.files and not blobs


def test_outputs_over_the_inline_budget_go_by_reference() -> None:
    outputs = tuple((f"/output/{i}", os.urandom(INLINE_MAX)) for i in range(6))
    inline, refs, blobs = split_outputs(outputs)
    assert len(inline) == 4 and len(refs) == 2
    assert sorted(inline + tuple((r.path, blobs[r.blob.sha256]) for r in refs)) == list(outputs)
