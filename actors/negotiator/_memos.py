"""Verified reuse over the network: memo records in the DHT (plasm.protocol.reuse).

Looking up: the ingress tells `LookupMemo` (a job that asked for reuse network and that
this node's own index did not answer). The network is asked for the record under the
job's memo key without blocking (`ask_async`, its answer told back here as
`MemoRecordFetched`); the record is verified here — the publisher's signature, the
receipt, the key, the output bytes (`verify_memo`) — and its receipt is compared with the
job's description field by field (`check_receipt_matches`). Only then does the ingress get
a hit (`MemoLookedUp` with the receipt and bytes); anything else, a DHT error included, is
a miss (logged when a record was refused) and the job runs as usual.

Publishing: `PublishMemo` from the ingress, for a job with reuse network that ran. The
payload is signed by the signer (`SignMemo`, which checks it as a verifier would) and the
record put in the DHT (`PutRecord`); a record over `MAX_MEMO_SIZE` is not published.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

from plasm.actors._deferred import tell_quietly
from plasm.actors._future import Future
from plasm.actors._mailbox import LateRef, ask_async
from plasm.actors.messages import (
    GetRecord,
    LookupMemo,
    MemoLookedUp,
    MemoRecordFetched,
    PublishMemo,
    PutRecord,
    Record,
    SignedMemo,
    SignMemo,
)
from plasm.protocol.errors import ReceiptError
from plasm.protocol.reuse import (
    MAX_MEMO_SIZE,
    JobDescription,
    check_receipt_matches,
    memo_payload,
    memo_record_key,
    verify_memo,
)

log = logging.getLogger(__name__)


class Memos:
    def __init__(
        self,
        actor: pykka.ActorRef[Any],
        network: LateRef,
        signer: pykka.ActorRef[Any] | None,
    ) -> None:
        self._actor = actor
        self._network = network
        self._signer = signer
        # job id -> (what it must match, who waits for the answer)
        self._waiting: dict[str, tuple[JobDescription, bytes, pykka.ActorRef[Any]]] = {}

    def lookup(self, request: LookupMemo, reply_to: pykka.ActorRef[Any] | None) -> None:
        if reply_to is None:
            return
        description = JobDescription(
            request.module_sha256, request.input_sha256, request.limits, request.profile
        )
        key = description.key()
        if not self._network.is_set:
            tell_quietly(reply_to, MemoLookedUp(job_id=request.job_id))
            return
        self._waiting[request.job_id] = (description, key, reply_to)
        fetched = ask_async(
            self._network.get(),
            GetRecord(key=memo_record_key(key), timeout_ms=request.timeout_ms),
        )
        me, job_id = self._actor, request.job_id
        fetched.add_done_callback(lambda f: tell_quietly(me, _fetched(job_id, f)))

    def fetched(self, message: MemoRecordFetched) -> None:
        entry = self._waiting.pop(message.job_id, None)
        if entry is None:
            return
        description, key, reply_to = entry
        miss = MemoLookedUp(job_id=message.job_id)
        if message.record is None:
            if message.error is not None:
                log.info("job %s: no memo lookup: %s", message.job_id, message.error)
            tell_quietly(reply_to, miss)
            return
        try:
            memo = verify_memo(message.record, key)
            check_receipt_matches(memo.receipt, description)
        except ReceiptError as exc:
            log.warning(
                "job %s: refused the memo record under its key: %s",
                message.job_id,
                exc,
                extra={"event": "memo_refused", "job_id": message.job_id},
            )
            tell_quietly(reply_to, miss)
            return
        tell_quietly(
            reply_to,
            MemoLookedUp(
                job_id=message.job_id,
                envelope=memo.envelope,
                publisher=memo.publisher,
                stdout=memo.stdout,
                stderr=memo.stderr,
                outputs=memo.outputs,
            ),
        )

    def publish(self, request: PublishMemo) -> None:
        if self._signer is None or not self._network.is_set:
            return
        payload = memo_payload(
            request.key, request.envelope, request.stdout, request.stderr, request.outputs
        )
        if len(payload) + 256 > MAX_MEMO_SIZE:
            log.info(
                "not publishing a memo of %d bytes (over %d): the result is too large for a "
                "DHT record",
                len(payload),
                MAX_MEMO_SIZE,
            )
            return
        signed = ask_async(self._signer, SignMemo(payload=payload))
        network, key = self._network.get(), memo_record_key(request.key)

        def put(future: Future[Any]) -> None:
            if future.exception() is not None:
                log.warning("could not sign a memo record: %s", future.exception())
                return
            answer = future.get(timeout=0)
            if isinstance(answer, SignedMemo):
                put_value(network, key, answer.record)

        signed.add_done_callback(put)

    def forget(self, job_id: str) -> None:
        self._waiting.pop(job_id, None)


def put_value(network: pykka.ActorRef[Any], key: str, record: bytes) -> None:
    """Put ``record`` in the DHT under ``key``; the outcome is logged."""
    stored = ask_async(network, PutRecord(key=key, value=record))

    def logged(future: Future[Any]) -> None:
        if future.exception() is not None:
            log.warning("could not publish the memo record %s: %s", key, future.exception())
        else:
            log.info("published memo record %s", key, extra={"event": "memo_published"})

    stored.add_done_callback(logged)


def _fetched(job_id: str, future: Future[Any]) -> MemoRecordFetched:
    error = future.exception()
    if error is not None:
        return MemoRecordFetched(job_id=job_id, record=None, error=str(error))
    answer = future.get(timeout=0)
    value = answer.value if isinstance(answer, Record) else None
    return MemoRecordFetched(job_id=job_id, record=value, error=None)
