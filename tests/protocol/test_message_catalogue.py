"""The message catalogue: every message crosses the wire intact, nothing else does."""

from __future__ import annotations

import dataclasses
import random

import pytest

from plasm.protocol import cbor
from plasm.protocol.blob_transfer import BlobChunk, BlobRequest
from plasm.protocol.errors import DecodeError, UnknownMessageError
from plasm.protocol.messages import (
    MESSAGE_TYPES,
    BlobRef,
    Capabilities,
    Error,
    ExecuteJob,
    FileRef,
    JobExecuted,
    JobOffer,
    JobRequest,
    JobResponse,
    JobResult,
    Message,
    ModuleData,
    ModuleRequest,
    decode_message,
    encode_message,
    roundtrip,
    wire_types,
)
from plasm.protocol.p2p_messages import (
    CancelAnswer,
    CancelRequest,
    CapabilitiesRequest,
    LogConsistency,
    LogConsistencyRequest,
    SignedCapabilities,
)
from plasm.protocol.receipt import Receipt
from plasm.protocol.transparency import LogProof
from plasm.runtime.job import JobInput, Limits, Outcome

JOB_ID = "018c2b6f3a405e1f0c9d8b7a6f5e4d3c"
NONCE = b"\x01" * 16
MODULE = b"\x00asm\x01\x00\x00\x00"


@pytest.fixture
def samples(
    receipt: Receipt,
    envelope: bytes,
    outcome: Outcome,
    job_input: JobInput,
    limits: Limits,
    module_sha256: str,
    executor_id: str,
    requester_id: str,
) -> list[Message]:
    return [
        ExecuteJob(JOB_ID, MODULE, module_sha256, job_input, limits, requester_id, NONCE),
        ExecuteJob(JOB_ID, None, module_sha256, JobInput(), Limits(), requester_id, NONCE),
        JobExecuted(JOB_ID, outcome, module_sha256, job_input, limits, requester_id, NONCE),
        Capabilities(
            peer_id=executor_id,
            arch="x86_64",
            os="linux",
            cpus=2,
            memory_bytes=2**32,
            runtimes=("wasi_snapshot_preview1",),
            engine_name="wasmtime",
            engine_version="50.0.1",
            max_limits=limits,
            free_slots=1,
            addresses=("/ip4/127.0.0.1/tcp/4001",),
            expires_at_ms=1_700_000_060_000,
        ),
        JobOffer(JOB_ID, module_sha256, len(MODULE), limits, 5, 1_700_000_010_000, NONCE),
        JobResponse(JOB_ID, accepted=True, reason=None, need_module=True),
        JobResponse(JOB_ID, accepted=False, reason="busy", need_module=False),
        JobRequest(JOB_ID, None, module_sha256, job_input, limits, NONCE),
        JobRequest(JOB_ID, MODULE, module_sha256, job_input, limits, NONCE),
        JobRequest(
            JOB_ID,
            None,
            module_sha256,
            JobInput(args=("x",)),
            limits,
            NONCE,
            module_size=21 * 2**20,
            stdin_ref=BlobRef(module_sha256, 2 * 2**20),
            file_refs=(FileRef("/input/big.bin", BlobRef(module_sha256, 17 * 2**20)),),
        ),
        JobOffer(JOB_ID, module_sha256, 2**25, limits, 5, 1, NONCE, 17 * 2**20, 17 * 2**20),
        JobResult(JOB_ID, envelope, outcome.stdout, outcome.stderr),
        JobResult(
            JOB_ID,
            envelope,
            b"",
            b"",
            output_files=(("/output/a", b"small"),),
            output_refs=(FileRef("/output/b", BlobRef(module_sha256, 2**24)),),
        ),
        JobResult(
            JOB_ID,
            envelope,
            b"",
            b"",
            log=LogProof(3, 7, bytes(32), b"head", (bytes(32), bytes(range(32)))),
        ),
        BlobRequest(module_sha256, 0, 2**26),
        BlobChunk(module_sha256, 2**20, b"\x00" * 1024),
        ModuleRequest(module_sha256),
        ModuleData(module_sha256, MODULE),
        Error("not_found", "no module with that hash; send it with the job"),
    ]


def test_samples_cover_every_message_class_of_the_catalogue(samples: list[Message]) -> None:
    # the actors' internal messages (plasm.actors.messages) are tested with their actors
    modules = ("plasm.protocol.messages", "plasm.protocol.blob_transfer")
    catalogue = {c for c in MESSAGE_TYPES.values() if c.__module__ in modules}
    assert {type(msg) for msg in samples} == catalogue


WIRE = {
    Capabilities,
    JobOffer,
    JobResponse,
    JobRequest,
    JobResult,
    ModuleRequest,
    ModuleData,
    Error,
    CapabilitiesRequest,
    SignedCapabilities,
    BlobRequest,
    BlobChunk,
    LogConsistencyRequest,
    LogConsistency,
    CancelRequest,
    CancelAnswer,
}
# Not sent by peers, yet the protocol's: the job and its run, as the negotiation state
# machine and receipts know them (registered for the codec, refused on the wire).
PROTOCOL_VALUES = {ExecuteJob, JobExecuted}


