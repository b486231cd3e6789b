"""Helpers for tests that form small clusters of real `plasmd run` processes on loopback.

The daemons come from `tests.conftest.running_daemons` (stopped by PID at teardown); these
helpers write their configs, read their peer IDs, and wait for them to know each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import Daemon

FORM_TIMEOUT_S = 60.0


def write_config(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def peer_id_of(daemon: Daemon) -> str:
    with daemon.client() as client:
        return str(client.node()["peer_id"])


def seed_address(daemon: Daemon) -> str:
    """The daemon's first full multiaddr (ending in /p2p/<id>), for --bootstrap."""
    with daemon.client() as client:
        return str(client.node()["addresses"][0])


def verified_peers(daemon: Daemon) -> set[str]:
    """Peers whose signed capability record this daemon has verified."""
    with daemon.client() as client:
        return {peer["peer_id"] for peer in client.peers() if peer.get("capabilities")}


@dataclass
class Pair:
    """An executor E (the seed) and a requester R that bootstraps from it and has verified
    E's capability record."""

    executor: Daemon
    requester: Daemon
    executor_id: str
    requester_id: str


def start_pair(make: Callable[..., Daemon], requester_config: Path | None = None) -> Pair:
    """E and R from a `running_daemons` maker; R with `requester_config` when given."""
    executor = make(network=True)
    requester = make(None, "--bootstrap", seed_address(executor), network=True,
                     config=requester_config)
    pair = Pair(executor, requester, peer_id_of(executor), peer_id_of(requester))
    wait_until(lambda: pair.executor_id in verified_peers(requester),
               "the requester to verify the executor's capability record")
    return pair


def wait_until(condition: Callable[[], bool], what: str, timeout: float = FORM_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
