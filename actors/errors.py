"""Errors the actor layer raises to its callers (the shell maps them to exit codes and HTTP)."""

from __future__ import annotations

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
