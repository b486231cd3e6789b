"""Execution receipts: build, sign, verify, and their JSON form.

Theory of operation: the executor's signer turns an ``Outcome`` into a ``Receipt`` (hashes of
the input and of the captured output, never the bytes themselves), encodes it as a canonical
CBOR body and signs ``b"plasm/receipt/v1\\x00" + body`` with the node's Ed25519 key (the same key
as its libp2p identity). Anyone holding the envelope can verify offline, in this order:

1. decode the envelope strictly                          -> ``malformed``
2. peer ID of the envelope key == ``body.executor``      -> ``key_mismatch``
3. signature over the exact body bytes                   -> ``bad_signature``
4. the body has the documented shape and types           -> ``malformed`` / ``unsupported_version``
5. the caller's expectations (executor, job, nonce, module, input, stdout, stderr)
                                                         -> ``executor_mismatch``,
   ``job_id_mismatch``, ``nonce_mismatch``, ``hash_mismatch``

Step 2 reads ``executor`` out of a body decoded strictly but not yet trusted; nothing else is
read before the signature is checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.signing

from plasm.protocol import cbor, fields, formats
from plasm.protocol.errors import DecodeError, PeerIdError, ReceiptError
from plasm.protocol.identity import peer_id_from_public_key, public_key_from_peer_id
from plasm.protocol.signed import Envelope, open_envelope, seal, signature_is_valid
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind

RECEIPT_VERSION = 1
RECEIPT_DOMAIN = b"plasm/receipt/v1\x00"
MAX_ENVELOPE_SIZE = 1 * 2**20

REASONS = frozenset(
    {
        "malformed",
        "unsupported_version",
        "key_mismatch",
        "bad_signature",
        "executor_mismatch",
        "job_id_mismatch",
        "nonce_mismatch",
        "hash_mismatch",
    }
)

_HASH_FIELDS = ("module_sha256", "input_sha256", "stdout_sha256", "stderr_sha256")


@dataclass(frozen=True, slots=True)
class Receipt:
    """The signed statement "executor ran this module on this input and got this".

    Mirrors the CBOR body field by field, except that the body's ``v`` is ``version`` and its
    ``engine`` map is ``engine_name`` / ``engine_version``. Hashes and the nonce are raw bytes.
    """

    job_id: str
    module_sha256: bytes
    input_sha256: bytes
    stdout_sha256: bytes
    stderr_sha256: bytes
    stdout_len: int
    stderr_len: int
    stdout_truncated: bool
    stderr_truncated: bool
    outcome: OutcomeKind
    exit_code: int | None
    message: str | None
    fuel_consumed: int
    wall_time_us: int
    limits: Limits
    engine_name: str
    engine_version: str
    executor: str
    requester: str
    nonce: bytes
    started_at_ms: int
    finished_at_ms: int
    version: int = RECEIPT_VERSION

    def __post_init__(self) -> None:
        formats.check_job_id(self.job_id)
        for name in _HASH_FIELDS:
            digest = getattr(self, name)
            if not isinstance(digest, bytes) or len(digest) != formats.SHA256_SIZE:
                raise ValueError(f"receipt {name} must be {formats.SHA256_SIZE} bytes")
        formats.check_nonce(self.nonce)
        for name in ("stdout_len", "stderr_len", "fuel_consumed", "wall_time_us"):
            formats.check_non_negative(getattr(self, name), f"receipt {name}")
        for name in ("started_at_ms", "finished_at_ms"):
            formats.check_non_negative(getattr(self, name), f"receipt {name}")
        if self.version != RECEIPT_VERSION:
            raise ValueError(f"receipt version {self.version!r} is not supported (expected 1)")
        try:
            public_key_from_peer_id(self.executor)
        except PeerIdError as exc:
            raise ValueError(f"receipt executor: {exc}") from exc


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def input_sha256(job_input: JobInput) -> bytes:
    """sha256 of canonical CBOR ``{"args": [...], "env": {...}, "module_name": text,
    "stdin": bytes}``: everything the guest is given besides the module, argv[0] included
    (a guest can read its own argv[0], so the receipt must bind it)."""
    return sha256(
        cbor.dumps(
            {
                "args": list(job_input.args),
                "env": dict(job_input.env),
                "module_name": job_input.module_name,
                "stdin": job_input.stdin,
            }
        )
    )


def build_receipt(
    job_id: str,
    module_sha256: str,
    job_input: JobInput,
    limits: Limits,
    outcome: Outcome,
    engine_name: str,
    engine_version: str,
    executor: str,
    requester: str,
    nonce: bytes,
) -> Receipt:
    """The receipt of ``outcome``; ``module_sha256`` is hex, as everywhere outside receipts."""
    formats.check_sha256_hex(module_sha256)
    return Receipt(
        job_id=job_id,
        module_sha256=bytes.fromhex(module_sha256),
        input_sha256=input_sha256(job_input),
        stdout_sha256=sha256(outcome.stdout),
        stderr_sha256=sha256(outcome.stderr),
        stdout_len=len(outcome.stdout),
        stderr_len=len(outcome.stderr),
        stdout_truncated=outcome.stdout_truncated,
        stderr_truncated=outcome.stderr_truncated,
        outcome=OutcomeKind(outcome.kind),
        exit_code=outcome.exit_code,
        message=outcome.message,
        fuel_consumed=outcome.fuel_consumed,
        wall_time_us=outcome.wall_time_us,
        limits=limits,
        engine_name=engine_name,
        engine_version=engine_version,
        executor=executor,
        requester=requester,
        nonce=nonce,
        started_at_ms=outcome.started_at_ms,
        finished_at_ms=outcome.finished_at_ms,
    )


def receipt_to_body(receipt: Receipt) -> dict[str, Any]:
    """The receipt as the documented CBOR body map (before encoding)."""
    body = fields.to_data(receipt)
    body["v"] = body.pop("version")
    body["engine"] = {"name": body.pop("engine_name"), "version": body.pop("engine_version")}
    return dict(body)


def receipt_from_body(body: Any) -> Receipt:
    """Check a decoded body's shape and build the ``Receipt``; ``ReceiptError`` otherwise."""
    if not isinstance(body, dict) or "v" not in body:
        raise ReceiptError("malformed", "the receipt body is not a map with a version 'v'")
    if body.get("v") != RECEIPT_VERSION or type(body.get("v")) is not int:
        raise ReceiptError(
            "unsupported_version",
            f"receipt version {body.get('v')!r} is not supported; this node reads version 1",
        )
    flat = dict(body)
    engine = flat.pop("engine", None)
    if not isinstance(engine, dict) or set(engine) != {"name", "version"}:
        raise ReceiptError("malformed", "the receipt engine must be a map of name and version")
    flat["version"] = flat.pop("v")
    flat["engine_name"] = engine["name"]
    flat["engine_version"] = engine["version"]
    try:
        receipt: Receipt = fields.from_data(Receipt, flat, "body")
    except DecodeError as exc:
        raise ReceiptError("malformed", str(exc)) from exc
    return receipt


