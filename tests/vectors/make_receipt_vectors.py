"""Write tests/vectors/receipt-vectors.json: signed receipts for verifiers in other languages.

Everything is fixed (key seeds, times, outputs) and Ed25519 signatures are deterministic, so
the file is the same on every run. ``--check`` regenerates it in memory and fails if the
committed file differs.

Each valid vector holds the envelope and the bytes it commits to (module, stdout, stderr);
each tampered vector holds an envelope, optional expectations to verify it with, and the
reason (``ReceiptError.reason``) a verifier must give. Verify in this order: envelope shape
(``malformed``), peer ID of ``key`` == ``body.executor`` (``key_mismatch``), Ed25519 over
``b"plasm/receipt/v1\\x00" + body`` exactly as stored (``bad_signature``), body shape
(``malformed``, ``unsupported_version``), then expectations.

Usage: python tests/vectors/make_receipt_vectors.py [--check]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import cbor2
import nacl.signing

from plasm.protocol import cbor
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import RECEIPT_DOMAIN, build_receipt, receipt_to_json, sign_receipt
from plasm.protocol.signed import seal
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind

OUTPUT = Path(__file__).with_name("receipt-vectors.json")
EXECUTOR_SEED = hashlib.sha256(b"plasm receipt vectors: executor").digest()
OTHER_SEED = hashlib.sha256(b"plasm receipt vectors: other peer").digest()
REQUESTER_SEED = hashlib.sha256(b"plasm receipt vectors: requester").digest()
MODULE = b"\x00asm\x01\x00\x00\x00"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in unix ms


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_info(key: nacl.signing.SigningKey, seed: bytes) -> dict[str, str]:
    public = key.verify_key.encode()
    return {
        "seed": seed.hex(),
        "public_key": public.hex(),
        "peer_id": peer_id_from_public_key(public),
    }


def outcome(kind: OutcomeKind, stdout: bytes, stderr: bytes = b"", **extra: Any) -> Outcome:
    fields: dict[str, Any] = {
        "kind": kind, "exit_code": None, "message": None, "stdout": stdout, "stderr": stderr,
        "stdout_truncated": False, "stderr_truncated": False, "fuel_consumed": 1_234,
        "wall_time_us": 410, "started_at_ms": T0, "finished_at_ms": T0 + 1,
    }  # fmt: skip
    fields.update(extra)
    return Outcome(**fields)


def cases() -> list[dict[str, Any]]:
    return [
        {
            "name": "ok_hello",
            "job_id": f"{T0:012x}" + "00000000000000000001",
            "job_input": JobInput(),
            "limits": Limits(),
            "outcome": outcome(OutcomeKind.OK, b"Hello, World!\n"),
        },
        {
            "name": "exit_with_args_env_and_unicode_stderr",
            "job_id": f"{T0:012x}" + "00000000000000000002",
            "job_input": JobInput(
                stdin=b"abc\n",
                args=("--name", "w\u00f6rld"),
                env=(("LANG", "C.UTF-8"), ("TZ", "UTC")),
            ),
            "limits": Limits(
                fuel=5_000_000, memory_bytes=16 * 2**20, timeout_ms=2_000, max_output_bytes=4_096
            ),
            "outcome": outcome(
                OutcomeKind.EXIT, b"cba\n", "fatal: \u00e9chec\n".encode(), exit_code=3
            ),
        },
        {
            "name": "trap_with_truncated_stdout",
            "job_id": f"{T0:012x}" + "00000000000000000003",
            "job_input": JobInput(stdin=bytes(range(256))),
            "limits": Limits(max_output_bytes=16),
            "outcome": outcome(
                OutcomeKind.TRAP,
                b"0123456789abcdef",
                stdout_truncated=True,
                message="wasm trap: wasm `unreachable` instruction executed",
            ),
        },
        {
            "name": "out_of_fuel_with_64_bit_numbers",
            "job_id": f"{T0:012x}" + "00000000000000000004",
            "job_input": JobInput(args=("spin",)),
            "limits": Limits(fuel=5_000_000_000, memory_bytes=4 * 2**30, timeout_ms=600_000),
            "outcome": outcome(
                OutcomeKind.OUT_OF_FUEL,
                b"",
                fuel_consumed=5_000_000_000,
                wall_time_us=4_294_967_296,
            ),
        },
    ]


def valid_vector(
    case: dict[str, Any], executor: nacl.signing.SigningKey, requester: str
) -> dict[str, Any]:
    nonce = hashlib.sha256(case["name"].encode()).digest()[:16]
    receipt = build_receipt(
        job_id=case["job_id"], module_sha256=hashlib.sha256(MODULE).hexdigest(),
        job_input=case["job_input"], limits=case["limits"], outcome=case["outcome"],
        engine_name="wasmtime", engine_version="50.0.1",
        executor=peer_id_from_public_key(executor.verify_key.encode()), requester=requester,
        nonce=nonce,
    )  # fmt: skip
    envelope = sign_receipt(receipt, executor)
    job_input: JobInput = case["job_input"]
    return {
        "name": case["name"],
        "envelope": b64(envelope),
        "module": b64(MODULE),
        "stdout": b64(case["outcome"].stdout),
        "stderr": b64(case["outcome"].stderr),
        "input": {
            "stdin": b64(job_input.stdin),
            "args": list(job_input.args),
            "env": dict(job_input.env),
        },
        "expected": {
            "executor": receipt.executor,
            "job_id": receipt.job_id,
            "nonce": nonce.hex(),
            "module_sha256": receipt.module_sha256.hex(),
        },
        "receipt_json": receipt_to_json(envelope),
    }


def tampered_vectors(
    base: dict[str, Any], executor: nacl.signing.SigningKey, other: nacl.signing.SigningKey
) -> list[dict[str, Any]]:
    envelope = base64.b64decode(base["envelope"])
    outer = cbor.loads(envelope)
    body = cbor.loads(outer["body"])
    other_peer = peer_id_from_public_key(other.verify_key.encode())
    vectors: list[dict[str, Any]] = []

    def add(name: str, data: bytes, reason: str, verify_with: dict[str, str] | None = None) -> None:
        vectors.append(
            {
                "name": name,
                "envelope": b64(data),
                "verify_with": verify_with or {},
                "reason": reason,
            }
        )

    def with_outer(**changes: Any) -> bytes:
        return cbor.dumps({**outer, **changes})

    def with_body(**changes: Any) -> bytes:
        return with_outer(body=cbor.dumps({**body, **changes}))

    flip = bytes([body["stdout_sha256"][0] ^ 1]) + body["stdout_sha256"][1:]
    add("body_stdout_sha256_altered", with_body(stdout_sha256=flip), "bad_signature")
    add("body_exit_code_altered", with_body(exit_code=0), "bad_signature")
    add("body_outcome_altered", with_body(outcome="timeout"), "bad_signature")
    add("body_fuel_altered", with_body(fuel_consumed=body["fuel_consumed"] - 1), "bad_signature")
    add("body_job_id_altered", with_body(job_id="f" * 32), "bad_signature")
    add("body_nonce_altered", with_body(nonce=b"\x00" * 16), "bad_signature")
    add("body_limits_altered", with_body(limits={**body["limits"], "fuel": 1}), "bad_signature")
    add("body_requester_altered", with_body(requester=other_peer), "bad_signature")
    add("body_executor_altered", with_body(executor=other_peer), "key_mismatch")
    sig = outer["sig"]
    add(
        "signature_bit_flipped",
        with_outer(sig=sig[:10] + bytes([sig[10] ^ 0x80]) + sig[11:]),
        "bad_signature",
    )
    add(
        "key_replaced_by_another_valid_key",
        with_outer(key=other.verify_key.encode()),
        "key_mismatch",
    )
    add("resigned_by_another_key", seal(RECEIPT_DOMAIN, outer["body"], other), "key_mismatch")
    add(
        "signed_without_domain_prefix",
        with_outer(sig=executor.sign(outer["body"]).signature),
        "bad_signature",
    )
    add(
        "body_re_encoded_in_another_key_order",
        with_outer(body=cbor2.dumps(dict(sorted(body.items())))),
        "bad_signature",
    )
    forged = cbor.dumps({**body, "executor": other_peer})
    add(
        "forger_signing_as_itself",
        seal(RECEIPT_DOMAIN, forged, other),
        "executor_mismatch",
        {"expected_executor": base["expected"]["executor"]},
    )
    add("envelope_trailing_byte", envelope + b"\x00", "malformed")
    add("envelope_truncated", envelope[:-1], "malformed")
    add(
        "envelope_without_sig",
        cbor.dumps({k: v for k, v in outer.items() if k != "sig"}),
        "malformed",
    )
    add("envelope_short_signature", with_outer(sig=sig[:63]), "malformed")
    add("envelope_version_2", with_outer(v=2), "malformed")
    add("envelope_duplicate_key", _duplicate_sig(envelope), "malformed")
    add(
        "body_version_2_validly_signed",
        seal(RECEIPT_DOMAIN, cbor.dumps({**body, "v": 2}), executor),
        "unsupported_version",
    )
    add(
        "body_missing_field_validly_signed",
        seal(
            RECEIPT_DOMAIN,
            cbor.dumps({k: v for k, v in body.items() if k != "wall_time_us"}),
            executor,
        ),
        "malformed",
    )
    add("wrong_nonce_expected", envelope, "nonce_mismatch", {"expected_nonce": "00" * 16})
    add("wrong_job_id_expected", envelope, "job_id_mismatch", {"expected_job_id": "e" * 32})
    add("wrong_module_expected", envelope, "hash_mismatch", {"expected_module_sha256": "0" * 64})
    add("other_stdout_given", envelope, "hash_mismatch", {"stdout": b64(b"Hello, World?\n")})
    add("other_stderr_given", envelope, "hash_mismatch", {"stderr": b64(b"x")})
    return vectors


def _duplicate_sig(envelope: bytes) -> bytes:
    """The envelope with its map header bumped and a second ``sig`` entry appended."""
    assert envelope[0] == 0xA4  # map of 4
    outer = cbor.loads(envelope)
    return b"\xa5" + envelope[1:] + cbor.dumps("sig") + cbor.dumps(outer["sig"])


def non_canonical_vector(executor: nacl.signing.SigningKey, base: dict[str, Any]) -> dict[str, Any]:
    """A valid receipt whose body is not in canonical key order: verifiers must use the bytes
    as stored, never re-encode."""
    outer = cbor.loads(base64.b64decode(base["envelope"]))
    body = cbor.loads(outer["body"])
    reordered = cbor2.dumps(dict(sorted(body.items(), reverse=True)))
    envelope = seal(RECEIPT_DOMAIN, reordered, executor)
    return {
        **base,
        "name": "non_canonical_body_order",
        "envelope": b64(envelope),
        "receipt_json": receipt_to_json(envelope),
    }


def build() -> dict[str, Any]:
    executor = nacl.signing.SigningKey(EXECUTOR_SEED)
    other = nacl.signing.SigningKey(OTHER_SEED)
    requester = nacl.signing.SigningKey(REQUESTER_SEED)
    requester_id = peer_id_from_public_key(requester.verify_key.encode())
    valid = [valid_vector(case, executor, requester_id) for case in cases()]
    valid.append(non_canonical_vector(executor, valid[0]))
    return {
        "description": " ".join(
            (__doc__ or "").split("\n\n")[i].replace("\n", " ") for i in (0, 2)
        ),
        "format": {
            "envelope": 'canonical CBOR {"v": 1, "body": b, "sig": b(64), "key": b(32)}',
            "signature": "Ed25519 over domain + body (the body bytes exactly as stored)",
            "domain_hex": RECEIPT_DOMAIN.hex(),
            "byte_fields": "base64: envelope, module, stdout, stderr, stdin; hex: hashes, nonces",
        },
        "keys": {
            "executor": key_info(executor, EXECUTOR_SEED),
            "other": key_info(other, OTHER_SEED),
            "requester": key_info(requester, REQUESTER_SEED),
        },
        "valid": valid,
        "tampered": tampered_vectors(valid[0], executor, other)
        + [
            {**vector, "name": f"exit_{vector['name']}"}
            for vector in tampered_vectors(valid[1], executor, other)
            if vector["name"].startswith(("body_", "signature_", "key_"))
        ],
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text("utf-8") != text:
            print(
                f"{OUTPUT} is out of date: run {Path(__file__).name} to regenerate it",
                file=sys.stderr,
            )
            return 1
        print(f"{OUTPUT.name} is up to date")
        return 0
    OUTPUT.write_text(text, "utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
