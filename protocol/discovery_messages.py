"""Catalogue messages of the discovery and negotiator actors (never sent to peers).

Discovery keeps the peer table; the negotiator and the shell ask it for candidates
(`FindCandidates` -> `Candidates`) and for the table (`ListPeers` -> `PeerList`), and the
negotiator reports how each peer behaved (`RecordPeerOutcome`). The rest are the timer
and bookkeeping messages the two actors send themselves, registered like every other
message so strict mode can round-trip them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from plasm.protocol.messages import Capabilities, Message, _register
from plasm.protocol.p2p_messages import Requirements

PEER_OUTCOMES = frozenset({"ran", "receipt_rejected", "failed"})
DEFAULT_CANDIDATE_LIMIT = 8


@_register
@dataclass(frozen=True, slots=True)
class FindCandidates(Message):
    """-> discovery: peers whose verified records meet `requirements`, best first.

    Answered on the `reply` future, or told to `reply_to` as `Candidates` with the same
    `tag` (the negotiator's way, so it never blocks).
    """

    TYPE: ClassVar[str] = "find_candidates"
    requirements: Requirements = field(default_factory=Requirements)
    exclude: tuple[str, ...] = ()
    limit: int = DEFAULT_CANDIDATE_LIMIT
    tag: str = ""

    def __post_init__(self) -> None:
        if type(self.limit) is not int or self.limit < 1:
            raise ValueError(
                f"find_candidates.limit must be a positive integer, got {self.limit!r}"
            )
        object.__setattr__(self, "exclude", tuple(self.exclude))


@_register
@dataclass(frozen=True, slots=True)
class Candidates(Message):
    TYPE: ClassVar[str] = "candidates"
    peer_ids: tuple[str, ...]
    tag: str = ""


@_register
@dataclass(frozen=True, slots=True)
class PeerInfo(Message):
    """One row of the peer table; `capabilities` only once its signed record verified."""

    TYPE: ClassVar[str] = "peer_info"
    peer_id: str
    addresses: tuple[str, ...]
    capabilities: Capabilities | None
    last_seen_ms: int
    latency_us: int | None
    jobs_run: int
    receipts_rejected: int
    failures: int
    connected: bool


@_register
@dataclass(frozen=True, slots=True)
class ListPeers(Message):
    TYPE: ClassVar[str] = "list_peers"


@_register
@dataclass(frozen=True, slots=True)
class PeerList(Message):
    TYPE: ClassVar[str] = "peer_list"
    peers: tuple[PeerInfo, ...]


@_register
@dataclass(frozen=True, slots=True)
class RecordPeerOutcome(Message):
    """Negotiator -> discovery: `peer_id` ran a job, sent a bad receipt, or failed us."""

    TYPE: ClassVar[str] = "record_peer_outcome"
    peer_id: str
    outcome: str

    def __post_init__(self) -> None:
        if self.outcome not in PEER_OUTCOMES:
            raise ValueError(f"peer outcome must be one of {sorted(PEER_OUTCOMES)}")


# --- messages the actors send themselves --------------------------------------------------


@_register
@dataclass(frozen=True, slots=True)
class PublishCapabilities(Message):
    """Discovery's timer: rebuild, sign and announce this node's capability record."""

    TYPE: ClassVar[str] = "publish_capabilities"


@_register
@dataclass(frozen=True, slots=True)
class CandidateSearchExpired(Message):
    """Discovery's timer: stop waiting for the DHT on behalf of query `tag`."""

    TYPE: ClassVar[str] = "candidate_search_expired"
    tag: str


@_register
@dataclass(frozen=True, slots=True)
class NegotiationDeadline(Message):
    """Negotiator's timer: remote job `job_id` has reached its deadline."""

    TYPE: ClassVar[str] = "negotiation_deadline"
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class RemoteJobSettled(Message):
    """Negotiator -> itself: the job it ran for `peer_id` finished; free its slot."""

    TYPE: ClassVar[str] = "remote_job_settled"
    peer_id: str
    job_id: str


@_register
@dataclass(frozen=True, slots=True)
class SweepRemoteJobs(Message):
    """Negotiator's timer: free the slots of remote jobs that ended without settling."""

    TYPE: ClassVar[str] = "sweep_remote_jobs"


@_register
@dataclass(frozen=True, slots=True)
class RecordFacts(Message):
    """Discovery -> itself: what its next capability record says (gathered without blocking)."""

    TYPE: ClassVar[str] = "record_facts"
    addresses: tuple[str, ...]
    free_slots: int
