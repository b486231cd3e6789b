"""The network actor: the node's libp2p host, behind catalogue messages.

The public face is this module; everything else in the package is private and may change.
``start_network`` starts the actor and waits until it listens; the messages below are
what other actors send it (``PeerRequest``, ``Dial``, ``Ping``, ``Provide``,
``FindProviders``, ``PutRecord``, ``GetRecord``, ``GetNetworkInfo``, ``FetchBlob``) and
what it answers or tells them (the rest). Their definitions live in
``plasm.actors.messages``; they are re-exported here so a caller of the network needs
one import. A handler may answer an ``InboundRequest`` with a
``plasm.actors._future.Future`` (a job's result, later), which wakes the stream's trio
task through its done callback, without a thread. Every error is a ``NetworkError``.

Importing this package loads neither trio nor libp2p; ``start_network`` does.

Inside: ``_actor`` (the pykka actor), ``_runner`` (its trio thread), ``_node`` (the host and
what runs around it), ``_host`` (building the py-libp2p host), ``_streams`` (one frame each
way on a stream, with pipelined multistream-select from ``plasm.protocol.multistream``),
``_inbound`` (serving inbound streams), ``_dht``, ``_mdns``, ``_errors``.
"""

from plasm.actors.messages import (
    BlobFetched,
    BlobFetchFailed,
    ConnectedPeer,
    Dial,
    Dialed,
    FetchBlob,
    FindProviders,
    GetNetworkInfo,
    GetRecord,
    InboundRequest,
    NetworkInfo,
    PeerEvent,
    PeerFailure,
    PeerRequest,
    PeerResponse,
    Ping,
    Pong,
    Provide,
    ProviderInfo,
    Providers,
    PutRecord,
    Record,
)
from plasm.actors.network._errors import (
    BlockingCallError,
    DialError,
    NetworkError,
    NetworkStartError,
    NetworkStoppedError,
    RecordError,
)
from plasm.actors.network._start import start_network

__all__ = [
    "BlobFetchFailed",
    "BlobFetched",
    "BlockingCallError",
    "ConnectedPeer",
    "Dial",
    "DialError",
    "Dialed",
    "FetchBlob",
    "FindProviders",
    "GetNetworkInfo",
    "GetRecord",
    "InboundRequest",
    "NetworkError",
    "NetworkInfo",
    "NetworkStartError",
    "NetworkStoppedError",
    "PeerEvent",
    "PeerFailure",
    "PeerRequest",
    "PeerResponse",
    "Ping",
    "Pong",
    "Provide",
    "ProviderInfo",
    "Providers",
    "PutRecord",
    "Record",
    "RecordError",
    "start_network",
]
