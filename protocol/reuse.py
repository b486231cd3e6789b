"""Verified reuse (memoization): what "the same job" means, and signed memo records.

The **job description** is what decides a job's result under the deterministic profile,
and nothing else: the module's sha256, the input's sha256 (``JobInput.sha256``: stdin,
args, env, argv[0], every input file by hash and size, and the determinism settings, i.e.
the virtual clock's start and the random seed), every ``Limits`` field and the profile. Its
canonical CBOR is::

    {"v": 1, "module_sha256": bytes(32), "input_sha256": bytes(32),
     "limits": {every Limits field: uint}, "profile": "wasi-p1-det/1"}

and its sha256 is the **memo key**. Job id, nonce, requester, deadline and placement are
not in it. Every field is also in a receipt body, so the key of a receipt can be computed
from the receipt alone (``description_of_receipt``) and a receipt can be checked against
a new job field by field (``check_receipt_matches``), not only by key.

Only some results may stand for a new run: the job ran under ``wasi-p1-det/1`` (a job
with ``determinism: off`` reads the host's clocks and randomness) and ended by itself
(``REUSABLE_OUTCOMES``: ok, exit, trap, out_of_fuel, memory_limit, whose fuel is exact).
A ``timeout`` or ``cancelled`` run depends on when it was stopped; ``invalid_module`` and
``compile_limit`` never ran.

A **memo record** is what a node publishes in the DHT under ``/plasm-memo/<key hex>``: a
COSE_Sign1 (``plasm.protocol.cose``) of content type ``application/vnd.plasm.memo+cbor``,
kid = the publishing node's peer ID, whose payload is the canonical CBOR map::

    {"v": 1, "key": bytes(32), "receipt": bytes (the receipt's COSE_Sign1, unchanged),
     "stdout": bytes, "stderr": bytes, "outputs": [{"path": text, "data": bytes}]}

The output bytes travel in the record (``MAX_MEMO_SIZE`` in all), so a hit needs no
fetch; a result too large for a record is not published. ``verify_memo`` accepts a record
only if the publisher's signature holds, the receipt verifies (the executor's signature:
what a requester trusts, as it would trust that executor running the job for it), the key
is the receipt's own description's key, the result is reusable, and stdout, stderr and
every output file hash to what the receipt signs. The publisher is any node that verified
the receipt (the executor, or a requester that ran the job on a peer); its signature makes
every record accountable to a peer ID, and an unsigned record is never taken.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.signing

from plasm.protocol import cbor, cose
from plasm.protocol.errors import DecodeError, ReceiptError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import (
    MAX_ENVELOPE_SIZE,
    PROFILE_DETERMINISTIC,
    Receipt,
    receipt_from_body,
    verify_envelope,
)
from plasm.runtime.job import JobInput, Limits, OutcomeKind

REUSE_MODES = ("off", "local", "network")
DESCRIPTION_VERSION = 1
MEMO_VERSION = 1
MEMO_NAMESPACE = "plasm-memo"
CONTENT_TYPE_MEMO = "application/vnd.plasm.memo+cbor"
# What a memo record may weigh, receipt and output bytes included (py-libp2p's DHT takes
# records up to 1 MiB).
MAX_MEMO_SIZE = 512 * 2**10
REUSABLE_OUTCOMES = frozenset(
    {
        OutcomeKind.OK,
        OutcomeKind.EXIT,
        OutcomeKind.TRAP,
        OutcomeKind.OUT_OF_FUEL,
        OutcomeKind.MEMORY_LIMIT,
    }
)


class ReuseError(ReceiptError):
    """A stored result or memo record may not stand for this job; ``reason`` says why:
    ``not_reusable`` (profile or outcome), ``description_mismatch`` (another job),
    ``key_mismatch``, ``bad_signature``, ``malformed``, or the receipt's own reasons."""


@dataclass(frozen=True, slots=True)
class JobDescription:
    """The job as far as its deterministic result goes (module docstring)."""

    module_sha256: bytes
    input_sha256: bytes
    limits: Limits
    profile: str = PROFILE_DETERMINISTIC

    def to_cbor(self) -> bytes:
        return cbor.dumps(
            {
                "v": DESCRIPTION_VERSION,
                "module_sha256": self.module_sha256,
                "input_sha256": self.input_sha256,
                "limits": self.limits.to_json(),
                "profile": self.profile,
            }
        )

    def key(self) -> bytes:
        """The memo key: sha256 of the canonical description (``to_cbor``), assembled from a
        cached encoding of the map up to its two hashes, which sort last (the signer
        computes one for every run: ~1.5 us instead of ~12)."""
        return hashlib.sha256(
            _head(self.limits, self.profile)
            + b"\x6cinput_sha256\x58\x20"
            + self.input_sha256
            + b"\x6dmodule_sha256\x58\x20"
            + self.module_sha256
        ).digest()


