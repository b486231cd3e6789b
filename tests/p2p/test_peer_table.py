"""The peer table forgets peers that are gone: a peer named once with `--on`, or met
and then stopped, leaves `GET /v1/peers` once it has not been connected for
`network.forget_peers_after_ms`; a connected peer stays however long that is.
Real daemons on loopback."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Daemon, example, running_daemons
from tests.p2p.conftest import peer_id_of, seed_address, verified_peers, wait_until, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def listed(daemon: Daemon) -> set[str]:
    with daemon.client() as client:
        return {str(p["peer_id"]) for p in client.peers()}


def test_a_stopped_peer_leaves_the_table_and_a_connected_one_stays(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("forget")
    forget = write_config(tmp, "r", "[network]\nforget_peers_after_ms = \"2s\"\n")
    with running_daemons(tmp_path_factory) as make:
        seed = make(network=True)
        gone = make(None, "--bootstrap", seed_address(seed), network=True)
        r = make(None, "--bootstrap", seed_address(seed), network=True, config=forget)
        seed_id, gone_id = peer_id_of(seed), peer_id_of(gone)
        wait_until(lambda: {seed_id, gone_id} <= verified_peers(r), "R to verify both records")
        with r.client(timeout=60) as client:  # named with --on: R talks to it directly
            result = client.submit(module=example("hello").read_bytes(), wait=30,
                                   placement={"mode": "peer", "peer_id": gone_id})
        assert result["status"] == "done", result
        gone.stop()
        wait_until(lambda: gone_id not in listed(r), "R to forget the stopped peer", 60)
        time.sleep(3)  # longer than forget_peers_after_ms: the connected seed stays
        assert seed_id in listed(r)
        with r.client() as client:
            peers = {p["peer_id"]: p for p in client.peers()}
        assert peers[seed_id]["connected"] is True
        assert '"event":"peer_forgotten"' in r.log() and gone_id in r.log()
