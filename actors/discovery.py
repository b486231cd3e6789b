"""Discovery: the peer table, this node's capability record, and finding candidates.

Theory of operation. The network actor tells `PeerEvent`s. When a peer connects (or is
found and has no record yet), discovery asks it for its signed capability record over
`/plasm/caps/1.0.0` (a `PeerRequest` with `reply_to` = this actor, tag `caps:<peer>`)
and pings it for latency. A record is kept only if `verify_capabilities` accepts it, it
has not expired, and it describes the peer that sent it (the network authenticated that
peer with Noise); anything else is logged as `peer_rejected` and dropped.

This node's own record is rebuilt, signed by the signer and announced (`Provide` of the
runtime key, `PutRecord` under `/plasm/<peer id>`) at start and every
`publish_interval_s`, well inside its `record_ttl_ms` expiry; it is also the answer to
inbound `CapabilitiesRequest`s.

`FindCandidates` filters the verified, unexpired records by the requirements and ranks
them: fewest rejected receipts, then fewest disputed receipts, then fewest failures, then
free slots advertised, then lowest latency. A peer whose valid receipts disagreed with an
agreed quorum (`receipt_disputed`) `dispute_threshold` times is left out for
`dispute_cooldown_ms` (again after each further dispute); these records are kept in the
journal (`PeerDispute`) and given back to discovery at start. When none fits, it asks
the DHT for providers of the runtime, fetches their records and answers when one fits,
when all fetches ended, or at the search timeout, whichever comes first; the answer never
blocks this actor's thread.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import platform
import queue
import time
from dataclasses import dataclass, field
from typing import Any

import pykka

from plasm.actors._deferred import Timers, tell_quietly
from plasm.actors._future import Future
from plasm.actors._log_witness import TAG as LOG_TAG
from plasm.actors._log_witness import PeerLog, PeerLogs
from plasm.actors._mailbox import Delivery, LateRef, PlasmActor, ask_async, checked, handles, tell
from plasm.actors.messages import (
    Candidates,
    CandidateSearchExpired,
    FindCandidates,
    FindProviders,
    GetIngressStats,
    GetNetworkInfo,
    HandlerFailed,
    InboundRequest,
    IngressStats,
    ListPeers,
    NetworkInfo,
    PeerDispute,
    PeerEvent,
    PeerFailure,
    PeerInfo,
    PeerList,
    PeerLogHead,
    PeerRequest,
    PeerResponse,
    Ping,
    Pong,
    Provide,
    Providers,
    PublishCapabilities,
    PutRecord,
    RecordFacts,
    RecordPeerOutcome,
    SignCapabilities,
)
from plasm.protocol.capabilities import verify_capabilities
from plasm.protocol.errors import CapabilitiesError, DecodeError
from plasm.protocol.messages import Capabilities, Error, Message, decode_message, encode_message
from plasm.protocol.p2p_messages import (
    PROTOCOL_CAPS,
    PROTOCOL_LOG,
    CapabilitiesRequest,
    Requirements,
    SignedCapabilities,
)
from plasm.runtime.job import Limits

log = logging.getLogger(__name__)

RUNTIME = "wasi-preview1"
PROVIDER_KEY = f"plasm:runtime:{RUNTIME}"
RECORD_KEY_PREFIX = "/plasm/"  # the network's DHT validator accepts /plasm/<peer id> only
CAPS_TIMEOUT_MS = 5_000
PROVIDER_LIMIT = 20
_CAPS_TAG = "caps:"


@dataclass(frozen=True, slots=True)
class LocalCapabilities:
    """What this node advertises, apart from its addresses and free slots of the moment."""

    arch: str
    os: str
    cpus: int
    memory_bytes: int
    engine_name: str
    engine_version: str
    max_limits: Limits
    slots: int
    runtimes: tuple[str, ...] = (RUNTIME,)

    @classmethod
    def detect(
        cls, engine_name: str, engine_version: str, max_limits: Limits, slots: int
    ) -> LocalCapabilities:
        """This machine's architecture, OS, CPU count and physical memory."""
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            memory = 0
        return cls(
            arch=platform.machine().lower(),
            os=platform.system().lower(),
            cpus=os.cpu_count() or 1,
            memory_bytes=max(0, memory),
            engine_name=engine_name,
            engine_version=engine_version,
            max_limits=max_limits,
            slots=slots,
        )


