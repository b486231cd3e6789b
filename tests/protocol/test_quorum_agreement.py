"""Quorum jobs, sans-IO: the agreement key, the tally's decisions, the offline check."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import nacl.signing
import orjson
import pytest

from plasm.protocol.errors import ReceiptError
from plasm.protocol.quorum import (
    Agreed,
    Disputed,
    Launch,
    NoReplicas,
    QuorumJob,
    QuorumOutcome,
    agreement_key,
    check_placement,
    check_quorum,
)
from plasm.protocol.receipt import Receipt, sign_receipt
from plasm.protocol.result import job_result_to_json
from plasm.protocol.verification import expectations_from_saved, verify_saved
from plasm.runtime.job import Outcome
from tests.protocol.conftest import peer_id_of

pytestmark = pytest.mark.timeout(30)


def key_of(n: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(f"replica {n}".encode()).digest())


def signed_by(receipt: Receipt, key: nacl.signing.SigningKey, **changes: Any) -> bytes:
    return sign_receipt(dataclasses.replace(receipt, executor=peer_id_of(key), **changes), key)


LIE = {"stdout_sha256": hashlib.sha256(b"a lie").digest()}


def test_honest_runs_agree_whatever_their_ids_times_and_executors(receipt: Receipt) -> None:
    other = dataclasses.replace(
        receipt,
        job_id="f" * 32,
        nonce=bytes(16),
        executor=peer_id_of(key_of(1)),
        requester=peer_id_of(key_of(2)),
        started_at_ms=1,
        finished_at_ms=2,
        wall_time_us=99,
        engine_version="50.0.2",
    )
    assert agreement_key(other) == agreement_key(receipt)


@pytest.mark.parametrize(
    "change",
    [
        LIE,
        {"stdout_len": 99},
        {"stderr_sha256": bytes(32)},
        {"module_sha256": bytes(32)},
        {"input_sha256": bytes(32)},
        {"outputs": ()},
        {"exit_code": 4},
        {"fuel_consumed": 1},
        {"profile": "wasi-p1-nondet/1"},
    ],
)
def test_a_difference_in_a_deterministic_field_is_a_disagreement(
    receipt: Receipt, change: dict[str, Any]
) -> None:
    assert agreement_key(dataclasses.replace(receipt, **change)) != agreement_key(receipt)


@pytest.mark.parametrize(
    ("replicas", "quorum", "max_replicas", "wrong"),
    [(3, 4, 6, "more than"), (3, 0, 6, "positive"), (3, 2, 2, "fewer than"), (3, 2, 17, "limit")],
)
def test_bad_quorum_placements_are_refused_saying_why(
    replicas: int, quorum: int, max_replicas: int, wrong: str
) -> None:
    with pytest.raises(ValueError, match=wrong):
        check_placement(replicas, quorum, max_replicas)


def test_k_replicas_start_on_the_first_k_distinct_candidates() -> None:
    job = QuorumJob(3, 2, 6)
    assert job.start(["a", "b", "a", "c", "d"]) == [Launch("a"), Launch("b"), Launch("c")]


def test_agreement_waits_for_every_running_replica_and_names_the_dissenter() -> None:
    job = QuorumJob(3, 2, 6)
    job.start(["a", "b", "c"])
    assert job.on_receipt("a", b"good", b"A") == []
    assert job.on_receipt("b", b"good", b"B") == []  # c still runs: its vote counts
    [done] = job.on_receipt("c", b"lie", b"C")
    assert isinstance(done, Agreed)
    assert done.outcome == QuorumOutcome(True, 2, ("a", "b"), ("c",), (b"A", b"B", b"C"))
    assert done.chosen == "a"


def test_disagreement_adds_replicas_until_a_quorum_forms() -> None:
    job = QuorumJob(2, 2, 4)
    job.start(["liar", "a", "b", "c"])
    job.on_receipt("liar", b"lie", b"L")
    assert job.on_receipt("a", b"good", b"A") == [Launch("b")]
    [done] = job.on_receipt("b", b"good", b"B")
    assert isinstance(done, Agreed)
    assert done.outcome.agreeing == ("a", "b")
    assert done.outcome.dissenting == ("liar",)


def test_a_seeded_earlier_receipt_counts_as_one_replica_and_is_never_the_result() -> None:
    job = QuorumJob(3, 2, 6)
    job.seed("memo", b"good", b"M")
    # k=3 with one counted: two more, never on the seed's executor
    assert job.start(["memo", "a", "b", "c"]) == [Launch("a"), Launch("b")]
    job.on_receipt("a", b"good", b"A")
    [done] = job.on_receipt("b", b"lie", b"B")
    assert isinstance(done, Agreed)
    assert done.outcome.agreeing == ("memo", "a") and done.outcome.dissenting == ("b",)
    assert done.chosen == "a"  # the live replica's result, not the earlier run's
    with pytest.raises(ValueError, match="before it starts"):
        job.seed("other", b"good", b"O")


def test_a_seeded_receipt_that_dissents_is_named() -> None:
    job = QuorumJob(2, 2, 4)
    job.seed("memo", b"lie", b"M")
    assert job.start(["a", "b"]) == [Launch("a")]
    assert job.on_receipt("a", b"good", b"A") == [Launch("b")]
    [done] = job.on_receipt("b", b"good", b"B")
    assert isinstance(done, Agreed) and done.outcome.dissenting == ("memo",)


def test_no_quorum_within_max_replicas_is_disputed_with_every_receipt() -> None:
    job = QuorumJob(3, 3, 4)
    job.start(["a", "b", "liar", "liar2", "e"])
    job.on_receipt("a", b"good", b"A")
    job.on_receipt("b", b"good", b"B")
    assert job.on_receipt("liar", b"lie", b"L") == [Launch("liar2")]
    [done] = job.on_receipt("liar2", b"lie2", b"L2")
    assert isinstance(done, Disputed)  # e was never tried: max_replicas is 4
    assert done.outcome.agreed is False
    assert done.outcome.agreeing == ("a", "b")
    assert done.outcome.envelopes == (b"A", b"B", b"L", b"L2")


def test_disputed_when_the_candidates_run_out() -> None:
    job = QuorumJob(3, 3, 6)
    job.start(["a", "b", "liar"])
    job.on_receipt("a", b"good", b"A")
    job.on_receipt("b", b"good", b"B")
    [done] = job.on_receipt("liar", b"lie", b"L")
    assert isinstance(done, Disputed)


def test_a_failed_replica_is_replaced_by_the_next_candidate() -> None:
    job = QuorumJob(2, 2, 4)
    job.start(["a", "down", "b"])
    job.on_receipt("a", b"good", b"A")
    assert job.on_failed("down") == [Launch("b")]
    [done] = job.on_receipt("b", b"good", b"B")
    assert isinstance(done, Agreed)
    assert done.outcome.dissenting == ()


def test_no_receipt_at_all_is_no_replicas() -> None:
    job = QuorumJob(2, 1, 2)
    job.start(["a", "b"])
    job.on_failed("a")
    assert job.on_failed("b") == [NoReplicas()]
    assert QuorumJob(2, 1, 2).start([]) == [NoReplicas()]


def test_stopping_decides_on_what_arrived() -> None:
    job = QuorumJob(3, 2, 6)
    job.start(["a", "b", "c"])
    job.on_receipt("a", b"good", b"A")
    job.on_receipt("b", b"good", b"B")
    [done] = job.stop()
    assert isinstance(done, Agreed)
    assert done.outcome.envelopes == (b"A", b"B")


def test_an_answer_from_a_peer_not_running_is_refused() -> None:
    job = QuorumJob(1, 1, 1)
    job.start(["a"])
    with pytest.raises(ValueError, match="no replica"):
        job.on_receipt("b", b"good", b"B")


# --- the offline check ---------------------------------------------------------------


@pytest.fixture
def replicas(receipt: Receipt) -> list[bytes]:
    return [signed_by(receipt, key_of(1)), signed_by(receipt, key_of(2)),
            signed_by(receipt, key_of(3), **LIE)]


def saved_result(replicas: list[bytes], outcome: Outcome, module_sha256: str,
                 agreeing: list[str], quorum: int = 2) -> dict[str, Any]:
    chosen = replicas[0]
    executor = peer_id_of(key_of(1))
    result = job_result_to_json("018c2b6f3a405e1f0c9d8b7a6f5e4d3c", "done", outcome,
                                module_sha256, executor, chosen)
    keys = [peer_id_of(key_of(n)) for n in (1, 2, 3)]
    result["quorum"] = QuorumOutcome(
        True, quorum, tuple(agreeing), tuple(k for k in keys if k not in agreeing),
        tuple(replicas),
    ).to_json()
    return result


def verdict(saved: dict[str, Any]) -> dict[str, Any]:
    envelope, expected = expectations_from_saved(orjson.dumps(saved))
    return verify_saved(envelope, expected)


def test_an_agreed_quorum_result_verifies_offline(
    replicas: list[bytes], outcome: Outcome, module_sha256: str
) -> None:
    agreeing = [peer_id_of(key_of(1)), peer_id_of(key_of(2))]
    answer = verdict(saved_result(replicas, outcome, module_sha256, agreeing))
    assert answer["valid"], answer
    assert answer["checked_quorum"] == {"agreeing": 2, "quorum": 2, "receipts": 3}


def test_a_quorum_that_claims_the_liar_agrees_is_invalid(
    replicas: list[bytes], outcome: Outcome, module_sha256: str
) -> None:
    agreeing = [peer_id_of(key_of(1)), peer_id_of(key_of(3))]
    answer = verdict(saved_result(replicas, outcome, module_sha256, agreeing))
    assert answer["reason"] == "quorum_mismatch"


def test_a_quorum_short_of_agreeing_receipts_is_invalid(
    replicas: list[bytes], outcome: Outcome, module_sha256: str
) -> None:
    agreeing = [peer_id_of(key_of(1)), peer_id_of(key_of(2))]
    saved = saved_result(replicas, outcome, module_sha256, agreeing, quorum=3)
    answer = verdict(saved)
    assert (answer["valid"], answer["reason"]) == (False, "no_quorum")


def test_one_executor_signing_twice_does_not_make_a_quorum(
    receipt: Receipt, outcome: Outcome, module_sha256: str
) -> None:
    twice = [signed_by(receipt, key_of(1)), signed_by(receipt, key_of(1), job_id="e" * 32),
             signed_by(receipt, key_of(3), **LIE)]
    agreeing = [peer_id_of(key_of(1))]
    answer = verdict(saved_result(twice, outcome, module_sha256, agreeing))
    assert answer["reason"] == "duplicate_executor"


def test_a_forged_receipt_in_the_quorum_is_invalid(
    replicas: list[bytes], outcome: Outcome, module_sha256: str
) -> None:
    agreeing = [peer_id_of(key_of(1)), peer_id_of(key_of(2))]
    saved = saved_result(replicas, outcome, module_sha256, agreeing)
    receipts = saved["quorum"]["receipts"]
    receipts[1]["cose"] = receipts[2]["cose"][:-8] + "AAAAAAA="
    answer = verdict(saved)
    assert answer["valid"] is False
    assert "quorum receipt" in answer["message"]


def test_a_disputed_job_checks_its_receipts_and_is_not_valid(replicas: list[bytes]) -> None:
    quorum = QuorumOutcome(False, 3, (peer_id_of(key_of(1)), peer_id_of(key_of(2))),
                           (peer_id_of(key_of(3)),), tuple(replicas)).to_json()
    job = {"job_id": "0" * 32, "status": "disputed",
           "error": {"code": "disputed", "message": "no quorum", "quorum": quorum}}
    answer = verdict(job)
    assert (answer["valid"], answer["reason"]) == (False, "no_quorum")
    assert "2 of 3" in answer["message"]


def test_check_quorum_refuses_a_malformed_object() -> None:
    with pytest.raises(ReceiptError, match="malformed"):
        check_quorum({"quorum": 2, "receipts": [], "agreeing": []})
