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

from plasm.protocol.messages import Message, _register

PROTOCOL_NEGOTIATE = "/plasm/negotiate/1.0.0"  # JobOffer -> JobResponse
PROTOCOL_JOB = "/plasm/job/1.0.0"  # JobRequest -> JobResult | Error
PROTOCOL_MODULE = "/plasm/module/1.0.0"  # ModuleRequest -> ModuleData | Error
PROTOCOL_CAPS = "/plasm/caps/1.0.0"  # CapabilitiesRequest -> SignedCapabilities
PROTOCOLS = (PROTOCOL_NEGOTIATE, PROTOCOL_JOB, PROTOCOL_MODULE, PROTOCOL_CAPS)

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
    """Where a job runs: `local`, on the named `peer`, or on `any` peer that fits."""

    mode: str = "local"
    peer_id: str | None = None
    requirements: Requirements = field(default_factory=Requirements)
    exclude_self: bool = False

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
        )

    def __post_init__(self) -> None:
        if self.mode not in ("local", "peer", "any"):
            raise ValueError(f"placement mode must be local, peer or any, got {self.mode!r}")
        if (self.mode == "peer") != (self.peer_id is not None):
            raise ValueError("placement mode 'peer' needs peer_id, and only it takes one")


# The default placement, built once (a Placement costs ~3 µs to build and check).
LOCAL = Placement()


# --- local <-> network actor ------------------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class PeerRequest(Message):
    """-> network: one request/response exchange with `peer_id` on `protocol`."""

    TYPE: ClassVar[str] = "peer_request"
    peer_id: str
    protocol: str
    payload: bytes
    timeout_ms: int
    tag: str = ""  # echoed in the answer, so a non-blocking asker can match it


@_register
@dataclass(frozen=True, slots=True)
class PeerResponse(Message):
    TYPE: ClassVar[str] = "peer_response"
    peer_id: str
    payload: bytes
    tag: str = ""


@_register
@dataclass(frozen=True, slots=True)
class PeerFailure(Message):
    TYPE: ClassVar[str] = "peer_failure"
    peer_id: str
    reason: str
    message: str
    tag: str = ""

    def __post_init__(self) -> None:
        if self.reason not in PEER_FAILURES:
            raise ValueError(f"peer failure reason must be one of {sorted(PEER_FAILURES)}")


@_register
@dataclass(frozen=True, slots=True)
class InboundRequest(Message):
    """Network -> handler actor: `peer_id` (Noise-authenticated) sent `payload`."""

    TYPE: ClassVar[str] = "inbound_request"
    peer_id: str
    protocol: str
    payload: bytes


@_register
@dataclass(frozen=True, slots=True)
class PeerEvent(Message):
    """Network -> discovery: a peer was found, lost, connected, disconnected or rejected."""

    TYPE: ClassVar[str] = "peer_event"
    kind: str
    peer_id: str
    addresses: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PEER_EVENTS:
            raise ValueError(f"peer event kind must be one of {sorted(PEER_EVENTS)}")


@_register
@dataclass(frozen=True, slots=True)
class Dial(Message):
    """-> network: connect to a multiaddr ending in /p2p/<peer id>."""

    TYPE: ClassVar[str] = "dial"
    multiaddr: str


@_register
@dataclass(frozen=True, slots=True)
class Dialed(Message):
    TYPE: ClassVar[str] = "dialed"
    peer_id: str


@_register
@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE: ClassVar[str] = "ping"
    peer_id: str


@_register
@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    peer_id: str
    rtt_us: int


@_register
@dataclass(frozen=True, slots=True)
class Provide(Message):
    """-> network: announce in the DHT that this node provides `key`."""

    TYPE: ClassVar[str] = "provide"
    key: str


@_register
@dataclass(frozen=True, slots=True)
class FindProviders(Message):
    TYPE: ClassVar[str] = "find_providers"
    key: str
    limit: int
    timeout_ms: int


@_register
@dataclass(frozen=True, slots=True)
class ProviderInfo(Message):
    TYPE: ClassVar[str] = "provider_info"
    peer_id: str
    addresses: tuple[str, ...]


@_register
@dataclass(frozen=True, slots=True)
class Providers(Message):
    TYPE: ClassVar[str] = "providers"
    key: str
    providers: tuple[ProviderInfo, ...]


@_register
@dataclass(frozen=True, slots=True)
class PutRecord(Message):
    """-> network: store a value in the DHT (validated by namespace on every node)."""

    TYPE: ClassVar[str] = "put_record"
    key: str
    value: bytes


@_register
@dataclass(frozen=True, slots=True)
class GetRecord(Message):
    TYPE: ClassVar[str] = "get_record"
    key: str
    timeout_ms: int


@_register
@dataclass(frozen=True, slots=True)
class Record(Message):
    TYPE: ClassVar[str] = "record"
    key: str
    value: bytes | None


@_register
@dataclass(frozen=True, slots=True)
class GetNetworkInfo(Message):
    TYPE: ClassVar[str] = "get_network_info"


@_register
@dataclass(frozen=True, slots=True)
class ConnectedPeer(Message):
    TYPE: ClassVar[str] = "connected_peer"
    peer_id: str
    addresses: tuple[str, ...]


@_register
@dataclass(frozen=True, slots=True)
class NetworkInfo(Message):
    """The node's own addresses (full multiaddrs with /p2p/), reachability, connections."""

    TYPE: ClassVar[str] = "network_info"
    peer_id: str
    listen_addresses: tuple[str, ...]
    observed_addresses: tuple[str, ...]
    reachability: str  # "public", "private" or "unknown"
    connected: tuple[ConnectedPeer, ...]


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


@_register
@dataclass(frozen=True, slots=True)
class SignCapabilities(Message):
    """Discovery -> signer: sign this node's capability record."""

    TYPE: ClassVar[str] = "sign_capabilities"
    capabilities: bytes  # encode_message(Capabilities)
