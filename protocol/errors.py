"""Errors of the sans-IO protocol layer.

A ``DecodeError`` (and its subclasses) means bytes from somewhere else were not acceptable:
the peer or the file is at fault. A ``ValueError`` raised while *building* a message or a
CBOR value means our own code tried to produce something the protocol does not allow.
"""

from __future__ import annotations

from plasm.errors import PlasmError


class ProtocolError(PlasmError):
    """Base of every error raised by ``plasm.protocol``."""


class DecodeError(ProtocolError):
    """Bytes were not acceptable: malformed CBOR, trailing bytes, duplicate map keys, too
    deep, too large, a forbidden type (float, tag, non-text key) or a wrong field type."""


class UnknownMessageError(DecodeError):
    """A well-formed message envelope named a type or version this node does not know."""

    def __init__(self, type_tag: object, version: object) -> None:
        super().__init__(
            f"unknown message type {type_tag!r} version {version!r}; "
            "the peer speaks a protocol this node does not support (upgrade one of them)"
        )
        self.type_tag = type_tag
        self.version = version


class DuplicateMessageTypeError(ProtocolError):
    """Two message classes claim the same ``(TYPE, VERSION)``: a programming error in
    plasm.protocol; give the new class its own TYPE or a higher VERSION."""


class FrameError(ProtocolError):
    """A length-prefixed frame was refused (too large, empty, or the stream is unusable)."""


class PeerIdError(ProtocolError):
    """A peer ID string is not a base58btc identity multihash of an Ed25519 public key."""


class ReceiptError(ProtocolError):
    """A receipt envelope failed verification; ``reason`` is a stable machine-readable code
    (see ``plasm.protocol.receipt.REASONS``), the message says what was wrong."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class CapabilitiesError(ProtocolError):
    """A signed capabilities record failed verification; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class ManifestError(ProtocolError):
    """A job manifest was refused; ``path`` is the JSON path of the offending field
    (``$`` for the whole document, ``$.limits.fuel``, ``$.args[2]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"invalid manifest at {path}: {message}")
        self.path = path
        self.detail = message


class MultistreamError(DecodeError):
    """A peer's multistream-select bytes were refused: a length prefix over two bytes, a
    message over ``plasm.protocol.multistream.MAX_LINE``, no closing newline, or an answer
    other than the one the dialer expects. The stream's negotiation is lost: reset it."""


class ProtocolUnsupported(ProtocolError):
    """The listener answered ``na``: it speaks multistream-select but has no handler for
    the protocol proposed. Unlike a ``MultistreamError`` the peer did nothing wrong."""
