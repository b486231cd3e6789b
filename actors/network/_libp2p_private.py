"""What the network relies on in py-libp2p beyond its ``libp2p.abc`` interfaces, checked.

The pending-connection bound (``_pending``) needs py-libp2p to keep three things as 0.8.1
has them: ``libp2p.transport.tcp.tcp.TCP.create_listener(handler)`` builds a
``TCPListener(handler)`` that calls ``handler`` once per accepted socket, with a stream
that has ``get_remote_address()``; the muxed connection a ``connected`` notifee receives
(``Yamux``) has ``get_remote_address()`` too (it is not on ``IMuxedConn``); and
``ConnectionConfig.inbound_upgrade_timeout`` bounds the whole inbound handshake. libp2p is
pinned ``==0.8.1``; ``require()`` (called by ``build_host``) raises ``NetworkStartError``
naming what is missing on another version, instead of a node that silently loses the
bound. tests/network/test_pending_connections.py checks what is relied on.
"""

from __future__ import annotations

import importlib.metadata
import inspect

from libp2p.network.config import ConnectionConfig
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.transport.tcp.tcp import TCP, TCPListener

from plasm.actors.network._errors import NetworkStartError

SUPPORTED = "0.8.1"
try:
    VERSION = importlib.metadata.version("libp2p")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored copy
    VERSION = "(unknown version)"


def problems() -> list[str]:
    """What of the relied-on API this libp2p lacks (empty when all is there)."""
    found = []
    if list(inspect.signature(TCP.create_listener).parameters) != ["self", "handler_function"]:
        found.append("TCP.create_listener(handler_function)")
    if list(inspect.signature(TCPListener.__init__).parameters) != ["self", "handler_function"]:
        found.append("TCPListener(handler_function)")
    if not callable(getattr(Yamux, "get_remote_address", None)):
        found.append("Yamux.get_remote_address()")
    if "inbound_upgrade_timeout" not in getattr(ConnectionConfig, "__dataclass_fields__", {}):
        found.append("ConnectionConfig.inbound_upgrade_timeout")
    return found


def require() -> None:
    missing = problems()
    if missing:
        raise NetworkStartError(
            f"libp2p {VERSION} no longer has {', '.join(missing)}; plasm supports libp2p "
            f"{SUPPORTED} (pip install 'libp2p=={SUPPORTED}')"
        )
