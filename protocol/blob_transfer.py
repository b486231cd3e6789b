"""Chunked blob transfer (``/plasm/blob/1.0.0``): the messages, the assembler, the job's refs.

Theory of operation. Big things (a module, an input file, stdin, an output file) never
travel inside a job frame: the frame names them by ``BlobRef`` (sha256 + size; a
``FileRef`` adds the guest path) and the receiving node fetches the bytes from the sender
over their own protocol. The fetcher opens one stream, writes one frame ``BlobRequest``
(sha256, offset, length) and reads back a sequence of ``BlobChunk`` frames, each holding
at most ``CHUNK_SIZE`` bytes, in order and without gaps, until ``offset + length`` is
reached; the server then closes the stream. A refusal is one ``Error`` frame instead
(``not_found``: no such blob for you — the same answer whether the blob does not exist or
the peer has no right to it, so a stranger learns nothing; ``malformed``; ``busy``).
One stream carries the whole blob: a request per chunk costs a stream setup (~10 ms on
py-libp2p) per MiB. A fetcher that loses the stream may ask again from the offset it
reached.

``ChunkAssembler`` is the receiving side, pure: it takes each chunk, refuses one that is
not where the next byte belongs or runs past the promised size, and ``finish`` checks the
whole against the promised size and sha256. Nothing it returns has not been checked.

``split_input`` / ``join_input`` move a ``JobInput``'s big parts (stdin, files above
``INLINE_MAX``, or past ``INLINE_TOTAL`` together) out to refs and back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import ClassVar

from plasm.protocol import formats
from plasm.protocol.errors import ProtocolError
from plasm.protocol.messages import BlobRef, FileRef, Message, _register
from plasm.runtime.job import JobInput

PROTOCOL_BLOB = "/plasm/blob/1.0.0"
CHUNK_SIZE = 2**20
# A BlobChunk frame: the chunk plus its CBOR envelope (type tag, sha256, offset).
CHUNK_FRAME_CAP = CHUNK_SIZE + 4096
REQUEST_FRAME_CAP = 4096
INLINE_MAX = 2**20  # one part up to this size travels inside the job frame
INLINE_TOTAL = 4 * 2**20  # and all inline parts of one frame together up to this


class BlobTransferError(ProtocolError):
    """The bytes a peer sent for a blob are not the blob that was promised.

    ``reason``: ``out_of_order`` (a chunk not at the next offset), ``oversize`` (past the
    promised size), ``short`` (the stream ended early) or ``hash_mismatch``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@_register
@dataclass(frozen=True, slots=True)
class BlobRequest(Message):
    """Fetcher -> holder: send ``length`` bytes of blob ``sha256`` from ``offset``."""

    TYPE: ClassVar[str] = "blob_request"
    sha256: str
    offset: int
    length: int

    def __post_init__(self) -> None:
        formats.check_sha256_hex(self.sha256)
        formats.check_non_negative(self.offset, "blob_request.offset")
        formats.check_non_negative(self.length, "blob_request.length")


@_register
@dataclass(frozen=True, slots=True)
class BlobChunk(Message):
    """Holder -> fetcher: the bytes of blob ``sha256`` at ``offset`` (at most CHUNK_SIZE)."""

    TYPE: ClassVar[str] = "blob_chunk"
    sha256: str
    offset: int
    data: bytes

    def __post_init__(self) -> None:
        formats.check_sha256_hex(self.sha256)
        formats.check_non_negative(self.offset, "blob_chunk.offset")
        if len(self.data) > CHUNK_SIZE:
            raise ValueError(f"a blob_chunk holds at most {CHUNK_SIZE} bytes")


def chunk_plan(offset: int, length: int, chunk_size: int = CHUNK_SIZE) -> list[tuple[int, int]]:
    """The (offset, length) of each chunk that answers a request for ``length`` bytes."""
    return [
        (at, min(chunk_size, offset + length - at))
        for at in range(offset, offset + length, chunk_size)
    ]


