"""The receipt transparency log's signed objects and proofs (sans-IO).

Every receipt a node signs is a leaf of its append-only RFC 9162 Merkle tree
(``plasm.protocol.merkle``: leaf hash ``SHA-256(0x00 || COSE bytes)``). The node signs *tree
heads*: a COSE_Sign1 (``plasm.protocol.cose``) of content type
``application/vnd.plasm.tree-head+cbor`` whose kid is the node's peer ID and whose payload is
the canonical CBOR map

    {"node": <peer ID text>, "root": <32 bytes>, "size": <uint>, "timestamp_ms": <uint>}

(keys in canonical order; ``node`` must equal the kid). A job result carries a *log proof*
that its receipt is in the tree of a signed head::

    "log": {"index": I, "size": N, "root": <hex>, "head": <base64 COSE>, "path": [<hex>, ...]}

and `verify_log_proof` checks it offline: the head is signed by the receipt's executor, says
``size`` N and ``root``, and ``path`` is the RFC 9162 inclusion proof of the receipt's leaf
hash at ``index`` in that tree. Consistency between two heads of one node is RFC 9162's
consistency proof (``merkle.verify_consistency``), fetched from the node over
``/plasm/log/1.0.0`` or ``GET /v1/log/consistency``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nacl.signing

from plasm.protocol import cbor, cose, merkle
from plasm.protocol.errors import DecodeError, ProtocolError
from plasm.protocol.identity import peer_id_from_public_key

MAX_HEAD_SIZE = 4096
MAX_PATH_LENGTH = 64  # a tree of 2**64 leaves has paths of 64 hashes at most
_HEAD_KEYS = frozenset({"node", "root", "size", "timestamp_ms"})


class LogError(ProtocolError):
    """A tree head or log proof failed verification; ``reason`` is a stable code:
    ``malformed``, ``bad_signature``, ``wrong_node``, ``not_included``, ``inconsistent``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


@dataclass(frozen=True, slots=True)
class TreeHead:
    """What a signed tree head says: ``node``'s log had ``size`` leaves with this root."""

    size: int
    root: bytes
    timestamp_ms: int
    node: str

    def encode(self) -> bytes:
        return cbor.dumps(
            {
                "node": self.node,
                "root": self.root,
                "size": self.size,
                "timestamp_ms": self.timestamp_ms,
            }
        )


@dataclass(frozen=True, slots=True)
class LogProof:
    """That the receipt is leaf ``index`` of the tree of ``size`` leaves that ``head`` signs.

    Travels in a peer's ``JobResult`` (this dataclass, CBOR) and in the job-result JSON
    (`to_json`)."""

    index: int
    size: int
    root: bytes
    head: bytes
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "root": self.root.hex(),
            "head": base64.b64encode(self.head).decode("ascii"),
            "path": [step.hex() for step in self.path],
        }

    @classmethod
    def from_json(cls, obj: Any) -> LogProof:
        """Parse the JSON form strictly; ``LogError("malformed")`` otherwise."""
        if not isinstance(obj, dict) or set(obj) != {"index", "size", "root", "head", "path"}:
            raise LogError(
                "malformed", 'a log proof is {"index", "size", "root", "head", "path"}'
            )
        index, size, path = obj["index"], obj["size"], obj["path"]
        if type(index) is not int or type(size) is not int or not isinstance(path, list):
            raise LogError("malformed", "index and size must be integers, path a list")
        if len(path) > MAX_PATH_LENGTH:
            raise LogError("malformed", f"a path has at most {MAX_PATH_LENGTH} hashes")
        try:
            head = base64.b64decode(obj["head"], validate=True)
            root = _hash_from_hex(obj["root"])
            steps = tuple(_hash_from_hex(step) for step in path)
        except (TypeError, ValueError, binascii.Error) as exc:
            raise LogError("malformed", f"a log proof field is not valid: {exc}") from exc
        return cls(index, size, root, head, steps)


def sign_tree_head(head: TreeHead, signing_key: nacl.signing.SigningKey) -> bytes:
    """The COSE_Sign1 of ``head``; the key must be ``head.node``'s."""
    key_peer_id = peer_id_from_public_key(signing_key.verify_key.encode())
    if key_peer_id != head.node:
        raise ValueError(f"refusing to sign a tree head of {head.node} with {key_peer_id}'s key")
    return cose.sign1(head.encode(), cose.CONTENT_TYPE_TREE_HEAD, head.node, signing_key)