@dataclass(slots=True)
class _Peer:
    peer_id: str
    addresses: tuple[str, ...] = ()
    capabilities: Capabilities | None = None
    last_seen_ms: int = 0
    latency_us: int | None = None
    jobs_run: int = 0
    receipts_rejected: int = 0
    failures: int = 0
    connected: bool = False
    idle_since_ms: int = field(default_factory=lambda: _now_ms())  # added or disconnected
    receipts_disputed: int = 0
    cooldown_until_ms: int | None = None

    def info(self, logs: PeerLog | None = None) -> PeerInfo:
        head = logs.head if logs is not None else None
        return PeerInfo(
            log_size=head.size if head is not None else None,
            log_root=head.root.hex() if head is not None else None,
            log_inconsistencies=logs.inconsistencies if logs is not None else 0,
            log_problem=logs.last_problem if logs is not None else None,
            peer_id=self.peer_id,
            addresses=self.addresses,
            capabilities=self.capabilities,
            last_seen_ms=self.last_seen_ms,
            latency_us=self.latency_us,
            jobs_run=self.jobs_run,
            receipts_rejected=self.receipts_rejected,
            failures=self.failures,
            connected=self.connected,
            receipts_disputed=self.receipts_disputed,
            cooldown_until_ms=self.cooldown_until_ms,
        )


@dataclass(slots=True)
class _Query:
    request: FindCandidates
    reply: pykka.Future[Any] | None
    reply_to: pykka.ActorRef[Any] | None
    searched: bool = False


@dataclass(slots=True)
class _Search:
    in_flight: bool = False
    fetching: set[str] = field(default_factory=set)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def fits(caps: Capabilities, requirements: Requirements, now_ms: int) -> bool:
    """Whether a verified record meets `requirements` (and has not expired)."""
    limits = caps.max_limits
    return (
        caps.expires_at_ms > now_ms
        and requirements.runtime in caps.runtimes
        and limits.fuel >= requirements.min_fuel
        and limits.memory_bytes >= requirements.min_memory_bytes
        and caps.memory_bytes >= requirements.min_memory_bytes
        and limits.timeout_ms >= requirements.min_timeout_ms
        and requirements.arch in (None, caps.arch)
        and requirements.os in (None, caps.os)
    )


def rank_candidates(
    peers: list[PeerInfo],
    requirements: Requirements,
    exclude: tuple[str, ...],
    now_ms: int,
    limit: int,
) -> tuple[str, ...]:
    """Peer ids that fit and are not cooling down, best first: trust, then most free
    slots, then latency."""

    def order(peer: PeerInfo) -> tuple[int, int, int, int, int, str]:
        caps = peer.capabilities
        free_slots = caps.free_slots if caps is not None else 0
        latency = peer.latency_us if peer.latency_us is not None else 2**62
        return (
            peer.receipts_rejected,
            peer.receipts_disputed,
            peer.failures,
            -free_slots,
            latency,
            peer.peer_id,
        )

    matching = [
        peer
        for peer in peers
        if peer.peer_id not in exclude
        and peer.capabilities is not None
        and (peer.cooldown_until_ms is None or peer.cooldown_until_ms <= now_ms)
        and fits(peer.capabilities, requirements, now_ms)
    ]
    return tuple(peer.peer_id for peer in sorted(matching, key=order)[:limit])


