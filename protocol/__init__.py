"""Sans-IO protocol layer: messages and their CBOR codec, framing, receipts, capability
records, manifests and peer IDs. Bytes in, values out; values in, bytes out. Nothing here
opens a socket, starts a thread or imports pykka, trio, libp2p or wasmtime
(``tests/test_layers.py`` checks).
"""

from plasm.protocol.capabilities import sign_capabilities, verify_capabilities
from plasm.protocol.errors import (
    CapabilitiesError,
    DecodeError,
    FrameError,
    ManifestError,
    PeerIdError,
    ProtocolError,
    ReceiptError,
    UnknownMessageError,
)
from plasm.protocol.framing import FrameDecoder, encode_frame
from plasm.protocol.identity import peer_id_from_public_key, public_key_from_peer_id
from plasm.protocol.manifest import Manifest, parse_manifest
from plasm.protocol.messages import (
    Capabilities,
    Error,
    ExecuteJob,
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
)
from plasm.protocol.receipt import (
    Receipt,
    build_receipt,
    envelope_from_json,
    input_sha256,
    receipt_to_json,
    sign_receipt,
    verify_envelope,
)
from plasm.protocol.result import job_result_to_json

__all__ = [
    "Capabilities",
    "CapabilitiesError",
    "DecodeError",
    "Error",
    "ExecuteJob",
    "FrameDecoder",
    "FrameError",
    "JobExecuted",
    "JobOffer",
    "JobRequest",
    "JobResponse",
    "JobResult",
    "Manifest",
    "ManifestError",
    "Message",
    "ModuleData",
    "ModuleRequest",
    "PeerIdError",
    "ProtocolError",
    "Receipt",
    "ReceiptError",
    "UnknownMessageError",
    "build_receipt",
    "decode_message",
    "encode_frame",
    "encode_message",
    "envelope_from_json",
    "input_sha256",
    "job_result_to_json",
    "parse_manifest",
    "peer_id_from_public_key",
    "public_key_from_peer_id",
    "receipt_to_json",
    "roundtrip",
    "sign_capabilities",
    "sign_receipt",
    "verify_capabilities",
    "verify_envelope",
]