def test_the_wire_catalogue_is_the_peer_protocols_messages_and_nothing_else() -> None:
    assert wire_types() == WIRE


def test_protocol_defines_no_actor_internal_message() -> None:
    import plasm.actors.messages  # noqa: F401 - registers the actors' messages too

    in_protocol = {c for c in MESSAGE_TYPES.values() if c.__module__.startswith("plasm.protocol")}
    assert in_protocol == WIRE | PROTOCOL_VALUES
    internal = {c for c in MESSAGE_TYPES.values() if c.__module__ == "plasm.actors.messages"}
    assert len(internal) > 40  # the catalogue the actors use is really registered


def test_decode_refuses_every_message_type_that_is_not_on_the_wire() -> None:
    import plasm.actors.messages  # noqa: F401

    refused = [c for c in MESSAGE_TYPES.values() if c not in WIRE]
    assert refused
    for cls in refused:
        frame = cbor.dumps({"t": cls.TYPE, "v": cls.VERSION, "b": {}})
        with pytest.raises(UnknownMessageError):
            decode_message(frame)
    for cls in WIRE:  # the same frame with a wire type gets as far as its fields
        frame = cbor.dumps({"t": cls.TYPE, "v": cls.VERSION, "b": {}})
        try:
            assert isinstance(decode_message(frame), cls)  # a message with no fields
        except UnknownMessageError:
            pytest.fail(f"{cls.__name__} was refused as unknown")
        except DecodeError:
            pass  # its fields are missing: refused for that, as it should be


def test_every_message_round_trips_to_an_equal_message(samples: list[Message]) -> None:
    for msg in samples:
        assert roundtrip(msg) == msg, type(msg).__name__


def test_messages_are_frozen_and_slotted(samples: list[Message]) -> None:
    for msg in samples:
        assert not hasattr(msg, "__dict__"), type(msg).__name__
        first_field = dataclasses.fields(msg)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(msg, first_field, "x")


def test_encoding_is_the_documented_envelope(samples: list[Message]) -> None:
    raw = cbor.loads(encode_message(ModuleRequest("ab" * 32)))
    assert raw == {"t": "module_request", "v": 1, "b": {"module_sha256": "ab" * 32}}


def test_encoding_is_deterministic(samples: list[Message]) -> None:
    for msg in samples:
        assert encode_message(msg) == encode_message(roundtrip(msg))


def test_decode_names_an_unknown_message_type() -> None:
    data = cbor.dumps({"t": "launch_missiles", "v": 1, "b": {}})
    with pytest.raises(UnknownMessageError, match="launch_missiles") as info:
        decode_message(data)
    assert info.value.type_tag == "launch_missiles"


def test_decode_names_an_unknown_version() -> None:
    data = cbor.dumps({"t": "module_request", "v": 2, "b": {"module_sha256": "ab" * 32}})
    with pytest.raises(UnknownMessageError, match="version 2"):
        decode_message(data)


def test_decode_does_not_take_true_for_version_1() -> None:
    data = cbor.dumps({"t": "module_request", "v": True, "b": {"module_sha256": "ab" * 32}})
    with pytest.raises(UnknownMessageError):
        decode_message(data)


def test_unknown_message_error_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_message(cbor.dumps({"t": ["unhashable"], "v": 1, "b": {}}))


@pytest.mark.parametrize(
    "raw",
    [[1, 2], {"t": "error", "v": 1}, {"t": "error", "v": 1, "b": {}, "x": 1}],
    ids=["not-a-map", "missing-body", "extra-key"],
)
def test_decode_rejects_a_malformed_envelope(raw: object) -> None:
    with pytest.raises(DecodeError):
        decode_message(cbor.dumps(raw))


def _job_result_body(**changes: object) -> bytes:
    body: dict[str, object] = {
        "job_id": JOB_ID,
        "envelope": b"e",
        "stdout": b"o",
        "stderr": b"",
        "output_files": [],
        "output_refs": [],
        "log": None,
    }
    body.update(changes)
    return cbor.dumps({"t": "job_result", "v": 3, "b": body})


@pytest.mark.parametrize(
    ("field", "value"),
    [("stdout", "text not bytes"), ("stdout", 1), ("job_id", 7), ("stderr", None)],
)
def test_decode_rejects_a_field_of_the_wrong_type(field: str, value: object) -> None:
    with pytest.raises(DecodeError, match=field):
        decode_message(_job_result_body(**{field: value}))


def test_decode_rejects_true_where_an_int_belongs(limits: Limits) -> None:
    offer = JobOffer(JOB_ID, "ab" * 32, 8, limits, 0, 1, NONCE)
    raw = cbor.loads(encode_message(offer))
    raw["b"]["module_size"] = True
    with pytest.raises(DecodeError, match="module_size"):
        decode_message(cbor.dumps(raw))


