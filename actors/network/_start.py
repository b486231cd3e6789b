"""Starting the network actor, without importing trio and libp2p until it starts.

``start_network`` is the one way the node starts the network: it imports ``_actor``
(trio and libp2p, ~1.5 s) only when called, so importing ``plasm.actors.network`` for
its errors or messages stays cheap.
"""

from __future__ import annotations

from typing import Any

import pykka

from plasm.actors._mailbox import ask
from plasm.actors.messages import GetNetworkInfo, NetworkInfo


def start_network(timeout: float = 30.0, **kwargs: Any) -> tuple[pykka.ActorRef[Any], NetworkInfo]:
    """Start a ``NetworkActor`` (arguments as its constructor) and wait until it listens.

    Raises ``NetworkStartError`` (after stopping the actor) if the host cannot start.
    """
    from plasm.actors.network._actor import NetworkActor

    ref = NetworkActor.start(**kwargs)
    try:
        info: NetworkInfo = ask(ref, GetNetworkInfo(), timeout=timeout)
    except BaseException:
        ref.stop(block=True, timeout=10)
        raise
    return ref, info