@functools.lru_cache(maxsize=256)
def _head(limits: Limits, profile: str) -> bytes:
    """The canonical encoding of the description up to ``input_sha256``: keys sort by their
    encoded bytes, so ``v``, ``limits`` and ``profile`` come before the two hashes."""
    whole = JobDescription(bytes(32), bytes(32), limits, profile).to_cbor()
    tail = b"\x6cinput_sha256\x58\x20" + bytes(32) + b"\x6dmodule_sha256\x58\x20" + bytes(32)
    if not whole.endswith(tail):
        raise AssertionError("the job description's canonical key order changed")
    return whole[: -len(tail)]


def describe(module_sha256: str, job_input: JobInput, limits: Limits) -> JobDescription:
    """The description of a job to run; ``ReuseError(not_reusable)`` for a job without the
    deterministic profile, whose result no earlier run can stand for."""
    if not job_input.deterministic:
        raise ReuseError(
            "not_reusable",
            "only jobs run with determinism on can be reused: with determinism off the "
            "guest reads the host's clocks and randomness",
        )
    return JobDescription(bytes.fromhex(module_sha256), job_input.sha256(), limits)


def description_of_receipt(receipt: Receipt) -> JobDescription:
    return JobDescription(
        receipt.module_sha256, receipt.input_sha256, receipt.limits, receipt.profile
    )


def reusable(receipt: Receipt) -> bool:
    """Whether the run this receipt signs may stand for another run of the same job."""
    return (
        receipt.profile == PROFILE_DETERMINISTIC
        and receipt.outcome in REUSABLE_OUTCOMES
        and receipt.fuel_exact
    )


def memo_key_of(receipt: Receipt) -> bytes | None:
    """The memo key a reusable run is indexed under; None for a run that may not be reused."""
    return description_of_receipt(receipt).key() if reusable(receipt) else None


def memo_key_of_verified(envelope: bytes) -> bytes | None:
    """``memo_key_of`` for the COSE bytes of a receipt the caller already verified (the
    negotiator's check of a peer's result): decoded, its signature not checked again."""
    try:
        signed = cose.decode_sign1(
            envelope, max_size=MAX_ENVELOPE_SIZE, content_type=cose.CONTENT_TYPE_RECEIPT
        )
        receipt = receipt_from_body(cbor.loads(signed.payload, max_size=MAX_ENVELOPE_SIZE))
    except (DecodeError, ReceiptError):
        return None
    return memo_key_of(receipt)


def check_receipt_matches(receipt: Receipt, wanted: JobDescription) -> None:
    """The receipt must sign a reusable run of exactly ``wanted``: module, input, every
    limit and the profile compared one by one, not only through the key."""
    if not reusable(receipt):
        raise ReuseError(
            "not_reusable",
            f"the receipt's run ({receipt.outcome.value} under {receipt.profile}) may not "
            "stand for another run",
        )
    for name, have, want in (
        ("module_sha256", receipt.module_sha256, wanted.module_sha256),
        ("input_sha256", receipt.input_sha256, wanted.input_sha256),
        ("limits", receipt.limits, wanted.limits),
        ("profile", receipt.profile, wanted.profile),
    ):
        if have != want:
            raise ReuseError("description_mismatch", f"the receipt is for another job ({name})")


# -- memo records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Memo:
    """A verified memo record: who published it and the result it carries."""

    key: bytes
    publisher: str
    envelope: bytes
    receipt: Receipt
    stdout: bytes
    stderr: bytes
    outputs: tuple[tuple[str, bytes], ...]


def memo_record_key(key: bytes) -> str:
    """The DHT key a memo of ``key`` is stored under."""
    return f"/{MEMO_NAMESPACE}/{key.hex()}"


def memo_payload(
    key: bytes,
    envelope: bytes,
    stdout: bytes,
    stderr: bytes,
    outputs: tuple[tuple[str, bytes], ...],
) -> bytes:
    """The record's payload (what the node's signer signs)."""
    return cbor.dumps(
        {
            "v": MEMO_VERSION,
            "key": key,
            "receipt": envelope,
            "stdout": stdout,
            "stderr": stderr,
            "outputs": [{"path": path, "data": data} for path, data in outputs],
        }
    )


