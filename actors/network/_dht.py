"""The Kademlia DHT: server mode, strict record validation, provider keys.

Records live under the ``plasm`` namespace only (``/plasm/<peer id>``) and strict
validation refuses every other namespace except py-libp2p's built-in ``pk`` and ``ipns``:
a value must be a capability record signed by the peer named in the key, not expired
(``plasm.protocol.capabilities.verify_capabilities``). Every node applies the same check
to records others ask it to store. Of two valid records the later-expiring one wins.

Memo records (verified reuse, ``plasm.protocol.reuse``) live under ``/plasm-memo/<key
hex>``: a value must be a memo record whose signature, receipt, output bytes and key all
check (``verify_memo``); every node refuses any other under that namespace, with a log
line, whether asked to store it or handed it in an answer. Of two valid memos for one key
either may be kept: both sign a run of the same deterministic job.

Provider keys are our own strings (``plasm:runtime:wasi-preview1``); py-libp2p would
read a key that happens to look like hex or a CID as bytes, so keys are hashed into a
sha256 multihash first and every node maps them the same way.
"""

from __future__ import annotations

import hashlib
import logging
import time

from libp2p.abc import IHost, INetStream
from libp2p.kad_dht.common import PROTOCOL_ID
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID
from libp2p.records.validator import Validator

from plasm.actors.messages import ProviderInfo
from plasm.actors.network._errors import RecordError
from plasm.protocol.capabilities import verify_capabilities
from plasm.protocol.errors import CapabilitiesError, ReceiptError
from plasm.protocol.reuse import MEMO_NAMESPACE, verify_memo

log = logging.getLogger(__name__)

RECORD_NAMESPACE = "plasm"
_SHA256_MULTIHASH = b"\x12\x20"


def record_key(peer_id: str) -> str:
    """The DHT key of ``peer_id``'s capability record."""
    return f"/{RECORD_NAMESPACE}/{peer_id}"


def provider_key(key: str) -> str:
    """The hex multihash py-libp2p stores providers of ``key`` under."""
    return (_SHA256_MULTIHASH + hashlib.sha256(key.encode("utf-8")).digest()).hex()


class CapabilityRecordValidator(Validator):
    """Accept only capability records signed by the peer their key names."""

    def validate(self, key: str, value: bytes) -> None:
        prefix = f"/{RECORD_NAMESPACE}/"
        if not key.startswith(prefix):
            raise RecordError(f"record key {key!r} is not under {prefix}")
        try:
            caps = verify_capabilities(value, now_ms=int(time.time() * 1000))
        except CapabilitiesError as exc:
            raise RecordError(f"refused record for {key}: {exc}") from exc
        if caps.peer_id != key[len(prefix) :]:
            raise RecordError(f"the record under {key} describes {caps.peer_id}")

    def select(self, key: str, values: list[bytes]) -> int:
        def expiry(value: bytes) -> int:
            try:
                return verify_capabilities(value).expires_at_ms
            except CapabilitiesError:
                return -1

        expiries = [expiry(v) for v in values]
        return expiries.index(max(expiries))


class MemoRecordValidator(Validator):
    """Accept only memo records that verify and are filed under their own key."""

    def validate(self, key: str, value: bytes) -> None:
        prefix = f"/{MEMO_NAMESPACE}/"
        hex_key = key[len(prefix) :] if key.startswith(prefix) else ""
        if len(hex_key) != 64 or hex_key != hex_key.lower():
            raise RecordError(f"memo record key {key!r} is not {prefix}<64 hex>")
        try:
            verify_memo(value, bytes.fromhex(hex_key))
        except (ReceiptError, ValueError) as exc:
            log.warning(
                "refused memo record under %s: %s",
                key,
                exc,
                extra={"event": "memo_refused"},
            )
            raise RecordError(f"refused memo record for {key}: {exc}") from exc

    def select(self, key: str, values: list[bytes]) -> int:
        return 0  # validate() refused the invalid ones; any valid one will do


_VALIDATORS: dict[str, Validator] = {
    RECORD_NAMESPACE: CapabilityRecordValidator(),
    MEMO_NAMESPACE: MemoRecordValidator(),
}


class DhtTraffic:
    """Counts the DHT requests this node serves. py-libp2p opens one stream per request
    (a FIND_NODE, GET_PROVIDERS, PUT_VALUE... to one peer), so inbound streams on the
    Kademlia protocol are requests; summed over every node they are the network's DHT
    messages (bench/bench_scale.py reads them from ``/metrics``)."""

    def __init__(self) -> None:
        self.requests_served = 0


def build_dht(host: IHost, traffic: DhtTraffic | None = None) -> KadDHT:
    dht = KadDHT(host, DHTMode.SERVER, strict_validation=True)
    for namespace, validator in _VALIDATORS.items():
        dht.register_validator(namespace, validator)
    if traffic is not None:
        serve = dht.handle_stream

        async def counted(stream: INetStream) -> None:
            traffic.requests_served += 1
            await serve(stream)

        host.set_stream_handler(PROTOCOL_ID, counted)
    return dht


async def provide(dht: KadDHT, key: str) -> None:
    await dht.provide(provider_key(key))


async def find_providers(dht: KadDHT, key: str, limit: int) -> tuple[ProviderInfo, ...]:
    found = await dht.find_providers(provider_key(key), limit)
    unique: dict[str, ProviderInfo] = {}
    for info in found:  # py-libp2p can list a provider twice
        peer = str(info.peer_id)
        if peer not in unique:
            addrs = tuple(str(a) for a in info.addrs)
            unique[peer] = ProviderInfo(peer, addrs)
    return tuple(unique.values())[:limit]


async def put_record(dht: KadDHT, key: str, value: bytes) -> None:
    try:
        await dht.put_value(key, value)
    except RecordError:
        raise
    except Exception as exc:  # InvalidRecordType, ValueError (older than stored)
        raise RecordError(f"the DHT refused the record for {key}: {exc}") from exc


async def get_record(dht: KadDHT, key: str) -> bytes | None:
    """The valid record under ``key``, or None; an expired record counts as none."""
    value = await dht.get_value(key)
    if value is None:
        return None
    namespace = key.split("/")[1] if key.count("/") >= 2 else ""
    validator = _VALIDATORS.get(namespace)
    try:
        if validator is None:
            raise RecordError(f"no record namespace {namespace!r} here")
        validator.validate(key, value)
    except RecordError as exc:
        log.info("ignoring the record under %s: %s", key, exc)
        return None
    return value


async def add_to_routing_table(dht: KadDHT, peer: ID) -> bool:
    return bool(await dht.add_peer(peer))
