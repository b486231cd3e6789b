"""The message catalogue and its codec: what peers say on the wire.

Theory of operation: each message is a frozen, slotted dataclass with a ``TYPE`` tag and a
``VERSION``, registered in ``MESSAGE_TYPES``. The wire catalogue (``WIRE_TYPES``) is what
this module and ``p2p_messages`` define with ``register_message``; the actors register
their internal messages (``plasm.actors.messages``) with ``register_local``, for the same
codec but never for a peer: ``decode_message`` accepts only ``allowed`` types, the wire
catalogue unless told otherwise. ``encode_message`` writes canonical CBOR
``{"t": TYPE, "v": VERSION, "b": {field: value}}``. ``decode_message`` reads it strictly,
looks ``(t, v)`` up (``UnknownMessageError`` names what it did not know), then rebuilds the
dataclass checking every field against its declared type, so a peer cannot smuggle an int where
bytes belong. Constructors check formats (job IDs, hashes, nonces, reason codes) and raise
``ValueError``; on decode that becomes a ``DecodeError``.

``ExecuteJob`` and ``JobExecuted`` live here although no peer sends them: they are the job
and its run as the negotiation state machine and the receipts know them. Local messages
travel between actors as objects; ``roundtrip`` (decode after encode) lets a strict test
mode prove each of them could cross a process boundary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from plasm.protocol import cbor, fields, formats
from plasm.protocol.errors import (
    DecodeError,
    DuplicateMessageTypeError,
    PeerIdError,
    UnknownMessageError,
)
from plasm.protocol.identity import public_key_from_peer_id
from plasm.protocol.transparency import LogProof
from plasm.runtime.job import JobInput, Limits, Outcome

MAX_MESSAGE_SIZE = 16 * 2**20
_ENVELOPE_KEYS = {"t", "v", "b"}

REJECT_REASONS = frozenset(
    {
        "busy",
        "limits_exceeded",
        "unsupported_runtime",
        "not_allowed",
        "rate_limited",
        "module_too_large",
        "input_too_large",
    }
)


class Message:
    """Base of every message class; ``isinstance(x, Message)`` tells a message apart."""

    __slots__ = ()
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


MESSAGE_TYPES: dict[tuple[str, int], type[Message]] = {}
_WIRE: set[type[Message]] = set()

M = TypeVar("M", bound=type[Message])


def register_local(cls: M) -> M:
    """Class decorator: add a message to the codec's catalogue, not to the wire's."""
    key = (cls.TYPE, cls.VERSION)
    if key in MESSAGE_TYPES:
        raise DuplicateMessageTypeError(
            f"message type {key} registered twice; give {cls.__name__} its own TYPE or VERSION"
        )
    MESSAGE_TYPES[key] = cls
    return cls


def register_message(cls: M) -> M:
    """Class decorator: add a message that peers may send one another (the wire catalogue)."""
    register_local(cls)
    _WIRE.add(cls)
    return cls


def wire_types() -> frozenset[type[Message]]:
    """Every message class a peer may send: what ``decode_message`` accepts by default."""
    return frozenset(_WIRE)


_register = register_message


def _check_module(module: bytes | None, module_sha256: str) -> None:
    formats.check_sha256_hex(module_sha256)
    if module is not None and not isinstance(module, bytes):
        raise ValueError("module must be bytes or None")


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A blob named by the sha256 (hex) of its bytes, and its size."""

    sha256: str
    size: int

    def __post_init__(self) -> None:
        formats.check_sha256_hex(self.sha256)
        formats.check_non_negative(self.size, "blob size")

    @classmethod
    def of(cls, data: bytes) -> BlobRef:
        return cls(hashlib.sha256(data).hexdigest(), len(data))


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file (an input or an output) by reference: its path and its blob."""

    path: str
    blob: BlobRef

# --- local messages (between actors) -------------------------------------------------------


@register_local
@dataclass(frozen=True, slots=True)
class ExecuteJob(Message):
    """Ingress -> executor: run this module (``None``: take it from the module cache)."""

    TYPE: ClassVar[str] = "execute_job"
    job_id: str
    module: bytes | None
    module_sha256: str
    job_input: JobInput
    limits: Limits
    requester: str
    nonce: bytes

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)
        _check_module(self.module, self.module_sha256)
        formats.check_nonce(self.nonce)


@register_local
@dataclass(frozen=True, slots=True)
class JobExecuted(Message):
    """Executor -> signer/ingress: the job ran (or failed to) with this outcome."""

    TYPE: ClassVar[str] = "job_executed"
    job_id: str
    outcome: Outcome
    module_sha256: str
    job_input: JobInput
    limits: Limits
    requester: str
    nonce: bytes

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)
        formats.check_sha256_hex(self.module_sha256)
        formats.check_nonce(self.nonce)

    @classmethod
    def of(cls, job: ExecuteJob, outcome: Outcome) -> JobExecuted:
        """What running `job` gave: its identity, input and limits, with `outcome`."""
        return cls(
            job_id=job.job_id,
            outcome=outcome,
            module_sha256=job.module_sha256,
            job_input=job.job_input,
            limits=job.limits,
            requester=job.requester,
            nonce=job.nonce,
        )


# --- wire messages (between peers) ---------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class Capabilities(Message):
    """What a peer offers; published signed (``plasm.protocol.capabilities``)."""

    TYPE: ClassVar[str] = "capabilities"
    peer_id: str
    arch: str
    os: str
    cpus: int
    memory_bytes: int
    runtimes: tuple[str, ...]
    engine_name: str
    engine_version: str
    max_limits: Limits
    free_slots: int
    addresses: tuple[str, ...]
    expires_at_ms: int

    def __post_init__(self) -> None:
        try:
            public_key_from_peer_id(self.peer_id)
        except PeerIdError as exc:
            raise ValueError(f"capabilities peer_id: {exc}") from exc
        for name in ("cpus", "memory_bytes", "free_slots", "expires_at_ms"):
            formats.check_non_negative(getattr(self, name), f"capabilities.{name}")
        object.__setattr__(self, "runtimes", tuple(self.runtimes))
        object.__setattr__(self, "addresses", tuple(self.addresses))


@_register
@dataclass(frozen=True, slots=True)
class JobOffer(Message):
    """Requester -> executor: would you run this? Sizes and hashes, never bytes.

    ``input_size``: stdin, args and env bytes; ``files_size``: the input files' total
    bytes; ``largest_blob``: the biggest single part the executor would fetch (stdin or
    one file), so it can judge against its own per-blob maximum.
    """

    TYPE: ClassVar[str] = "job_offer"
    VERSION: ClassVar[int] = 2
    job_id: str
    module_sha256: str
    module_size: int
    limits: Limits
    input_size: int
    deadline_ms: int
    nonce: bytes
    files_size: int = 0
    largest_blob: int = 0

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)
        formats.check_sha256_hex(self.module_sha256)
        for name in ("module_size", "input_size", "files_size", "largest_blob", "deadline_ms"):
            formats.check_non_negative(getattr(self, name), f"job_offer.{name}")
        formats.check_nonce(self.nonce)


@_register
@dataclass(frozen=True, slots=True)
class JobResponse(Message):
    """Executor -> requester: accepted (maybe asking for the module), or a reason code."""

    TYPE: ClassVar[str] = "job_response"
    job_id: str
    accepted: bool
    reason: str | None
    need_module: bool

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)
        if self.accepted and self.reason is not None:
            raise ValueError("an accepted job_response carries no reason")
        if not self.accepted and self.reason not in REJECT_REASONS:
            raise ValueError(
                f"a rejecting job_response needs a reason in {sorted(REJECT_REASONS)}, "
                f"got {self.reason!r}"
            )
        if not self.accepted and self.need_module:
            raise ValueError("a rejecting job_response cannot ask for the module")


@_register
@dataclass(frozen=True, slots=True)
class JobRequest(Message):
    """Requester -> executor: the job itself.

    ``module``: the bytes only if the executor asked for them and they fit inline
    (``blob_transfer.INLINE_MAX``); else None, and an executor without the module fetches
    ``module_sha256`` (``module_size`` bytes) from the requester over ``/plasm/blob/1.0.0``.
    ``job_input`` holds the small parts inline; ``stdin_ref`` (then ``job_input.stdin`` is
    empty) and ``file_refs`` name the parts to fetch the same way. ``module_size`` 0 with
    bytes sent means their length; with none sent, that the module cannot be fetched.
    """

    TYPE: ClassVar[str] = "job_request"
    VERSION: ClassVar[int] = 2
    job_id: str
    module: bytes | None
    module_sha256: str
    job_input: JobInput
    limits: Limits
    nonce: bytes
    module_size: int = 0
    stdin_ref: BlobRef | None = None
    file_refs: tuple[FileRef, ...] = ()

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)
        _check_module(self.module, self.module_sha256)
        formats.check_non_negative(self.module_size, "job_request.module_size")
        if self.module is not None and self.module_size == 0:
            object.__setattr__(self, "module_size", len(self.module))
        if self.module is not None and len(self.module) != self.module_size:
            raise ValueError("job_request.module_size is not the size of the module sent")
        formats.check_nonce(self.nonce)
        object.__setattr__(self, "file_refs", tuple(self.file_refs))
        if self.stdin_ref is not None and self.job_input.stdin:
            raise ValueError("a job_request with stdin_ref carries no inline stdin")
        paths = [path for path, _ in self.job_input.files] + [r.path for r in self.file_refs]
        if len(set(paths)) != len(paths):
            raise ValueError("a job_request names an input file twice (inline and by ref)")


@_register
@dataclass(frozen=True, slots=True)
class JobResult(Message):
    """Executor -> requester: the receipt envelope and the output bytes it hashes.

    Output files travel inline (``output_files``) when small, else by reference
    (``output_refs``): the requester fetches those from the executor over
    ``/plasm/blob/1.0.0`` and checks every file against the receipt.
    """

    TYPE: ClassVar[str] = "job_result"
    VERSION: ClassVar[int] = 3
    job_id: str
    envelope: bytes
    stdout: bytes
    stderr: bytes
    output_files: tuple[tuple[str, bytes], ...] = ()
    output_refs: tuple[FileRef, ...] = ()
    # Where the executor's transparency log holds the receipt (None: it keeps no log).
    log: LogProof | None = None

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)


@_register
@dataclass(frozen=True, slots=True)
class ModuleRequest(Message):
    TYPE: ClassVar[str] = "module_request"
    module_sha256: str

    def __post_init__(self) -> None:
        formats.check_sha256_hex(self.module_sha256)


@_register
@dataclass(frozen=True, slots=True)
class ModuleData(Message):
    """The module bytes; the receiver must check ``sha256(data) == module_sha256``."""

    TYPE: ClassVar[str] = "module_data"
    module_sha256: str
    data: bytes

    def __post_init__(self) -> None:
        formats.check_sha256_hex(self.module_sha256)


@_register
@dataclass(frozen=True, slots=True)
class Error(Message):
    """Either side: the request failed; ``code`` is machine-readable, ``message`` for people."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str