def sign_memo(payload: bytes, signing_key: nacl.signing.SigningKey) -> bytes:
    """Sign a ``memo_payload`` as this key's node, once it checks as ``verify_memo`` would
    check the record (a node publishes only memos that verify); ``ValueError`` for one over
    ``MAX_MEMO_SIZE``, ``ReuseError`` for one that does not check."""
    peer_id = peer_id_from_public_key(signing_key.verify_key.encode())
    # The COSE wrapping adds the header (content type, kid) and the signature: ~200 bytes.
    if len(payload) + 256 > MAX_MEMO_SIZE:
        raise ValueError(f"a memo of {len(payload)} bytes would be over {MAX_MEMO_SIZE} signed")
    _check_payload(payload)
    record = cose.sign1(payload, CONTENT_TYPE_MEMO, peer_id, signing_key)
    if len(record) > MAX_MEMO_SIZE:
        raise ValueError(f"the memo record would be {len(record)} bytes, over {MAX_MEMO_SIZE}")
    return record


def verify_memo(record: bytes, expected_key: bytes | None = None) -> Memo:
    """The memo in ``record`` once every check of the module docstring passed;
    ``ReuseError`` otherwise."""
    try:
        signed = cose.decode_sign1(record, max_size=MAX_MEMO_SIZE, content_type=CONTENT_TYPE_MEMO)
        valid = cose.verify_sign1(signed)
    except DecodeError as exc:
        raise ReuseError("malformed", f"the memo record cannot be decoded: {exc}") from exc
    if not valid:
        raise ReuseError("bad_signature", "the memo record's signature does not hold")
    memo = _check_payload(signed.payload, expected_key)
    return Memo(
        key=memo["key"],
        publisher=signed.kid,
        envelope=memo["receipt"],
        receipt=memo["receipt_body"],
        stdout=memo["stdout"],
        stderr=memo["stderr"],
        outputs=memo["outputs"],
    )


def _check_payload(payload: bytes, expected_key: bytes | None = None) -> dict[str, Any]:
    memo = _read_payload(payload)
    try:
        receipt = verify_envelope(
            memo["receipt"], stdout=memo["stdout"], stderr=memo["stderr"], outputs=memo["outputs"]
        )
    except ReuseError:
        raise
    except ReceiptError as exc:
        raise ReuseError(exc.reason, f"the memo's receipt: {exc.detail}") from exc
    own_key = description_of_receipt(receipt).key()
    if memo["key"] != own_key:
        raise ReuseError("key_mismatch", "the memo's key is not its receipt's job description")
    if expected_key is not None and memo["key"] != expected_key:
        raise ReuseError("key_mismatch", "the memo is filed under another key")
    if not reusable(receipt):
        raise ReuseError("not_reusable", "the memo's receipt signs a run that may not be reused")
    memo["receipt_body"] = receipt
    return memo


def _read_payload(payload: bytes) -> dict[str, Any]:
    try:
        body = cbor.loads(payload, max_size=MAX_MEMO_SIZE)
    except DecodeError as exc:
        raise ReuseError("malformed", f"the memo payload is not canonical CBOR: {exc}") from exc
    expected = {"v", "key", "receipt", "stdout", "stderr", "outputs"}
    if not isinstance(body, dict) or set(body) != expected:
        raise ReuseError("malformed", f"a memo payload is a map of {sorted(expected)}")
    if body["v"] != MEMO_VERSION:
        raise ReuseError("malformed", f"memo version {body['v']!r} is not {MEMO_VERSION}")
    key, envelope = body["key"], body["receipt"]
    if not isinstance(key, bytes) or len(key) != 32:
        raise ReuseError("malformed", "the memo key is 32 bytes")
    if not isinstance(envelope, bytes) or len(envelope) > MAX_ENVELOPE_SIZE:
        raise ReuseError("malformed", "the memo's receipt is COSE bytes")
    if not isinstance(body["stdout"], bytes) or not isinstance(body["stderr"], bytes):
        raise ReuseError("malformed", "the memo's stdout and stderr are bytes")
    outputs: list[tuple[str, bytes]] = []
    if not isinstance(body["outputs"], list):
        raise ReuseError("malformed", "the memo's outputs are a list")
    for item in body["outputs"]:
        if (
            not isinstance(item, dict)
            or set(item) != {"path", "data"}
            or not isinstance(item["path"], str)
            or not isinstance(item["data"], bytes)
        ):
            raise ReuseError("malformed", "each memo output is {path: text, data: bytes}")
        outputs.append((item["path"], item["data"]))
    return {
        "key": key,
        "receipt": envelope,
        "stdout": body["stdout"],
        "stderr": body["stderr"],
        "outputs": tuple(outputs),
    }
