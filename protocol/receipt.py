"""Execution receipts: build, sign, verify, and their JSON form.

Theory of operation: the executor's signer turns an ``Outcome`` into a ``Receipt`` (hashes of
the input, of the captured output and of every output file, never the bytes themselves),
encodes it as the canonical CBOR body (version ``v: 2``) and signs it as a COSE_Sign1
(RFC 9052, ``plasm.protocol.cose``) of content type ``application/vnd.plasm.receipt+cbor``
whose kid is the executor's peer ID — the same Ed25519 key as its libp2p identity. Anyone
holding the COSE bytes can verify offline, with this module or any COSE library, in order:

1. decode the COSE_Sign1 strictly (Plasm's one encoding)   -> ``malformed``
2. the kid is the body's ``executor``                       -> ``key_mismatch``
3. the signature over the Sig_structure, by the kid's key   -> ``bad_signature``
4. the body has the documented shape and types, and is the
   canonical encoding of itself                             -> ``malformed``,
                                                               ``unsupported_version``
5. the caller's expectations (executor, job, nonce, module, input, stdout, stderr, files)
                                                            -> ``executor_mismatch``,
   ``job_id_mismatch``, ``nonce_mismatch``, ``hash_mismatch``

Step 2 reads ``executor`` out of a body decoded strictly but not yet trusted; nothing else is
read before the signature is checked. Version 1 receipts (a Plasm envelope map) are refused
with ``unsupported_version``: see docs/architecture.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.signing

from plasm.protocol import cbor, cose, fields, formats
from plasm.protocol.errors import DecodeError, PeerIdError, ReceiptError
from plasm.protocol.identity import peer_id_from_public_key, public_key_from_peer_id
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind

RECEIPT_VERSION = 2
MAX_ENVELOPE_SIZE = 1 * 2**20
# The profile a receipt's job ran under (``profile`` in the body; see docs/architecture.md).
PROFILE_DETERMINISTIC = "wasi-p1-det/1"
PROFILE_NONDETERMINISTIC = "wasi-p1-nondet/1"
PROFILES = frozenset({PROFILE_DETERMINISTIC, PROFILE_NONDETERMINISTIC})
# Outcomes whose fuel depends on when the job was stopped, not on the job alone.
FUEL_INEXACT_OUTCOMES = frozenset({OutcomeKind.TIMEOUT, OutcomeKind.CANCELLED})

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
        "result_mismatch",  # a saved result says other than its receipt (verification.py)
        "log_invalid",  # its proof of inclusion in the executor's log does not hold
        # a saved quorum (protocol/quorum.py): fewer than `quorum` receipts agree, an
        # executor signed two of them, or `agreeing` does not name an agreeing group
        "no_quorum",
        "duplicate_executor",
        "quorum_mismatch",
    }
)

_HASH_FIELDS = ("module_sha256", "input_sha256", "stdout_sha256", "stderr_sha256")


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One file the job left under ``/output``: its path, size and sha256 (raw bytes)."""

    path: str
    size: int
    sha256: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/output/"):
            raise ValueError(f"an output file path is under /output/, got {self.path!r}")
        formats.check_non_negative(self.size, "output file size")
        if not isinstance(self.sha256, bytes) or len(self.sha256) != formats.SHA256_SIZE:
            raise ValueError(f"output file sha256 must be {formats.SHA256_SIZE} bytes")


