"""The peer-to-peer part of the catalogue: what local actors say to the network actor,
what it tells them back, and the job placement a client asks for.

Theory of operation. The network actor is the only code that touches libp2p. Local
actors ask it to run one request/response exchange with a peer (`PeerRequest`: open a
stream on `protocol`, write one frame, read one frame, within `timeout_ms`); the answer
comes back as `PeerResponse` (the payload bytes, an encoded catalogue message) or as
`PeerFailure` with a reason code — to the asker's future, or, when the request was sent
with `reply_to`, as a message to that actor (the negotiator works that way so it never
blocks). Inbound streams are handed to the actor registered for their protocol as
`InboundRequest`; the handler's answer (a `PeerResponse`, or a pykka future that will
hold one) is written back on the stream. Payloads stay bytes at this boundary, so the
network actor never needs to know the message types of the protocols it carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from plasm.protocol import formats
from plasm.protocol.messages import Message, _register
from plasm.protocol.quorum import MAX_REPLICAS, check_placement

PROTOCOL_NEGOTIATE = "/plasm/negotiate/1.0.0"  # JobOffer -> JobResponse
PROTOCOL_JOB = "/plasm/job/1.0.0"  # JobRequest -> JobResult | Error
PROTOCOL_MODULE = "/plasm/module/1.0.0"  # ModuleRequest -> ModuleData | Error
PROTOCOL_CAPS = "/plasm/caps/1.0.0"  # CapabilitiesRequest -> SignedCapabilities
PROTOCOL_LOG = "/plasm/log/1.0.0"  # LogConsistencyRequest -> LogConsistency | Error
PROTOCOL_CANCEL = "/plasm/cancel/1.0.0"  # CancelRequest -> CancelAnswer
PROTOCOLS = (
    PROTOCOL_NEGOTIATE, PROTOCOL_JOB, PROTOCOL_MODULE, PROTOCOL_CAPS, PROTOCOL_LOG,
    PROTOCOL_CANCEL,
)

PEER_FAILURES = frozenset(
    {
        "unreachable",  # no address, dial failed, or the peer does not speak the protocol
        "timeout",  # no whole answer within timeout_ms
        "reset",  # the stream or connection died mid-exchange
        "too_large",  # the answer frame was over the cap
        "malformed",  # the answer was not a frame of the catalogue
        "refused",  # the local network actor refused (per-peer limit, shutting down)
    }
)

PEER_EVENTS = frozenset({"found", "lost", "connected", "disconnected", "rejected"})


# --- placement ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a peer must offer to be a candidate for a job (0 / None: no requirement)."""

    runtime: str = "wasi-preview1"
    min_memory_bytes: int = 0
    min_fuel: int = 0
    min_timeout_ms: int = 0
    arch: str | None = None
    os: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a job runs: `local`, on the named `peer`, or on `any` peer that fits.

    `replicas` (mode `any` only) makes it a quorum job (`plasm.protocol.quorum`): run on that
    many distinct other peers, done when `quorum` receipts agree, adding replicas up to
    `max_replicas` (default twice `replicas`) while they disagree; with `include_self`
    this node runs one of the replicas.
    """

    mode: str = "local"
    peer_id: str | None = None
    requirements: Requirements = field(default_factory=Requirements)
    exclude_self: bool = False
    replicas: int | None = None
    quorum: int | None = None
    max_replicas: int | None = None
    include_self: bool = False

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None) -> Placement:
        """From a manifest's `placement` (already validated against its schema)."""
        if not obj:
            return cls()
        wanted = dict(obj.get("requirements") or {})
        return cls(
            mode=obj.get("mode", "local"),
            peer_id=obj.get("peer_id"),
            requirements=Requirements(**wanted),
            exclude_self=bool(obj.get("exclude_self", False)),
            replicas=obj.get("replicas"),
            quorum=obj.get("quorum"),
            max_replicas=obj.get("max_replicas"),
            include_self=bool(obj.get("include_self", False)),
        )

    def __post_init__(self) -> None:
        if self.mode not in ("local", "peer", "any"):
            raise ValueError(f"placement mode must be local, peer or any, got {self.mode!r}")
        if (self.mode == "peer") != (self.peer_id is not None):
            raise ValueError("placement mode 'peer' needs peer_id, and only it takes one")
        if self.replicas is None:
            if self.quorum is not None or self.max_replicas is not None or self.include_self:
                raise ValueError("quorum, max_replicas and include_self need replicas")
            return
        if self.mode != "any":
            raise ValueError("replicas need placement mode 'any'")
        if self.quorum is None or self.max_replicas is None:
            # the defaults: a majority of the replicas; twice the replicas (within the limit)
            quorum = self.replicas // 2 + 1 if self.quorum is None else self.quorum
            most = self.max_replicas
            if most is None and type(self.replicas) is int:
                most = min(2 * self.replicas, max(MAX_REPLICAS, self.replicas))
            object.__setattr__(self, "quorum", quorum)
            object.__setattr__(self, "max_replicas", most)
        assert self.quorum is not None and self.max_replicas is not None
        check_placement(self.replicas, self.quorum, self.max_replicas)

    @property
    def is_quorum(self) -> bool:
        return self.replicas is not None


# The default placement, built once (a Placement costs ~3 µs to build and check).
LOCAL = Placement()


# --- local <-> network actor ------------------------------------------------------------


# --- capabilities between peers ---------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class CapabilitiesRequest(Message):
    """Peer -> peer on PROTOCOL_CAPS: send me your signed capability record."""

    TYPE: ClassVar[str] = "capabilities_request"


@_register
@dataclass(frozen=True, slots=True)
class SignedCapabilities(Message):
    """A record from `plasm.protocol.capabilities.sign_capabilities`."""

    TYPE: ClassVar[str] = "signed_capabilities"
    record: bytes


# --- cancelling a job a peer runs for us ------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class CancelRequest(Message):
    """Requester -> executor on PROTOCOL_CANCEL: stop job ``job_id`` that I sent you. The
    executor takes it only from the peer that sent that job; the job then ends
    ``cancelled`` there, and its (signed) result goes back on the job's own stream."""

    TYPE: ClassVar[str] = "cancel_request"
    job_id: str

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)


@_register
@dataclass(frozen=True, slots=True)
class CancelAnswer(Message):
    """Executor -> requester: ``cancelling`` (the job is being stopped) or ``unknown`` (no
    job of that id from you runs here: it ended, or never came)."""

    TYPE: ClassVar[str] = "cancel_answer"
    job_id: str
    status: str

    def __post_init__(self) -> None:
        if self.status not in ("cancelling", "unknown"):
            raise ValueError("a cancel_answer's status is cancelling or unknown")


# --- the receipt log between peers ------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class LogConsistencyRequest(Message):
    """Peer -> peer on PROTOCOL_LOG: prove your log of ``second`` leaves extends ``first``'s
    (RFC 9162 consistency proof; both sizes at most your last signed head's)."""

    TYPE: ClassVar[str] = "log_consistency_request"
    first: int
    second: int

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.second:
            raise ValueError("a consistency proof goes from a smaller size to a larger one")


@_register
@dataclass(frozen=True, slots=True)
class LogConsistency(Message):
    TYPE: ClassVar[str] = "log_consistency"
    first: int
    second: int
    path: tuple[bytes, ...]


