"""Replaying a job: run it again from its verified receipt and compare the receipt bodies.

Shared by `plasmd replay` (plasm/commands/replay.py) and `POST /v1/receipts/replay`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plasm.errors import PlasmError

if TYPE_CHECKING:
    from plasm.protocol.receipt import Receipt
    from plasm.runtime.job import JobInput
    from plasm.runtime.sandbox import Sandbox

# Fields of a receipt body that say when, where and for whom a job ran, not what it did.
PER_RUN_FIELDS = frozenset(
    {"job_id", "nonce", "requester", "executor", "started_at_ms", "finished_at_ms", "wall_time_us"}
)


class ReplayError(PlasmError):
    """The module or input given is not the job's: there is nothing to compare."""


def replay(signed: Receipt, module: bytes, job_input: JobInput, sandbox: Sandbox
           ) -> list[dict[str, Any]]:  # fmt: skip
    """Run the job of verified receipt ``signed`` again in ``sandbox``; the differences of
    the new receipt body from the signed one (``compare``). ``ReplayError`` when ``module``
    or ``job_input`` is not the one the receipt names."""
    import hashlib

    import nacl.signing

    from plasm.protocol.identity import peer_id_from_public_key
    from plasm.protocol.receipt import build_receipt, receipt_body_to_json

    if hashlib.sha256(module).digest() != signed.module_sha256:
        raise ReplayError("this is not the module the receipt names (its sha256 differs)")
    if job_input.sha256() != signed.input_sha256:
        raise ReplayError(
            "the input given is not the job's (its sha256 differs from the receipt's "
            "input_sha256): give the same arguments, environment, stdin, input files, argv[0] "
            "and determinism settings as the job had"
        )
    outcome = sandbox.run(module, job_input, signed.limits)
    key = nacl.signing.SigningKey(bytes(32))  # the new body is compared, never signed
    here = build_receipt(
        job_id=signed.job_id, module_sha256=signed.module_sha256.hex(), job_input=job_input,
        limits=signed.limits, outcome=outcome, engine_name=sandbox.engine_name,
        engine_version=sandbox.engine_version,
        executor=peer_id_from_public_key(key.verify_key.encode()), requester=signed.requester,
        nonce=signed.nonce,
    )  # fmt: skip
    return compare(receipt_body_to_json(signed), receipt_body_to_json(here))


def compare(signed: dict[str, Any], replayed: dict[str, Any]) -> list[dict[str, Any]]:
    """Each field (but the per-run ones) where the replayed body differs from the signed one."""
    skip = set(PER_RUN_FIELDS)
    if not signed.get("fuel_exact", True):
        skip.add("fuel_consumed")
    return [
        {"field": name, "receipt": signed.get(name), "replay": replayed.get(name)}
        for name in sorted(set(signed) | set(replayed))
        if name not in skip and signed.get(name) != replayed.get(name)
    ]