@dataclass(frozen=True, slots=True)
class Receipt:
    """The signed statement "executor ran this module on this input and got this".

    Mirrors the CBOR body field by field, except that the body's ``v`` is ``version`` and its
    ``engine`` map is ``engine_name`` / ``engine_version``. Hashes and the nonce are raw bytes.
    ``outputs`` is sorted by path; ``fuel_exact`` is False where the fuel burnt depends on
    when the job was stopped (timeout, cancel), not on the job.
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
    outputs: tuple[OutputFile, ...]
    outputs_truncated: bool
    outcome: OutcomeKind
    exit_code: int | None
    message: str | None
    fuel_consumed: int
    fuel_exact: bool
    wall_time_us: int
    limits: Limits
    engine_name: str
    engine_version: str
    profile: str
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
        paths = [output.path for output in self.outputs]
        if paths != sorted(set(paths)):
            raise ValueError("receipt outputs must be sorted by path, each path once")
        if self.profile not in PROFILES:
            raise ValueError(f"receipt profile {self.profile!r} is not one of {sorted(PROFILES)}")
        if self.version != RECEIPT_VERSION:
            raise ValueError(
                f"receipt version {self.version!r} is not supported (expected {RECEIPT_VERSION})"
            )
        try:
            public_key_from_peer_id(self.executor)
        except PeerIdError as exc:
            raise ValueError(f"receipt executor: {exc}") from exc


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def input_sha256(job_input: JobInput) -> bytes:
    """sha256 of the canonical CBOR of everything the guest is given besides the module::

        {"args": [text], "env": {text: text}, "files": [{"path", "sha256", "size"}],
         "module_name": text, "stdin": {"sha256", "size"},
         "determinism": {"epoch_ms": uint, "seed": bytes | null} | null}

    ``files`` sorted by path; argv[0] (``module_name``) is included because a guest can read
    it. Bytes enter by their sha256 and size, so a verifier never has to hold them whole.
    ``determinism`` is null for a job run with the host's clocks and randomness; a null seed
    means the guest's random stream is seeded with this very hash (``JobInput.random_seed``).
    """
    return job_input.sha256()


def output_files(outcome: Outcome) -> tuple[OutputFile, ...]:
    return tuple(OutputFile(path, len(data), sha256(data)) for path, data in outcome.output_files)


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
    """The receipt of ``outcome``; ``module_sha256`` is hex, as everywhere outside receipts.
    The profile follows ``job_input.deterministic``."""
    formats.check_sha256_hex(module_sha256)
    kind = OutcomeKind(outcome.kind)
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
        outputs=output_files(outcome),
        outputs_truncated=outcome.outputs_truncated,
        outcome=kind,
        exit_code=outcome.exit_code,
        message=outcome.message,
        fuel_consumed=outcome.fuel_consumed,
        fuel_exact=kind not in FUEL_INEXACT_OUTCOMES,
        wall_time_us=outcome.wall_time_us,
        limits=limits,
        engine_name=engine_name,
        engine_version=engine_version,
        profile=PROFILE_DETERMINISTIC if job_input.deterministic else PROFILE_NONDETERMINISTIC,
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
            f"receipt version {body.get('v')!r} is not supported; this node reads version "
            f"{RECEIPT_VERSION}",
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


def encode_body(receipt: Receipt) -> bytes:
    """The canonical CBOR body: the COSE payload, and what a replay compares."""
    return cbor.dumps(receipt_to_body(receipt))


def sign_receipt(receipt: Receipt, signing_key: nacl.signing.SigningKey) -> bytes:
    """The COSE_Sign1 of ``receipt``; the key must be the executor's (``ValueError`` if not)."""
    key_peer_id = peer_id_from_public_key(signing_key.verify_key.encode())
    if key_peer_id != receipt.executor:
        raise ValueError(
            f"refusing to sign a receipt naming executor {receipt.executor} "
            f"with the key of {key_peer_id}"
        )
    return cose.sign1(encode_body(receipt), cose.CONTENT_TYPE_RECEIPT, key_peer_id, signing_key)


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
    outputs: tuple[tuple[str, bytes], ...] | None = None,
) -> Receipt:
    """Verify a receipt (its COSE_Sign1 bytes) offline and return it; ``ReceiptError`` otherwise.

    ``expected_module_sha256`` is hex (or the 32 raw bytes); ``job_input``, ``stdout``,
    ``stderr`` and ``outputs`` (``(path, bytes)`` pairs: every output file) are checked
    against the receipt's hashes and lengths when given.
    """
    receipt = _open_and_check_signature(envelope)
    _check_expectations(
        receipt,
        expected_executor=expected_executor,
        expected_nonce=expected_nonce,
        expected_job_id=expected_job_id,
        expected_module_sha256=expected_module_sha256,
        job_input=job_input,
        stdout=stdout,
        stderr=stderr,
        outputs=outputs,
    )
    return receipt


def _decode(envelope: bytes) -> tuple[cose.Sign1, Any]:
    if isinstance(envelope, bytes | bytearray) and envelope[:1] in (b"\xa4", b"\xb9"):
        raise ReceiptError(
            "unsupported_version",
            "this is a version 1 receipt (a Plasm envelope map, plasmd 0.2 and older); this "
            "plasmd verifies COSE_Sign1 receipts (version 2) only: check it with the plasmd "
            "that made it",
        )
    try:
        signed = cose.decode_sign1(
            envelope, max_size=MAX_ENVELOPE_SIZE, content_type=cose.CONTENT_TYPE_RECEIPT
        )
        body = cbor.loads(signed.payload, max_size=MAX_ENVELOPE_SIZE)
    except DecodeError as exc:
        raise ReceiptError("malformed", f"the receipt cannot be decoded: {exc}") from exc
    return signed, body


