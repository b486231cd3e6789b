"""Quorum jobs: one job run by several peers, accepted when enough receipts agree.

Theory of operation. A quorum placement (`replicas` k, `quorum` m, `max_replicas`) runs the
job on k distinct peers; each peer's result is an ordinary remote job whose receipt is
verified as usual. Two receipts *agree* when their `agreement_key`s are equal: the hash of
the receipt body without what differs between honest runs of one job (the job id and nonce
each replica gets, requester, executor, times, wall time, the engine's name and version, the
trap message, and the fuel of an outcome whose fuel is not exact).

`QuorumJob` is the sans-IO tally. The caller feeds it the candidates (best first), then one
`on_receipt` or `on_failed` per replica it launched; it answers with actions: `Launch(peer)`
for each replica to start, then exactly one of `Agreed` / `Disputed` / `NoReplicas`. It
decides only when no replica is running (so every launched peer's receipt is counted and a
dissenter is named): when some group of agreeing receipts has m members the job is
`Agreed`; otherwise it launches more replicas, as many as could still complete a quorum
(and to make up for failed ones), never a peer twice, at most `max_replicas` in all; when it
can launch none, the job is `Disputed` (or `NoReplicas` when no replica produced a receipt).

`check_quorum` is the offline check of a saved quorum (`plasmd verify`, `POST
/v1/receipts/verify`): every receipt valid, distinct executors, and m of them agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from plasm.protocol import cbor
from plasm.protocol.errors import ReceiptError
from plasm.protocol.receipt import (
    Receipt,
    envelope_from_json,
    receipt_to_body,
    receipt_to_json,
    verify_envelope,
)

MAX_REPLICAS = 16  # the most replicas one job may ask for (max_replicas included)

# Body fields two honest runs of one job may differ in: left out of the agreement key.
NON_DETERMINISTIC_FIELDS = frozenset(
    {
        "job_id",
        "nonce",
        "requester",
        "executor",
        "started_at_ms",
        "finished_at_ms",
        "wall_time_us",
        "engine",
        "message",
    }
)


def agreement_key(receipt: Receipt) -> bytes:
    """sha256 of the canonical CBOR of the receipt body's deterministic fields."""
    body = receipt_to_body(receipt)
    kept = {k: v for k, v in body.items() if k not in NON_DETERMINISTIC_FIELDS}
    if not receipt.fuel_exact:
        kept.pop("fuel_consumed")  # it depends on when the job was stopped, not on the job
    return hashlib.sha256(cbor.dumps(kept)).digest()


def check_placement(replicas: int, quorum: int, max_replicas: int) -> None:
    """1 <= quorum <= replicas <= max_replicas <= MAX_REPLICAS, else ValueError."""
    for name, value in (("replicas", replicas), ("quorum", quorum), ("max_replicas", max_replicas)):
        if type(value) is not int or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if quorum > replicas:
        raise ValueError(f"quorum {quorum} is more than the {replicas} replicas")
    if max_replicas < replicas:
        raise ValueError(f"max_replicas {max_replicas} is fewer than the {replicas} replicas")
    if max_replicas > MAX_REPLICAS:
        raise ValueError(f"max_replicas {max_replicas} is over this node's limit, {MAX_REPLICAS}")


@dataclass(frozen=True, slots=True)
class Vote:
    """One replica's verified receipt."""

    peer_id: str
    key: bytes
    envelope: bytes


@dataclass(frozen=True, slots=True)
class QuorumOutcome:
    """How a quorum job ended: `agreeing` is the agreed group (when `agreed`) or else the
    largest group; `dissenting` every other executor; `envelopes` every receipt, in the
    order they arrived."""

    agreed: bool
    quorum: int
    agreeing: tuple[str, ...]
    dissenting: tuple[str, ...]
    envelopes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "agreed": self.agreed,
            "quorum": self.quorum,
            "agreeing": list(self.agreeing),
            "dissenting": list(self.dissenting),
            # verified by the negotiator when they arrived
            "receipts": [receipt_to_json(e, already_verified=True) for e in self.envelopes],
        }


@dataclass(frozen=True, slots=True)
class Launch:
    peer_id: str


@dataclass(frozen=True, slots=True)
class Agreed:
    outcome: QuorumOutcome
    chosen: str  # the agreeing replica whose result is the job's


@dataclass(frozen=True, slots=True)
class Disputed:
    outcome: QuorumOutcome


@dataclass(frozen=True, slots=True)
class NoReplicas:
    """No replica produced a receipt (every peer refused or failed, or none was known)."""


QuorumAction = Launch | Agreed | Disputed | NoReplicas


