"""What a requester keeps of each peer's receipt log, and how it catches a rewritten history.

Each verified result a peer returns carries a tree head the peer signed (``JobResult.log``).
`PeerLogs.observe` keeps the largest head seen of each peer. When a head of another size
arrives, the two must be consistent: the peer is asked (``/plasm/log/1.0.0``) for the RFC 9162
consistency proof between the two sizes, and `PeerLogs.proved` checks it. A head of the same
size with another root, or a proof that does not hold, is an *inconsistency*: the peer signed
two histories. It is logged, counted (``log_inconsistencies`` in ``GET /v1/peers/{id}``) and
the head already held is kept. A peer that does not answer is asked again with its next head.

Sans-IO: the discovery actor sends the requests and feeds the answers. Held in memory: a
restarted requester starts again from the next head each peer shows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from plasm.protocol.p2p_messages import LogConsistency, LogConsistencyRequest
from plasm.protocol.transparency import LogError, TreeHead, check_consistency, verify_tree_head

log = logging.getLogger(__name__)

TAG = "log:"


@dataclass(slots=True)
class PeerLog:
    head: TreeHead | None = None
    inconsistencies: int = 0
    pending: TreeHead | None = None  # the head whose consistency proof was asked for
    last_problem: str | None = None


class PeerLogs:
    def __init__(self) -> None:
        self._peers: dict[str, PeerLog] = {}

    def of(self, peer_id: str) -> PeerLog:
        return self._peers.setdefault(peer_id, PeerLog())

    def observe(self, peer_id: str, head_cose: bytes) -> tuple[str, LogConsistencyRequest] | None:
        """A head ``peer_id`` sent (already checked against its result, or not): a request
        to send (tag, message) when its consistency with the held head must be proved."""
        try:
            head = verify_tree_head(head_cose, node=peer_id)
        except LogError as exc:
            log.warning("peer %s sent a tree head that does not verify: %s", peer_id, exc)
            return None
        state = self.of(peer_id)
        held = state.head
        if held is None:
            state.head = head
            return None
        if head.size == held.size:
            if head.root != held.root:
                self._inconsistent(
                    peer_id,
                    f"two signed heads of size {head.size} with roots {held.root.hex()} and "
                    f"{head.root.hex()}",
                )
            return None
        if state.pending is not None:
            return None  # one proof at a time; the next head asks again
        state.pending = head
        first, second = sorted((held.size, head.size))
        return f"{TAG}{peer_id}", LogConsistencyRequest(first=first, second=second)

    def proved(self, peer_id: str, answer: object) -> None:
        """The peer's answer to the consistency request (a decoded message, or None)."""
        state = self.of(peer_id)
        newer, state.pending = state.pending, None
        held = state.head
        if newer is None or held is None:
            return
        first, second = sorted((held.size, newer.size))
        if not (
            isinstance(answer, LogConsistency)
            and (answer.first, answer.second) == (first, second)
        ):
            log.info("peer %s gave no consistency proof for its log (%r)", peer_id, answer)
            return
        try:
            check_consistency(held, newer, answer.path)
        except LogError as exc:
            self._inconsistent(peer_id, exc.detail)
            return
        if newer.size > held.size:
            state.head = newer

    def unanswered(self, peer_id: str) -> None:
        self.of(peer_id).pending = None

    def _inconsistent(self, peer_id: str, detail: str) -> None:
        state = self.of(peer_id)
        state.inconsistencies += 1
        state.last_problem = detail
        log.error(
            "peer %s signed an inconsistent receipt log: %s",
            peer_id,
            detail,
            extra={"event": "peer_log_inconsistent", "peer_id": peer_id},
        )
