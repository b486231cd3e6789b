"""Errors of the network actor (import-light: no trio, no libp2p).

Each is a ``NetworkError``; the shell catches that one class when networking fails.
"""

from __future__ import annotations

from plasm.actors.errors import ActorLayerError


class NetworkError(ActorLayerError):
    """Base of the errors raised by the network actor."""


class NetworkStartError(NetworkError):
    """The libp2p host could not start (bad listen address, port in use, start timed out).

    Fix the listen addresses in the config or on the command line, or free the port.
    """


class NetworkStoppedError(NetworkError):
    """The network thread is not running (never started, or already stopped)."""


class BlockingCallError(NetworkError):
    """A blocking call into the network was made from the network's own trio thread.

    It would wait for itself forever; from trio code, await the coroutine instead.
    """


class DialError(NetworkError):
    """A peer could not be reached (bad multiaddr, no address, connection refused).

    ``actual_peer`` is set when the address answered as another peer than the one dialed
    (a wrong ``/p2p/`` part); ``unreachable`` when nothing accepted the connection there.
    """

    def __init__(self, message: str, actual_peer: str | None = None, unreachable: bool = False):
        super().__init__(message)
        self.actual_peer = actual_peer
        self.unreachable = unreachable


class RecordError(NetworkError):
    """A DHT record was refused by the validator or could not be stored."""