@dataclass(slots=True)
class QuorumJob:
    replicas: int
    quorum: int
    max_replicas: int
    candidates: list[str] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    votes: list[Vote] = field(default_factory=list)
    failed: int = 0
    finished: bool = False
    seeded: str | None = None  # the executor of a reused receipt counted as one replica

    def __post_init__(self) -> None:
        check_placement(self.replicas, self.quorum, self.max_replicas)

    def seed(self, peer_id: str, key: bytes, envelope: bytes) -> None:
        """Count a verified earlier receipt (verified reuse) as one replica, before
        ``start``: its executor is never launched, and it is never the receipt chosen for
        the result (a live replica that agrees with it is)."""
        if self.launched or self.votes:
            raise ValueError("a quorum job is seeded before it starts")
        self.seeded = peer_id
        self.launched.append(peer_id)
        self.votes.append(Vote(peer_id, key, envelope))

    def start(self, candidates: tuple[str, ...] | list[str]) -> list[QuorumAction]:
        self.candidates = list(dict.fromkeys(candidates))
        return self._decide()

    def on_receipt(self, peer_id: str, key: bytes, envelope: bytes) -> list[QuorumAction]:
        self._settle(peer_id)
        self.votes.append(Vote(peer_id, key, envelope))
        return self._decide()

    def on_failed(self, peer_id: str) -> list[QuorumAction]:
        self._settle(peer_id)
        self.failed += 1
        return self._decide()

    def stop(self) -> list[QuorumAction]:
        """End now with what arrived (the deadline passed, or the node is stopping)."""
        self.running.clear()
        self.candidates = self.launched[:]
        return self._decide()

    def _settle(self, peer_id: str) -> None:
        if self.finished or peer_id not in self.running:
            raise ValueError(f"no replica is running on {peer_id}")
        self.running.discard(peer_id)

    def _groups(self) -> list[list[Vote]]:
        groups: dict[bytes, list[Vote]] = {}
        for vote in self.votes:
            groups.setdefault(vote.key, []).append(vote)
        # largest first; among equals, the one whose first receipt came first
        return sorted(groups.values(), key=lambda g: (-len(g), self.votes.index(g[0])))

    def _decide(self) -> list[QuorumAction]:
        if self.finished or self.running:
            return []
        groups = self._groups()
        best = len(groups[0]) if groups else 0
        if best >= self.quorum:
            return [self._end(groups, agreed=True)]
        wanted = max(self.replicas - len(self.votes), self.quorum - best)
        fresh = [p for p in self.candidates if p not in self.launched]
        count = min(wanted, self.max_replicas - len(self.launched), len(fresh))
        if count > 0:
            self.launched.extend(fresh[:count])
            self.running.update(fresh[:count])
            return [Launch(peer) for peer in fresh[:count]]
        if not self.votes:
            self.finished = True
            return [NoReplicas()]
        return [self._end(groups, agreed=False)]

    def _end(self, groups: list[list[Vote]], *, agreed: bool) -> Agreed | Disputed:
        self.finished = True
        agreeing = tuple(v.peer_id for v in groups[0])
        outcome = QuorumOutcome(
            agreed=agreed,
            quorum=self.quorum,
            agreeing=agreeing,
            dissenting=tuple(v.peer_id for v in self.votes if v.peer_id not in agreeing),
            envelopes=tuple(v.envelope for v in self.votes),
        )
        if not agreed:
            return Disputed(outcome)
        live = [peer for peer in agreeing if peer != self.seeded]
        return Agreed(outcome, live[0] if live else agreeing[0])


def check_quorum(quorum: Any, receipt: Receipt | None = None) -> dict[str, int]:
    """Check a saved `quorum` object offline; `ReceiptError` if it does not hold.

    Every receipt must verify (signature and key), no executor may appear twice, the
    `agreeing` peers must be exactly one group of receipts with equal agreement keys and at
    least `quorum` members, and `receipt` (the result's own, when given) must be one of
    them. Answers `{"agreeing": n, "quorum": m, "receipts": total}`.
    """
    if not isinstance(quorum, dict):
        raise ReceiptError("malformed", "'quorum' must be an object")
    wanted = quorum.get("quorum")
    receipts = quorum.get("receipts")
    agreeing = quorum.get("agreeing")
    if type(wanted) is not int or wanted < 1:
        raise ReceiptError("malformed", "quorum.quorum must be a positive integer")
    if not isinstance(receipts, list) or not receipts or not isinstance(agreeing, list):
        raise ReceiptError("malformed", "quorum.receipts and quorum.agreeing must be lists")
    if len(receipts) > 4 * MAX_REPLICAS:
        raise ReceiptError("malformed", f"a quorum holds at most {MAX_REPLICAS} receipts")
    keys: dict[str, bytes] = {}
    for index, item in enumerate(receipts):
        try:
            verified = verify_envelope(envelope_from_json(item))
        except ReceiptError as exc:
            raise ReceiptError(exc.reason, f"quorum receipt {index}: {exc.detail}") from exc
        if verified.executor in keys:
            raise ReceiptError(
                "duplicate_executor", f"{verified.executor} signed two of the quorum's receipts"
            )
        keys[verified.executor] = agreement_key(verified)
    groups: dict[bytes, set[str]] = {}
    for executor, key in keys.items():
        groups.setdefault(key, set()).add(executor)
    best = max(len(g) for g in groups.values())
    if best < wanted:
        raise ReceiptError(
            "no_quorum", f"at most {best} of {len(keys)} receipts agree; the quorum is {wanted}"
        )
    named = set(agreeing)
    if not any(named == g for g in groups.values() if len(g) >= wanted):
        raise ReceiptError(
            "quorum_mismatch", "quorum.agreeing is not a group of agreeing receipts"
        )
    if receipt is not None and receipt.executor not in named:
        raise ReceiptError("quorum_mismatch", "the result's receipt is not one of the agreeing")
    if receipt is not None and agreement_key(receipt) != keys[receipt.executor]:
        raise ReceiptError("quorum_mismatch", "the result's receipt is not the agreed one")
    return {"agreeing": len(named), "quorum": wanted, "receipts": len(keys)}