def _open_unverified(envelope: bytes) -> Receipt:
    _, body = _decode(envelope)
    return receipt_from_body(body)


def _open_and_check_signature(envelope: bytes) -> Receipt:
    signed, body = _decode(envelope)
    executor = body.get("executor") if isinstance(body, dict) else None
    if not isinstance(executor, str):
        raise ReceiptError("malformed", "the receipt body names no executor")
    if signed.kid != executor:
        raise ReceiptError(
            "key_mismatch",
            f"the receipt was signed by {signed.kid} but names executor {executor}",
        )
    try:
        valid = cose.verify_sign1(signed)
    except DecodeError as exc:
        raise ReceiptError("malformed", f"the receipt's kid names no key: {exc}") from exc
    if not valid:
        raise ReceiptError(
            "bad_signature", "the signature does not match the receipt body; it was altered"
        )
    receipt = receipt_from_body(body)
    if encode_body(receipt) != signed.payload:
        raise ReceiptError(
            "malformed", "the receipt body is not in canonical CBOR (RFC 8949 core deterministic)"
        )
    return receipt


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
    outputs: tuple[tuple[str, bytes], ...] | None,
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
    if outputs is not None:
        check_output_files(receipt, outputs)


def check_output_files(receipt: Receipt, outputs: tuple[tuple[str, bytes], ...]) -> None:
    """``outputs`` must be exactly the receipt's files: same paths, sizes and hashes."""
    signed = {output.path: output for output in receipt.outputs}
    given = dict(outputs)
    for path in sorted(set(signed) | set(given)):
        if path not in given:
            raise ReceiptError("hash_mismatch", f"output file {path} is missing")
        if path not in signed:
            raise ReceiptError("hash_mismatch", f"output file {path} is not in the receipt")
        data = given[path]
        if len(data) != signed[path].size or sha256(data) != signed[path].sha256:
            raise ReceiptError(
                "hash_mismatch", f"output file {path} is not the one the receipt signs"
            )


def receipt_body_to_json(receipt: Receipt) -> dict[str, Any]:
    """The body as JSON: hashes and nonce as lowercase hex, everything else as in CBOR."""
    body = receipt_to_body(receipt)
    for name in (*_HASH_FIELDS, "nonce"):
        body[name] = body[name].hex()
    for output in body["outputs"]:
        output["sha256"] = output["sha256"].hex()
    return body


def receipt_to_json(envelope: bytes, *, already_verified: bool = False) -> dict[str, Any]:
    """The JSON form of a receipt (``schemas/receipt.schema.json``), from its COSE bytes:
    ``{"cose": base64, "executor": peer ID, "body": {...}}``.

    The receipt is verified first (signature and key, no expectations), so this never turns
    a forged receipt into JSON that looks genuine — unless the caller says it was
    ``already_verified`` (this node's signer just made it, or the negotiator checked it):
    then only its shape is checked, which saves the ~100 us a verification costs per job.
    """
    receipt = (
        _open_unverified(envelope) if already_verified else _open_and_check_signature(envelope)
    )
    return {
        "cose": base64.b64encode(envelope).decode("ascii"),
        "executor": receipt.executor,
        "body": receipt_body_to_json(receipt),
    }


def envelope_from_json(obj: Any) -> bytes:
    """The COSE bytes of a receipt's JSON form; verify them with ``verify_envelope``.

    Only ``cose`` is read: ``executor`` and ``body`` are for people.
    """
    if isinstance(obj, dict) and isinstance(obj.get("envelope"), str) and "cose" not in obj:
        raise ReceiptError(
            "unsupported_version",
            "this is a version 1 receipt ('envelope', plasmd 0.2 and older); this plasmd "
            "verifies COSE_Sign1 receipts ('cose') only: check it with the plasmd that made it",
        )
    if not isinstance(obj, dict) or not isinstance(obj.get("cose"), str):
        raise ReceiptError("malformed", "a receipt in JSON has a 'cose' string (base64)")
    try:
        return base64.b64decode(obj["cose"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReceiptError("malformed", f"the receipt's cose is not valid base64: {exc}") from exc