def sign_receipt(receipt: Receipt, signing_key: nacl.signing.SigningKey) -> bytes:
    """Encode and sign ``receipt``; the key must be the executor's (``ValueError`` if not)."""
    key_peer_id = peer_id_from_public_key(signing_key.verify_key.encode())
    if key_peer_id != receipt.executor:
        raise ValueError(
            f"refusing to sign a receipt naming executor {receipt.executor} "
            f"with the key of {key_peer_id}"
        )
    return seal(RECEIPT_DOMAIN, cbor.dumps(receipt_to_body(receipt)), signing_key)


def verify_envelope(
    envelope: bytes,
    *,
    expected_executor: str | None = None,
    expected_nonce: bytes | None = None,
    expected_job_id: str | None = None,
    expected_module_sha256: str | bytes | None = None,
    job_input: JobInput | None = None,
    stdout: bytes | None = None,
    stderr: bytes | None = None,
) -> Receipt:
    """Verify a receipt envelope offline and return its receipt; ``ReceiptError`` otherwise.

    ``expected_module_sha256`` is hex (or the 32 raw bytes); ``job_input``, ``stdout`` and
    ``stderr`` are checked against the receipt's hashes (and lengths) when given.
    """
    _, receipt = _open_and_check_signature(envelope)
    _check_expectations(
        receipt,
        expected_executor=expected_executor,
        expected_nonce=expected_nonce,
        expected_job_id=expected_job_id,
        expected_module_sha256=expected_module_sha256,
        job_input=job_input,
        stdout=stdout,
        stderr=stderr,
    )
    return receipt


def _open_unverified(envelope: bytes) -> tuple[Envelope, Receipt]:
    try:
        opened = open_envelope(envelope, max_size=MAX_ENVELOPE_SIZE)
        body = cbor.loads(opened.body, max_size=MAX_ENVELOPE_SIZE)
    except DecodeError as exc:
        raise ReceiptError("malformed", f"the receipt envelope cannot be decoded: {exc}") from exc
    return opened, receipt_from_body(body)