def test_decode_rejects_a_nested_field_of_the_wrong_type(limits: Limits) -> None:
    offer = JobOffer(JOB_ID, "ab" * 32, 8, limits, 0, 1, NONCE)
    raw = cbor.loads(encode_message(offer))
    raw["b"]["limits"]["fuel"] = "lots"
    with pytest.raises(DecodeError, match=r"limits\.fuel"):
        decode_message(cbor.dumps(raw))


def test_decode_rejects_a_missing_field() -> None:
    raw = cbor.loads(_job_result_body())
    del raw["b"]["stderr"]
    with pytest.raises(DecodeError, match="stderr"):
        decode_message(cbor.dumps(raw))


def test_decode_rejects_an_unexpected_field() -> None:
    with pytest.raises(DecodeError, match="sneaky"):
        decode_message(_job_result_body(sneaky=1))


def test_decode_rejects_values_the_constructor_refuses(limits: Limits) -> None:
    with pytest.raises(DecodeError, match="job_id"):
        decode_message(_job_result_body(job_id="NOT-HEX"))
    offer = cbor.loads(encode_message(JobOffer(JOB_ID, "ab" * 32, 8, limits, 0, 1, NONCE)))
    offer["b"]["limits"]["fuel"] = 0
    with pytest.raises(DecodeError, match="fuel"):
        decode_message(cbor.dumps(offer))


def test_decode_rejects_an_unknown_outcome_kind(outcome: Outcome, job_input: JobInput) -> None:
    msg = JobExecuted(JOB_ID, outcome, "ab" * 32, job_input, Limits(), "me", NONCE)
    raw = cbor.loads(encode_message(msg))
    raw["b"]["outcome"]["kind"] = "exploded"
    with pytest.raises(DecodeError, match="exploded"):
        decode_message(cbor.dumps(raw), allowed=frozenset({JobExecuted}))


def test_decode_rejects_an_unsorted_env_from_a_peer(job_input: JobInput) -> None:
    request = JobRequest(JOB_ID, None, "ab" * 32, job_input, Limits(), NONCE)
    raw = cbor.loads(encode_message(request))
    raw["b"]["job_input"]["env"] = [["Z", "1"], ["A", "2"]]
    with pytest.raises(DecodeError, match="sorted"):
        decode_message(cbor.dumps(raw))


def test_decode_respects_the_size_cap() -> None:
    with pytest.raises(DecodeError, match="cap"):
        decode_message(encode_message(ModuleData("ab" * 32, b"x" * 1000)), max_size=500)


def test_job_response_rejection_needs_a_known_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        JobResponse(JOB_ID, accepted=False, reason="because", need_module=False)
    with pytest.raises(ValueError, match="reason"):
        JobResponse(JOB_ID, accepted=False, reason=None, need_module=False)


def test_job_response_acceptance_carries_no_reason() -> None:
    with pytest.raises(ValueError, match="no reason"):
        JobResponse(JOB_ID, accepted=True, reason="busy", need_module=False)


def test_messages_refuse_malformed_identifiers(job_input: JobInput) -> None:
    with pytest.raises(ValueError, match="job_id"):
        JobResult("job-1", b"", b"", b"")
    with pytest.raises(ValueError, match="module_sha256"):
        ModuleRequest("AB" * 32)
    with pytest.raises(ValueError, match="nonce"):
        JobRequest(JOB_ID, None, "ab" * 32, job_input, Limits(), b"short")


def test_capabilities_refuse_a_peer_id_without_an_ed25519_key(limits: Limits) -> None:
    with pytest.raises(ValueError, match="peer_id"):
        Capabilities(
            "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
            *("x86_64", "linux", 1, 1, (), "wasmtime", "50", limits, 0, (), 0),
        )


def test_encode_refuses_an_unregistered_class() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Stowaway(Message):
        TYPE = "error"
        code: str
        message: str

    with pytest.raises(ValueError, match="not a registered"):
        encode_message(Stowaway("a", "b"))


def test_roundtrip_exposes_a_message_that_cannot_cross_the_wire() -> None:
    text: bytes = "text where bytes belong"  # type: ignore[assignment]
    smuggled = JobResult(JOB_ID, b"envelope", text, b"")
    with pytest.raises(DecodeError, match="stdout"):
        roundtrip(smuggled)


@pytest.mark.timeout(60)
def test_mutated_messages_decode_or_raise_decode_error_only(samples: list[Message]) -> None:
    rng = random.Random(7)
    for msg in samples:
        encoded = encode_message(msg)
        for _ in range(300):
            data = bytearray(encoded)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                decoded = decode_message(bytes(data))
            except DecodeError:
                continue
            assert roundtrip(decoded) == decoded  # whatever is accepted is a valid message
