"""Errors the actor layer raises to its callers, and the one table of their codes.

``ERROR_CODES`` is the only mapping from these errors to what others see: the HTTP status and
code of the API's error body (plasm.api.routes) and the ``Error.code`` a peer gets when this
node refused its job (the negotiator). Every other error of the layer derives from
``ActorLayerError`` too (journal, signer, network), next to the code that raises it.
"""

from __future__ import annotations

from dataclasses import dataclass

from plasm.errors import PlasmError


class ActorLayerError(PlasmError):
    """Base of the errors raised by plasm.actors."""


class QueueFullError(ActorLayerError):
    """The ingress queue is at its configured length; nothing was accepted. Retry later."""


class ShuttingDownError(ActorLayerError):
    """The node is stopping and takes no new jobs."""


class LimitsExceededError(ActorLayerError):
    """A job asked for more than the node's maximum limits allow."""


class UnknownJobError(ActorLayerError):
    """No job with that id is known to this node."""


class UnknownModuleError(ActorLayerError):
    """A job named a module by sha256 that this node has not stored."""


class UnsupportedPlacementError(ActorLayerError):
    """A job asked to run on peers, and this node runs no peer-to-peer network."""


class ReuseRefusedError(ActorLayerError):
    """A job asked for reuse that it cannot have (determinism off: plasm.protocol.reuse)."""


class JournalError(ActorLayerError):
    """The journal could not read or write its SQLite file, or was asked something invalid."""


class JournalFullError(JournalError):
    """The disk (or quota) holding the journal is full: nothing more can be written."""


class NodeNotStartedError(ActorLayerError):
    """A Node method that needs running actors was called before ``Node.start()``."""


class BlobError(ActorLayerError):
    """A blob could not be stored or read (actors/blob_store.py)."""


class BlobNotFoundError(BlobError):
    """No blob has this hash here."""


class BlobTooLargeError(BlobError):
    """One blob is over ``blobs.max_blob_bytes``."""


class BlobStoreFullError(BlobError):
    """The blob store's budget (``blobs.max_bytes``) or the disk under it is full."""


class BlobHashError(BlobError):
    """The bytes written do not hash to the sha256 the writer was promised."""


class UnknownOutputError(ActorLayerError):
    """The job left no output file at that path."""


class NodeFeatureError(ActorLayerError):
    """A Node method needs a part this node was configured without (journal, network)."""


@dataclass(frozen=True, slots=True)
class ErrorCode:
    status: int  # HTTP status of the API's answer
    code: str  # "code" of the API's error body (docs/api.md)
    wire: str  # Error.code sent to a peer whose job this node refused (protocol.messages)


# Looked up along the exception's class hierarchy; an error not here is not a refusal the
# API or a peer is told about by code (the API answers 500, a peer gets "internal").
ERROR_CODES: dict[type[ActorLayerError], ErrorCode] = {
    QueueFullError: ErrorCode(429, "busy", "busy"),
    ShuttingDownError: ErrorCode(503, "shutting_down", "shutting_down"),
    LimitsExceededError: ErrorCode(400, "limits_exceeded", "limits_exceeded"),
    UnknownModuleError: ErrorCode(404, "unknown_module", "module_unavailable"),
    UnknownJobError: ErrorCode(404, "unknown_job", "internal"),
    UnsupportedPlacementError: ErrorCode(400, "unsupported_placement", "internal"),
    ReuseRefusedError: ErrorCode(400, "bad_manifest", "internal"),
    JournalFullError: ErrorCode(507, "disk_full", "disk_full"),
    BlobNotFoundError: ErrorCode(404, "unknown_blob", "internal"),
    BlobTooLargeError: ErrorCode(413, "blob_too_large", "limits_exceeded"),
    BlobStoreFullError: ErrorCode(507, "blob_store_full", "disk_full"),
    BlobHashError: ErrorCode(400, "hash_mismatch", "internal"),
    UnknownOutputError: ErrorCode(404, "unknown_output", "internal"),
}


def error_code(exc: BaseException) -> ErrorCode | None:
    """The codes of ``exc`` (its nearest class in ``ERROR_CODES``), or None."""
    for cls in type(exc).__mro__:
        found = ERROR_CODES.get(cls)
        if found is not None:
            return found
    return None


def wire_code(exc: BaseException) -> str:
    """The ``Error.code`` a requester gets when the ingress refused its job with ``exc``."""
    found = error_code(exc)
    return found.wire if found is not None else "internal"