def head_signer(signing_key: nacl.signing.SigningKey) -> Callable[[TreeHead], bytes]:
    """A function that signs tree heads of ``signing_key``'s node, and nothing else (what
    the journal is given: it never sees the key as such)."""
    node = peer_id_from_public_key(signing_key.verify_key.encode())

    def sign(head: TreeHead) -> bytes:
        if head.node != node:
            raise ValueError(f"refusing to sign a tree head of {head.node} with {node}'s key")
        return cose.sign1(head.encode(), cose.CONTENT_TYPE_TREE_HEAD, node, signing_key)

    return sign


def verify_tree_head(data: bytes, *, node: str | None = None) -> TreeHead:
    """The head in ``data`` if its node signed it (and, given ``node``, it is that node's);
    ``LogError`` otherwise. The payload must be the canonical encoding of itself."""
    try:
        signed = cose.decode_sign1(
            data, max_size=MAX_HEAD_SIZE, content_type=cose.CONTENT_TYPE_TREE_HEAD
        )
        body = cbor.loads(signed.payload, max_size=MAX_HEAD_SIZE)
        valid = cose.verify_sign1(signed)
    except DecodeError as exc:
        raise LogError("malformed", f"the tree head cannot be decoded: {exc}") from exc
    if not valid:
        raise LogError("bad_signature", "the tree head's signature does not match it")
    head = _head_from_body(body)
    if head.encode() != signed.payload:
        raise LogError("malformed", "the tree head is not in canonical CBOR")
    if head.node != signed.kid:
        raise LogError("wrong_node", f"the head describes {head.node} but {signed.kid} signed it")
    if node is not None and head.node != node:
        raise LogError("wrong_node", f"the head is {head.node}'s log, not {node}'s")
    return head


def verify_log_proof(envelope: bytes, proof: LogProof, executor: str) -> TreeHead:
    """Check that receipt ``envelope`` (COSE bytes) is in ``executor``'s signed log; the head.

    ``LogError`` when the head is not ``executor``'s, does not say ``proof``'s size and root,
    or the path does not lead from the receipt's leaf to that root."""
    head = verify_tree_head(proof.head, node=executor)
    if head.size != proof.size or head.root != proof.root:
        raise LogError(
            "malformed",
            f"the proof says size {proof.size} root {proof.root.hex()}, its signed head "
            f"size {head.size} root {head.root.hex()}",
        )
    if not merkle.verify_inclusion(
        proof.index, proof.size, merkle.leaf_hash(envelope), proof.path, proof.root
    ):
        raise LogError(
            "not_included",
            f"the inclusion path does not put this receipt at index {proof.index} of the "
            f"{proof.size}-leaf tree its head signs",
        )
    return head


def check_consistency(older: TreeHead, newer: TreeHead, path: tuple[bytes, ...]) -> None:
    """``newer`` extends ``older`` (two heads of one node, either order of size); ``LogError``
    ``inconsistent`` when the proof does not show it."""
    first, second = (older, newer) if older.size <= newer.size else (newer, older)
    if not merkle.verify_consistency(first.size, second.size, first.root, second.root, path):
        raise LogError(
            "inconsistent",
            f"{first.node}'s log of {second.size} leaves (root {second.root.hex()}) does not "
            f"extend its log of {first.size} (root {first.root.hex()}): it rewrote its history",
        )


def _head_from_body(body: Any) -> TreeHead:
    if not isinstance(body, dict) or set(body) != _HEAD_KEYS:
        raise LogError("malformed", 'a tree head is {"node", "root", "size", "timestamp_ms"}')
    size, root, stamp, node = body["size"], body["root"], body["timestamp_ms"], body["node"]
    if not (
        type(size) is int
        and size >= 0
        and type(stamp) is int
        and stamp >= 0
        and isinstance(root, bytes)
        and len(root) == merkle.HASH_SIZE
        and isinstance(node, str)
    ):
        raise LogError(
            "malformed", "size and timestamp_ms are unsigned, root 32 bytes, node a peer ID"
        )
    return TreeHead(size, root, stamp, node)


def _hash_from_hex(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("a hash is hex text")
    digest = bytes.fromhex(text)
    if len(digest) != merkle.HASH_SIZE or digest.hex() != text:
        raise ValueError(f"a hash is {merkle.HASH_SIZE} bytes in lowercase hex")
    return digest