# --- codec ---------------------------------------------------------------------------------


def encode_message(msg: Message) -> bytes:
    """Canonical CBOR ``{"t": TYPE, "v": VERSION, "b": fields}`` of a registered message."""
    cls = type(msg)
    if MESSAGE_TYPES.get((cls.TYPE, cls.VERSION)) is not cls:
        raise ValueError(f"{cls.__name__} is not a registered message class")
    return cbor.dumps({"t": cls.TYPE, "v": cls.VERSION, "b": fields.to_data(msg)})


def decode_message(
    data: bytes,
    *,
    max_size: int = MAX_MESSAGE_SIZE,
    allowed: frozenset[type[Message]] | None = None,
) -> Message:
    """Decode one message strictly; ``DecodeError`` (or ``UnknownMessageError``) otherwise.

    Only ``allowed`` types are accepted (default: the wire catalogue): a peer naming an
    actor-internal type gets ``UnknownMessageError``, as for a type that does not exist.
    """
    raw = cbor.loads(data, max_size=max_size)
    if not isinstance(raw, dict) or set(raw) != _ENVELOPE_KEYS:
        raise DecodeError('a message is a map with exactly the keys "t", "v" and "b"')
    type_tag, version = raw["t"], raw["v"]
    known = isinstance(type_tag, str) and type(version) is int  # True must not pass for 1
    cls = MESSAGE_TYPES.get((type_tag, version)) if known else None
    if cls is None or cls not in (_WIRE if allowed is None else allowed):
        raise UnknownMessageError(type_tag, version)
    message: Message = fields.from_data(cls, raw["b"], cls.TYPE)
    return message


MsgT = TypeVar("MsgT", bound=Message)


def roundtrip(msg: MsgT) -> MsgT:
    """``decode(encode(msg))``: what the receiver would get had ``msg`` crossed the wire."""
    encoded = encode_message(msg)  # not a frame: the wire's size cap does not apply
    decoded = decode_message(
        encoded, max_size=max(MAX_MESSAGE_SIZE, len(encoded)), allowed=frozenset({type(msg)})
    )
    if type(decoded) is not type(msg):  # cannot happen while TYPE tags are unique
        raise DecodeError(f"{type(msg).__name__} came back as {type(decoded).__name__}")
    return decoded