class ChunkAssembler:
    """Receives the chunks of one blob in order and checks the whole at the end."""

    def __init__(self, blob: BlobRef) -> None:
        self.blob = blob
        self._hash = hashlib.sha256()
        self._parts: list[bytes] = []
        self.received = 0

    @property
    def complete(self) -> bool:
        return self.received == self.blob.size

    def feed(self, chunk: BlobChunk) -> None:
        if chunk.sha256 != self.blob.sha256:
            raise BlobTransferError(
                "out_of_order", f"a chunk of blob {chunk.sha256} came for blob {self.blob.sha256}"
            )
        if chunk.offset != self.received:
            raise BlobTransferError(
                "out_of_order",
                f"blob {self.blob.sha256}: a chunk at offset {chunk.offset}, expected "
                f"{self.received}",
            )
        if not chunk.data:
            raise BlobTransferError("out_of_order", f"blob {self.blob.sha256}: an empty chunk")
        if self.received + len(chunk.data) > self.blob.size:
            raise BlobTransferError(
                "oversize",
                f"blob {self.blob.sha256}: the peer sent bytes past the promised size "
                f"{self.blob.size}",
            )
        self._hash.update(chunk.data)
        self._parts.append(chunk.data)
        self.received += len(chunk.data)

    def finish(self) -> bytes:
        """The whole blob, once its size and sha256 are the promised ones."""
        if not self.complete:
            raise BlobTransferError(
                "short",
                f"blob {self.blob.sha256}: {self.received} of {self.blob.size} bytes arrived",
            )
        if self._hash.hexdigest() != self.blob.sha256:
            raise BlobTransferError(
                "hash_mismatch",
                f"the bytes sent for blob {self.blob.sha256} hash to {self._hash.hexdigest()}",
            )
        data = b"".join(self._parts)
        self._parts = [data]
        return data


# --- a job's input and outputs, inline or by reference -------------------------------------


@dataclass(frozen=True, slots=True)
class SplitInput:
    """A ``JobInput`` with its big parts moved out: what a ``JobRequest`` carries."""

    inline: JobInput  # stdin b"" when ``stdin`` is set; files by ref left out
    stdin: BlobRef | None
    files: tuple[FileRef, ...]


def split_input(job_input: JobInput) -> tuple[SplitInput, dict[str, bytes]]:
    """Move stdin and files that do not fit inline out to refs; the bytes of every ref."""
    blobs: dict[str, bytes] = {}
    budget = INLINE_TOTAL
    stdin_ref: BlobRef | None = None
    stdin = job_input.stdin
    if len(stdin) > INLINE_MAX:
        stdin_ref = BlobRef.of(stdin)
        blobs[stdin_ref.sha256] = stdin
        stdin = b""
    else:
        budget -= len(stdin)
    inline_files: list[tuple[str, bytes]] = []
    refs: list[FileRef] = []
    for path, data in job_input.files:
        if len(data) <= INLINE_MAX and len(data) <= budget:
            inline_files.append((path, data))
            budget -= len(data)
        else:
            ref = FileRef(path, BlobRef.of(data))
            blobs[ref.blob.sha256] = data
            refs.append(ref)
    inline = replace(job_input, stdin=stdin, files=tuple(inline_files))
    return SplitInput(inline, stdin_ref, tuple(refs)), blobs


def join_input(split: SplitInput, blobs: dict[str, bytes]) -> JobInput:
    """The whole ``JobInput`` again, given the (checked) bytes of every ref."""
    stdin = blobs[split.stdin.sha256] if split.stdin is not None else split.inline.stdin
    files = split.inline.files + tuple((ref.path, blobs[ref.blob.sha256]) for ref in split.files)
    return replace(split.inline, stdin=stdin, files=tuple(sorted(files)))


def split_outputs(
    outputs: tuple[tuple[str, bytes], ...],
) -> tuple[tuple[tuple[str, bytes], ...], tuple[FileRef, ...], dict[str, bytes]]:
    """Output files that travel inline, those by ref, and the bytes of every ref."""
    budget = INLINE_TOTAL
    inline: list[tuple[str, bytes]] = []
    refs: list[FileRef] = []
    blobs: dict[str, bytes] = {}
    for path, data in outputs:
        if len(data) <= INLINE_MAX and len(data) <= budget:
            inline.append((path, data))
            budget -= len(data)
        else:
            ref = FileRef(path, BlobRef.of(data))
            blobs[ref.blob.sha256] = data
            refs.append(ref)
    return tuple(inline), tuple(refs), blobs
