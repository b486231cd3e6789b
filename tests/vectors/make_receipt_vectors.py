"""Write tests/vectors/receipt-vectors.json: signed receipts for verifiers in other languages.

Everything is fixed (key seeds, times, outputs) and Ed25519 signatures are deterministic, so
the file is the same on every run. ``--check`` regenerates it in memory and fails if the
committed file differs.

Each valid vector holds the receipt (``cose``: a tagged COSE_Sign1, RFC 9052) and the bytes
it commits to (module, input files, stdout, stderr, output files); each tampered vector holds
COSE bytes, optional expectations to verify them with, and the reason
(``ReceiptError.reason``) a verifier must give. Verify in this order: the COSE_Sign1 in its
one accepted encoding (tag 18, protected header exactly {1: -8, 3:
"application/vnd.plasm.receipt+cbor", 4: kid}, empty unprotected header, shortest-form
lengths, nothing after; else ``malformed``), kid == ``body.executor`` (``key_mismatch``),
Ed25519 by the key in the kid's peer ID over ``["Signature1", protected, h'', payload]``
(``bad_signature``), the body's shape and canonical encoding (``malformed``,
``unsupported_version``), then expectations.

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

from plasm.protocol import cbor, cose
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.receipt import build_receipt, receipt_to_json, sign_receipt
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
                deterministic=False,
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
            "job_input": JobInput(stdin=bytes(range(256)), seed=b"\x2a" * 8, epoch_ms=0),
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
        {
            "name": "ok_with_input_and_output_files",
            "job_id": f"{T0:012x}" + "00000000000000000005",
            "job_input": JobInput(
                args=("/input/in.txt",),
                files=(("/input/in.txt", b"line one\nline two\n"), ("/input/z/empty", b"")),
            ),
            "limits": Limits(),
            "outcome": outcome(
                OutcomeKind.OK,
                b"2 files\n",
                output_files=(
                    ("/output/count.txt", b"2\n"),
                    ("/output/sub/copy.txt", b"line one\nline two\n"),
                ),
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
        "cose": b64(envelope),
        "module": b64(MODULE),
        "stdout": b64(case["outcome"].stdout),
        "stderr": b64(case["outcome"].stderr),
        "outputs": [{"path": p, "content": b64(d)} for p, d in case["outcome"].output_files],
        "input": {
            "stdin": b64(job_input.stdin),
            "args": list(job_input.args),
            "env": dict(job_input.env),
            "module_name": job_input.module_name,
            "files": [{"path": p, "content": b64(d)} for p, d in job_input.files],
            "determinism": (
                {
                    "epoch_ms": job_input.epoch_ms,
                    "seed": None if job_input.seed is None else job_input.seed.hex(),
                }
                if job_input.deterministic
                else None
            ),
        },
        "expected": {
            "executor": receipt.executor,
            "job_id": receipt.job_id,
            "nonce": nonce.hex(),
            "module_sha256": receipt.module_sha256.hex(),
        },
        "receipt_json": receipt_to_json(envelope),
    }


def _parts(signed: bytes) -> list[Any]:
    tagged = cbor2.loads(signed)
    return [tagged.value[0], dict(tagged.value[1]), tagged.value[2], tagged.value[3]]


def _assemble(parts: list[Any], tag: bool = True) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, parts) if tag else parts)


def tampered_vectors(
    base: dict[str, Any], executor: nacl.signing.SigningKey, other: nacl.signing.SigningKey
) -> list[dict[str, Any]]:
    signed = base64.b64decode(base["cose"])
    parts = _parts(signed)
    body = cbor.loads(parts[2])
    executor_id = peer_id_from_public_key(executor.verify_key.encode())
    other_peer = peer_id_from_public_key(other.verify_key.encode())
    vectors: list[dict[str, Any]] = []

    def add(name: str, data: bytes, reason: str, verify_with: dict[str, Any] | None = None) -> None:
        vectors.append(
            {"name": name, "cose": b64(data), "verify_with": verify_with or {}, "reason": reason}
        )

    def with_parts(**changes: Any) -> bytes:
        names = ("protected", "unprotected", "payload", "signature")
        return _assemble([changes.get(n, parts[i]) for i, n in enumerate(names)])

    def with_body(**changes: Any) -> bytes:
        return with_parts(payload=cbor.dumps({**body, **changes}))

    def sign(payload: bytes, key: nacl.signing.SigningKey = executor,
             content_type: str = cose.CONTENT_TYPE_RECEIPT) -> bytes:
        kid = peer_id_from_public_key(key.verify_key.encode())
        return cose.sign1(payload, content_type, kid, key)

    flip = bytes([body["stdout_sha256"][0] ^ 1]) + body["stdout_sha256"][1:]
    add("body_stdout_sha256_altered", with_body(stdout_sha256=flip), "bad_signature")
    add("body_exit_code_altered", with_body(exit_code=0), "bad_signature")
    add("body_outcome_altered", with_body(outcome="timeout"), "bad_signature")
    add("body_fuel_altered", with_body(fuel_consumed=body["fuel_consumed"] - 1), "bad_signature")
    add("body_job_id_altered", with_body(job_id="f" * 32), "bad_signature")
    add("body_nonce_altered", with_body(nonce=b"\x00" * 16), "bad_signature")
    add("body_limits_altered", with_body(limits={**body["limits"], "fuel": 1}), "bad_signature")
    add("body_requester_altered", with_body(requester=other_peer), "bad_signature")
    add("body_outputs_truncated_altered", with_body(outputs_truncated=True), "bad_signature")
    add("body_executor_altered", with_body(executor=other_peer), "key_mismatch")
    sig = parts[3]
    add(
        "signature_bit_flipped",
        with_parts(signature=sig[:10] + bytes([sig[10] ^ 0x80]) + sig[11:]),
        "bad_signature",
    )
    add(
        "kid_replaced_by_another_peer",
        with_parts(protected=cose.protected_header(cose.CONTENT_TYPE_RECEIPT, other_peer)),
        "key_mismatch",
    )
    add("resigned_by_another_key", sign(parts[2], other), "key_mismatch")
    add(
        "signed_over_the_payload_not_the_sig_structure",
        with_parts(signature=executor.sign(parts[2]).signature),
        "bad_signature",
    )
    add(
        "body_re_encoded_in_another_key_order_validly_signed",
        sign(cbor2.dumps(dict(sorted(body.items())))),
        "malformed",
    )
    add(
        "another_content_type_validly_signed",
        sign(parts[2], content_type=cose.CONTENT_TYPE_CAPABILITIES),
        "malformed",
    )
    forged = cbor.dumps({**body, "executor": other_peer})
    add(
        "forger_signing_as_itself",
        sign(forged, other),
        "executor_mismatch",
        {"expected_executor": base["expected"]["executor"]},
    )
    add("cose_trailing_byte", signed + b"\x00", "malformed")
    add("cose_truncated", signed[:-1], "malformed")
    add("cose_untagged", _assemble(parts, tag=False), "malformed")
    add("cose_unprotected_header_not_empty", with_parts(unprotected={4: b"x"}), "malformed")
    add("cose_short_signature", with_parts(signature=sig[:63]), "malformed")
    add(
        "cose_protected_header_in_another_key_order",
        with_parts(
            protected=cbor2.dumps(
                {4: executor_id.encode(), 3: cose.CONTENT_TYPE_RECEIPT, 1: -8}
            )
        ),
        "malformed",
    )
    add(
        "cose_payload_length_in_long_form",
        signed.replace(
            cbor2.dumps(parts[2]), b"\x5a" + len(parts[2]).to_bytes(4, "big") + parts[2], 1
        ),
        "malformed",
    )
    add(
        "body_version_1_validly_signed",
        sign(cbor.dumps({**body, "v": 1})),
        "unsupported_version",
    )
    add(
        "body_missing_field_validly_signed",
        sign(cbor.dumps({k: v for k, v in body.items() if k != "wall_time_us"})),
        "malformed",
    )
    add(
        "version_1_envelope",
        cbor.dumps({"v": 1, "body": parts[2], "sig": sig, "key": executor.verify_key.encode()}),
        "unsupported_version",
    )
    add("wrong_nonce_expected", signed, "nonce_mismatch", {"expected_nonce": "00" * 16})
    add("wrong_job_id_expected", signed, "job_id_mismatch", {"expected_job_id": "e" * 32})
    add("wrong_module_expected", signed, "hash_mismatch", {"expected_module_sha256": "0" * 64})
    add("other_stdout_given", signed, "hash_mismatch", {"stdout": b64(b"Hello, World?\n")})
    add("other_stderr_given", signed, "hash_mismatch", {"stderr": b64(b"x")})
    add(
        "an_output_file_not_in_the_receipt_given",
        signed,
        "hash_mismatch",
        {"outputs": [{"path": "/output/extra.txt", "content": b64(b"x")}]},
    )
    return vectors


def build() -> dict[str, Any]:
    executor = nacl.signing.SigningKey(EXECUTOR_SEED)
    other = nacl.signing.SigningKey(OTHER_SEED)
    requester = nacl.signing.SigningKey(REQUESTER_SEED)
    requester_id = peer_id_from_public_key(requester.verify_key.encode())
    valid = [valid_vector(case, executor, requester_id) for case in cases()]
    return {
        "description": " ".join(
            (__doc__ or "").split("\n\n")[i].replace("\n", " ") for i in (0, 2)
        ),
        "format": {
            "cose": "tagged COSE_Sign1: 18([protected, {}, payload, signature])",
            "protected": '{1: -8, 3: "application/vnd.plasm.receipt+cbor", 4: kid}, canonical',
            "kid": "UTF-8 bytes of the executor's peer ID (its Ed25519 key is inside)",
            "payload": "the receipt body, canonical CBOR (RFC 8949 core deterministic), v = 2",
            "signature": "Ed25519 over canonical CBOR ['Signature1', protected, h'', payload]",
            "byte_fields": "base64: cose, module, stdout, stderr, stdin, file contents; "
            "hex: hashes, nonces",
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