class DiscoveryActor(PlasmActor):
    def __init__(
        self,
        peer_id: str,
        network: LateRef,
        signer: pykka.ActorRef[Any],
        local: LocalCapabilities,
        *,
        ingress: LateRef | None = None,
        publish_interval_s: float = 60.0,
        record_ttl_ms: int = 10 * 60_000,
        search_timeout_ms: int = 2_000,
        ping_peers: bool = True,
        forget_after_ms: int = 600_000,
        journal: pykka.ActorRef[Any] | None = None,
        disputes: tuple[PeerDispute, ...] = (),
        dispute_threshold: int = 3,
        dispute_cooldown_ms: int = 3_600_000,
    ) -> None:
        super().__init__()
        self._peer_id = peer_id
        self._network = network
        self._signer = signer
        self._local = local
        self._ingress = ingress
        self._publish_interval_s = publish_interval_s
        self._record_ttl_ms = record_ttl_ms
        self._search_timeout_ms = search_timeout_ms
        self._ping_peers = ping_peers
        self._forget_after_ms = forget_after_ms
        self._forgot_at_ms = 0  # when the table was last swept of peers gone too long
        self._peers: dict[str, _Peer] = {}
        self._logs = PeerLogs()  # each peer's receipt log, as its results showed it
        self._record: bytes | None = None
        self._awaiting_record: list[tuple[str, pykka.Future[Any]]] = []
        self._queries: dict[str, _Query] = {}
        self._query_ids = itertools.count(1)
        self._search = _Search()
        self._timers = Timers()
        self._journal = journal
        self._dispute_threshold = dispute_threshold
        self._dispute_cooldown_ms = dispute_cooldown_ms
        for kept in disputes:
            peer = self._peer(kept.peer_id)
            peer.receipts_disputed = kept.receipts_disputed
            peer.cooldown_until_ms = kept.cooldown_until_ms

    def on_start(self) -> None:
        tell(self.actor_ref, PublishCapabilities())

    def on_stop(self) -> None:
        self._timers.cancel_all()

    # -- this node's record ------------------------------------------------------------

    @handles(PublishCapabilities)
    def on_publish(self, message: PublishCapabilities, delivery: Delivery) -> None:
        # The network starts after discovery: until it runs, sign a record (so inbound
        # requests get one) and look again soon, then announce with its addresses.
        # Nothing here blocks: the network's addresses and the ingress's load come back
        # as RecordFacts, the signed record as SignedCapabilities.
        ready = self._network.is_set
        interval = self._publish_interval_s if ready else min(0.2, self._publish_interval_s)
        self._timers.after("publish", interval, self.actor_ref, PublishCapabilities())
        # The callbacks run on other actors' threads: they touch only these locals.
        me, ingress, slots = self.actor_ref, self._ingress, self._local.slots
        info = ask_async(self._network.get(), GetNetworkInfo()) if ready else None

        def with_stats(addresses: tuple[str, ...]) -> None:
            if ingress is None or not ingress.is_set:
                tell_quietly(me, RecordFacts(addresses=addresses, free_slots=slots))
                return
            stats = ask_async(ingress.get(), GetIngressStats())
            stats.add_done_callback(
                lambda f: tell_quietly(
                    me, RecordFacts(addresses=addresses, free_slots=_free_slots_of(f, slots))
                )
            )

        if info is None:
            with_stats(())
        else:
            info.add_done_callback(lambda f: with_stats(_addresses_of(f)))

    @handles(RecordFacts)
    def on_record_facts(self, facts: RecordFacts, delivery: Delivery) -> None:
        caps = self._own_capabilities(facts)
        signed = ask_async(self._signer, SignCapabilities(capabilities=encode_message(caps)))
        me = self.actor_ref
        signed.add_done_callback(lambda f: _tell_answer(me, f, "signing the capability record"))

    @handles(SignedCapabilities)
    def on_record_signed(self, signed: SignedCapabilities, delivery: Delivery) -> None:
        self._record = signed.record
        waiting, self._awaiting_record = self._awaiting_record, []
        for peer_id, reply in waiting:
            with contextlib.suppress(queue.Full):  # the stream gave up meanwhile
                reply.set(checked(self._respond(peer_id, signed)))
        if self._network.is_set:
            network = self._network.get()
            tell(network, Provide(key=PROVIDER_KEY))
            tell(network, PutRecord(key=f"{RECORD_KEY_PREFIX}{self._peer_id}", value=signed.record))

    def _own_capabilities(self, facts: RecordFacts) -> Capabilities:
        local = self._local
        return Capabilities(
            peer_id=self._peer_id,
            arch=local.arch,
            os=local.os,
            cpus=local.cpus,
            memory_bytes=local.memory_bytes,
            runtimes=local.runtimes,
            engine_name=local.engine_name,
            engine_version=local.engine_version,
            max_limits=local.max_limits,
            free_slots=facts.free_slots,
            addresses=facts.addresses,
            expires_at_ms=_now_ms() + self._record_ttl_ms,
        )

    @handles(InboundRequest)
    def on_inbound(self, inbound: InboundRequest, delivery: Delivery) -> PeerResponse | None:
        try:
            request = decode_message(inbound.payload)
        except DecodeError as exc:
            return self._respond(inbound.peer_id, Error(code="malformed", message=str(exc)))
        if inbound.protocol != PROTOCOL_CAPS or not isinstance(request, CapabilitiesRequest):
            return self._respond(
                inbound.peer_id,
                Error(code="malformed", message=f"discovery answers only {PROTOCOL_CAPS}"),
            )
        if self._record is None:
            # Signing the first record is under way (messages, not a blocking ask): answer
            # when it is signed, within the stream's own answer deadline.
            reply = delivery.defer()
            if reply is not None:
                self._awaiting_record.append((inbound.peer_id, reply))
            return None
        return self._respond(inbound.peer_id, SignedCapabilities(record=self._record))

    @staticmethod
    def _respond(peer_id: str, message: Message) -> PeerResponse:
        return PeerResponse(peer_id=peer_id, payload=encode_message(message))

    # -- the peer table ----------------------------------------------------------------

    @handles(PeerEvent)
    def on_peer_event(self, event: PeerEvent, delivery: Delivery) -> None:
        if event.peer_id == self._peer_id:
            return
        peer = self._peer(event.peer_id)
        if event.addresses:
            peer.addresses = tuple(dict.fromkeys((*event.addresses, *peer.addresses)))
        extra = {
            "event": f"peer_{event.kind}",
            "peer_id": event.peer_id,
            "addresses": list(event.addresses),
        }
        if event.kind == "rejected":
            log.warning(
                "peer %s rejected: %s",
                event.peer_id,
                event.detail,
                extra={**extra, "detail": event.detail},
            )
            return
        log.info("peer %s %s", event.peer_id, event.kind, extra=extra)
        peer.last_seen_ms = _now_ms()
        if event.kind in ("lost", "disconnected"):
            peer.connected = False
            peer.idle_since_ms = peer.last_seen_ms
            return
        if event.kind == "connected":
            peer.connected = True
            if self._ping_peers:
                self._to_network(Ping(peer_id=event.peer_id))
        if not self._has_fresh_record(peer):
            self._fetch_record(event.peer_id)

    def _forget_gone(self) -> None:
        """Drop the peers not connected for ``forget_after_ms`` (swept at most once a second):
        a peer named once, or met and gone, does not stay in the table for good."""
        now = _now_ms()
        if now - self._forgot_at_ms < 1000:
            return
        self._forgot_at_ms = now
        cutoff = now - self._forget_after_ms
        gone = [
            peer_id
            for peer_id, peer in self._peers.items()
            if not peer.connected and max(peer.idle_since_ms, peer.last_seen_ms) < cutoff
        ]
        for peer_id in gone:
            del self._peers[peer_id]
            log.info("forgot peer %s: not connected for %d s", peer_id,
                     self._forget_after_ms // 1000,
                     extra={"event": "peer_forgotten", "peer_id": peer_id})

    def _peer(self, peer_id: str) -> _Peer:
        peer = self._peers.get(peer_id)
        if peer is None:
            peer = self._peers[peer_id] = _Peer(peer_id)
        return peer

    def _has_fresh_record(self, peer: _Peer) -> bool:
        return peer.capabilities is not None and peer.capabilities.expires_at_ms > _now_ms()

    def _fetch_record(self, peer_id: str) -> None:
        if peer_id in self._search.fetching:
            return
        request = PeerRequest(
            peer_id=peer_id,
            protocol=PROTOCOL_CAPS,
            payload=encode_message(CapabilitiesRequest()),
            timeout_ms=CAPS_TIMEOUT_MS,
            tag=f"{_CAPS_TAG}{peer_id}",
        )
        if self._to_network(request):
            self._search.fetching.add(peer_id)

    def _to_network(self, message: Message) -> bool:
        if not self._network.is_set:
            return False
        try:
            tell(self._network.get(), message, reply_to=self.actor_ref)
        except pykka.ActorDeadError:
            return False
        return True

    @handles(PeerLogHead)
    def on_peer_log_head(self, seen: PeerLogHead, delivery: Delivery) -> None:
        ask_for = self._logs.observe(seen.peer_id, seen.head)
        if ask_for is not None:
            tag, request = ask_for
            sent = self._to_network(
                PeerRequest(
                    peer_id=seen.peer_id,
                    protocol=PROTOCOL_LOG,
                    payload=encode_message(request),
                    timeout_ms=CAPS_TIMEOUT_MS,
                    tag=tag,
                )
            )
            if not sent:
                self._logs.unanswered(seen.peer_id)

    def _log_answer(self, answer: PeerResponse) -> None:
        try:
            message: object = decode_message(answer.payload)
        except DecodeError:
            message = None
        self._logs.proved(answer.peer_id, message)

    @handles(PeerResponse)
    def on_caps_response(self, answer: PeerResponse, delivery: Delivery) -> None:
        if answer.tag == f"{LOG_TAG}{answer.peer_id}":
            self._log_answer(answer)
            return
        peer_id = answer.tag.removeprefix(_CAPS_TAG)
        if not answer.tag.startswith(_CAPS_TAG) or peer_id != answer.peer_id:
            return
        self._search.fetching.discard(peer_id)
        try:
            caps = self._verify_record(peer_id, answer.payload)
        except CapabilitiesError as exc:
            log.warning(
                "peer %s rejected: its capability record is bad (%s)",
                peer_id,
                exc,
                extra={"event": "peer_rejected", "peer_id": peer_id, "reason": exc.reason},
            )
            self._peer(peer_id).capabilities = None
        else:
            peer = self._peer(peer_id)
            peer.capabilities = caps
            peer.last_seen_ms = _now_ms()
            if caps.addresses:
                peer.addresses = tuple(dict.fromkeys((*peer.addresses, *caps.addresses)))
        self._answer_ready_queries()

    @staticmethod
    def _verify_record(peer_id: str, payload: bytes) -> Capabilities:
        try:
            message = decode_message(payload)
        except DecodeError as exc:
            raise CapabilitiesError("malformed", f"the answer is not a message: {exc}") from exc
        if not isinstance(message, SignedCapabilities):
            raise CapabilitiesError("malformed", f"the answer is a {type(message).__name__}")
        caps = verify_capabilities(message.record, now_ms=_now_ms())
        if caps.peer_id != peer_id:
            raise CapabilitiesError("key_mismatch", f"{peer_id} sent the record of {caps.peer_id}")
        return caps

    @handles(PeerFailure)
    def on_caps_failure(self, failure: PeerFailure, delivery: Delivery) -> None:
        if failure.tag == f"{LOG_TAG}{failure.peer_id}":
            self._logs.unanswered(failure.peer_id)
        if failure.tag.startswith(_CAPS_TAG):
            peer_id = failure.tag.removeprefix(_CAPS_TAG)
            self._search.fetching.discard(peer_id)
            log.info(
                "no capability record from %s: %s (%s)", peer_id, failure.reason, failure.message
            )
            self._answer_ready_queries()

    @handles(Pong)
    def on_pong(self, pong: Pong, delivery: Delivery) -> None:
        peer = self._peers.get(pong.peer_id)
        if peer is not None:
            peer.latency_us = pong.rtt_us
            peer.last_seen_ms = _now_ms()

    @handles(RecordPeerOutcome)
    def on_outcome(self, outcome: RecordPeerOutcome, delivery: Delivery) -> None:
        peer = self._peer(outcome.peer_id)
        if outcome.outcome == "ran":
            peer.jobs_run += 1
        elif outcome.outcome == "receipt_rejected":
            peer.receipts_rejected += 1
        elif outcome.outcome == "receipt_disputed":
            self._disputed(peer)
        else:
            peer.failures += 1

    def _disputed(self, peer: _Peer) -> None:
        now = _now_ms()
        peer.receipts_disputed += 1
        if peer.receipts_disputed >= self._dispute_threshold:
            peer.cooldown_until_ms = now + self._dispute_cooldown_ms
        log.warning(
            "peer %s sent a receipt that disagreed with an agreed quorum (%d so far)%s",
            peer.peer_id,
            peer.receipts_disputed,
            "; it is offered no jobs for a while" if peer.cooldown_until_ms else "",
            extra={"event": "peer_disputed", "peer_id": peer.peer_id},
        )
        if self._journal is not None:
            dispute = PeerDispute(
                peer.peer_id, peer.receipts_disputed, now, peer.cooldown_until_ms
            )
            tell_quietly(self._journal, dispute)

    @handles(HandlerFailed)
    def on_handler_failed(self, failed: HandlerFailed, delivery: Delivery) -> None:
        log.warning(
            "%s failed on discovery's request %s: %s", failed.actor, failed.tag, failed.message
        )

    @handles(ListPeers)
    def on_list_peers(self, message: ListPeers, delivery: Delivery) -> PeerList:
        self._forget_gone()
        return PeerList(
            peers=tuple(
                p.info(self._logs.of(p.peer_id))
                for p in sorted(self._peers.values(), key=lambda p: p.peer_id)
            )
        )

    # -- candidates --------------------------------------------------------------------

    @handles(FindCandidates)
    def on_find_candidates(self, request: FindCandidates, delivery: Delivery) -> None:
        # Answered now or later, by this actor: take the reply future out of the delivery.
        query = _Query(request, delivery.reply, delivery.reply_to)
        delivery.reply = None
        self._forget_gone()
        found = self._candidates(request)
        if found or not self._network.is_set:
            self._answer(query, found)
            return
        key = f"q{next(self._query_ids)}"
        self._queries[key] = query
        self._timers.after(
            key, self._search_timeout_ms / 1000, self.actor_ref, CandidateSearchExpired(tag=key)
        )
        if not self._search.in_flight:
            self._search.in_flight = True
            self._to_network(
                FindProviders(
                    key=PROVIDER_KEY, limit=PROVIDER_LIMIT, timeout_ms=self._search_timeout_ms
                )
            )

    @handles(Providers)
    def on_providers(self, found: Providers, delivery: Delivery) -> None:
        self._search.in_flight = False
        for provider in found.providers:
            if provider.peer_id == self._peer_id:
                continue
            peer = self._peer(provider.peer_id)
            if provider.addresses:
                peer.addresses = tuple(dict.fromkeys((*provider.addresses, *peer.addresses)))
            if not self._has_fresh_record(peer):
                self._fetch_record(provider.peer_id)
        for query in self._queries.values():
            query.searched = True
        self._answer_ready_queries()

    @handles(CandidateSearchExpired)
    def on_search_expired(self, expired: CandidateSearchExpired, delivery: Delivery) -> None:
        self._search.in_flight = False  # a lost answer must not stop the next search
        query = self._queries.pop(expired.tag, None)
        if query is not None:
            self._answer(query)

    def _answer_ready_queries(self) -> None:
        idle = not self._search.fetching
        for key, query in list(self._queries.items()):
            if self._candidates(query.request) or (query.searched and idle):
                del self._queries[key]
                self._timers.cancel(key)
                self._answer(query)

    def _candidates(self, request: FindCandidates) -> tuple[str, ...]:
        return rank_candidates(
            [p.info() for p in self._peers.values()],
            request.requirements,
            (*request.exclude, self._peer_id),
            _now_ms(),
            request.limit,
        )

    def _answer(self, query: _Query, found: tuple[str, ...] | None = None) -> None:
        if found is None:
            found = self._candidates(query.request)
        answer = Candidates(peer_ids=found, tag=query.request.tag)
        if query.reply is not None:
            query.reply.set(checked(answer))
        elif query.reply_to is not None:
            tell_quietly(query.reply_to, answer)


def _free_slots_of(stats: Future[Any], slots: int) -> int:
    """Executors not busy with or queued for jobs, as the ingress counted them."""
    try:
        answer = stats.get(timeout=0)
    except Exception as exc:
        log.warning("no ingress stats for the capability record: %s", exc)
        return slots
    assert isinstance(answer, IngressStats)
    return max(0, answer.executors - answer.running - answer.queue_depth)


def _addresses_of(info: Future[Any]) -> tuple[str, ...]:
    try:
        answer = info.get(timeout=0)
    except Exception as exc:
        log.warning("no addresses for the capability record: %s", exc)
        return ()
    if not isinstance(answer, NetworkInfo):
        return ()
    return tuple(dict.fromkeys((*answer.listen_addresses, *answer.observed_addresses)))


def _tell_answer(me: pykka.ActorRef[Any], answer: Future[Any], what: str) -> None:
    """Tell `me` what `answer` holds (a message), or log why there is nothing to tell."""
    try:
        message = answer.get(timeout=0)
    except Exception as exc:
        log.warning("%s failed: %s", what, exc)
        return
    tell_quietly(me, message)