def _open_and_check_signature(envelope: bytes) -> tuple[Envelope, Receipt]:
    try:
        opened = open_envelope(envelope, max_size=MAX_ENVELOPE_SIZE)
        body = cbor.loads(opened.body, max_size=MAX_ENVELOPE_SIZE)
    except DecodeError as exc:
        raise ReceiptError("malformed", f"the receipt envelope cannot be decoded: {exc}") from exc
    executor = body.get("executor") if isinstance(body, dict) else None
    if not isinstance(executor, str):
        raise ReceiptError("malformed", "the receipt body names no executor")
    key_peer_id = peer_id_from_public_key(opened.public_key)
    if key_peer_id != executor:
        raise ReceiptError(
            "key_mismatch",
            f"the receipt was signed by {key_peer_id} but names executor {executor}",
        )
    if not signature_is_valid(RECEIPT_DOMAIN, opened):
        raise ReceiptError(
            "bad_signature", "the signature does not match the receipt body; it was altered"
        )
    return opened, receipt_from_body(body)


def _check_expectations(
    receipt: Receipt,
    *,
    expected_executor: str | None,
    expected_nonce: bytes | None,
    expected_job_id: str | None,
    expected_module_sha256: str | bytes | None,
    job_input: JobInput | None,
    stdout: bytes | None,
    stderr: bytes | None,
) -> None:
    if expected_executor is not None and receipt.executor != expected_executor:
        raise ReceiptError(
            "executor_mismatch",
            f"the receipt is from {receipt.executor}, not the expected {expected_executor}",
        )
    if expected_job_id is not None and receipt.job_id != expected_job_id:
        raise ReceiptError(
            "job_id_mismatch", f"the receipt is for job {receipt.job_id}, not {expected_job_id}"
        )
    if expected_nonce is not None and receipt.nonce != expected_nonce:
        raise ReceiptError("nonce_mismatch", "the receipt answers another request (nonce differs)")
    if expected_module_sha256 is not None:
        expected = (
            bytes.fromhex(expected_module_sha256)
            if isinstance(expected_module_sha256, str)
            else expected_module_sha256
        )
        if receipt.module_sha256 != expected:
            raise ReceiptError("hash_mismatch", "the receipt is for another module")
    if job_input is not None and receipt.input_sha256 != input_sha256(job_input):
        raise ReceiptError("hash_mismatch", "the receipt is for another input")
    for name, data, digest, length in (
        ("stdout", stdout, receipt.stdout_sha256, receipt.stdout_len),
        ("stderr", stderr, receipt.stderr_sha256, receipt.stderr_len),
    ):
        if data is not None and (len(data) != length or sha256(data) != digest):
            raise ReceiptError(
                "hash_mismatch", f"the {name} bytes are not the ones the receipt signs"
            )


def receipt_body_to_json(receipt: Receipt) -> dict[str, Any]:
    """The body as JSON: hashes and nonce as lowercase hex, everything else as in CBOR."""
    body = receipt_to_body(receipt)
    for name in (*_HASH_FIELDS, "nonce"):
        body[name] = body[name].hex()
    return body


def receipt_to_json(envelope: bytes, *, already_verified: bool = False) -> dict[str, Any]:
    """The JSON form of a receipt (``schemas/receipt.schema.json``), from its envelope.

    The envelope is verified first (signature and key, no expectations), so this never turns
    a forged receipt into JSON that looks genuine — unless the caller says it was
    ``already_verified`` (this node's signer just made it, or the negotiator checked it):
    then only its shape is checked, which saves the ~100 us a verification costs per job.
    """
    if already_verified:
        opened, receipt = _open_unverified(envelope)
    else:
        opened, receipt = _open_and_check_signature(envelope)
    return {
        "envelope": base64.b64encode(envelope).decode("ascii"),
        "body": receipt_body_to_json(receipt),
        "signature": opened.signature.hex(),
        "public_key": opened.public_key.hex(),
    }


def envelope_from_json(obj: Any) -> bytes:
    """The envelope bytes of a receipt's JSON form; verify them with ``verify_envelope``.

    Only ``envelope`` is read: ``body``, ``signature`` and ``public_key`` are for people.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("envelope"), str):
        raise ReceiptError("malformed", "a receipt in JSON has an 'envelope' string (base64)")
    try:
        return base64.b64decode(obj["envelope"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReceiptError("malformed", f"the receipt envelope is not valid base64: {exc}") from exc
