"""Every actor-layer error derives from ActorLayerError, and one table gives their codes."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from plasm.actors.errors import (
    ActorLayerError,
    LimitsExceededError,
    NodeFeatureError,
    NodeNotStartedError,
    QueueFullError,
    ShuttingDownError,
    UnknownJobError,
    UnknownModuleError,
    UnsupportedPlacementError,
    error_code,
    wire_code,
)
from plasm.actors.journal_store import DuplicateJobError, JournalError
from plasm.actors.network import NetworkError
from plasm.actors.node import Node, NodeSettings
from plasm.actors.signer import SignerError


def test_every_error_of_the_layer_derives_from_its_base() -> None:
    for cls in (JournalError, DuplicateJobError, SignerError, NetworkError, NodeFeatureError):
        assert issubclass(cls, ActorLayerError), cls


def test_the_queue_full_refusal_has_one_code_for_the_api_and_for_peers() -> None:
    code = error_code(QueueFullError("full"))
    assert code is not None and (code.status, code.code, code.wire) == (429, "busy", "busy")


@pytest.mark.parametrize(
    ("error", "status", "api", "wire"),
    [
        (ShuttingDownError("x"), 503, "shutting_down", "shutting_down"),
        (LimitsExceededError("x"), 400, "limits_exceeded", "limits_exceeded"),
        (UnknownModuleError("x"), 404, "unknown_module", "module_unavailable"),
        (UnknownJobError("x"), 404, "unknown_job", "internal"),
        (UnsupportedPlacementError("x"), 400, "unsupported_placement", "internal"),
    ],
)
def test_each_refusal_maps_to_its_documented_codes(
    error: ActorLayerError, status: int, api: str, wire: str
) -> None:
    code = error_code(error)
    assert code is not None and (code.status, code.code, code.wire) == (status, api, wire)
    assert wire_code(error) == wire


def test_an_error_outside_the_table_has_no_api_code_and_is_internal_to_peers() -> None:
    assert error_code(JournalError("disk full")) is None
    assert error_code(ValueError("bug")) is None
    assert wire_code(ValueError("bug")) == "internal"


def test_a_node_used_before_start_says_so() -> None:
    node = Node(SigningKey(bytes(32)), NodeSettings())
    with pytest.raises(NodeNotStartedError, match=r"call Node\.start\(\) first"):
        node.stats()
    with pytest.raises(NodeFeatureError, match="journal_path"):
        _ = node.journal
    with pytest.raises(NodeFeatureError, match="peer-to-peer network"):
        node.network_info()
