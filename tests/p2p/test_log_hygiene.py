"""What an operator reads in the daemon's log when peers talk and when bootstrap is wrong.

Every line a daemon writes with `--log-format json` is one JSON object, py-libp2p's own
records included (py-libp2p's loggers have no handler of their own: without plasm taking
them over, Python's last-resort handler prints them raw). The lines py-libp2p logs for
ordinary peer behaviour (a peer closing a DHT stream, a FIND_NODE for a key that is no
peer ID, the details of a dial plasm reports itself) are at debug. A bootstrap address
with the wrong peer ID is one warning naming the expected and the actual peer; an
address where nothing listens is one warning per retry period.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import orjson
import pytest

from plasm.protocol.identity import peer_id_from_public_key
from tests.conftest import Daemon, example, running_daemons
from tests.p2p.conftest import peer_id_of, seed_address, verified_peers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NOISE = re.compile(
    r"Failed to read DHT message|FIND_NODE key is not a valid PeerId|Failed to open TCP stream"
    r"|failed to upgrade security|Failed to open stream to|Failed to store value at peer"
    r"|ADD_PROVIDER"
)


def log_entries(daemon: Daemon) -> list[dict[str, Any]]:
    entries = []
    for line in daemon.log().splitlines():
        try:
            entries.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return entries


def warnings(daemon: Daemon) -> list[dict[str, Any]]:
    return [e for e in log_entries(daemon) if e["level"] in ("warning", "error", "critical")]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_nodes_running_a_remote_job_log_only_json_and_no_libp2p_noise(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with running_daemons(tmp_path_factory) as make:
        a = make(network=True)
        b = make(None, "--bootstrap", seed_address(a), network=True)
        a_id = peer_id_of(a)
        wait_until(lambda: a_id in verified_peers(b), "B to verify A's capability record")
        with b.client(timeout=60) as client:
            for _ in range(3):
                result = client.submit(module=example("hello").read_bytes(), wait=30,
                                       placement={"mode": "peer", "peer_id": a_id})
                assert result["status"] == "done", result
        time.sleep(2)  # the DHT traffic that follows the jobs
        for daemon in (a, b):
            noisy = [w for w in warnings(daemon) if NOISE.search(w["msg"])]
            assert noisy == [], noisy


def test_a_wrong_bootstrap_peer_id_names_both_peers_and_a_dead_address_warns_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    wrong_id = peer_id_from_public_key(bytes(range(32)))
    with running_daemons(tmp_path_factory) as make:
        a = make(network=True)
        a_id = peer_id_of(a)
        real = seed_address(a)
        wrong = real.rsplit("/p2p/", 1)[0] + f"/p2p/{wrong_id}"
        dead = f"/ip4/127.0.0.1/tcp/{free_tcp_port()}/p2p/{a_id}"
        c = make(None, "--bootstrap", wrong, "--bootstrap", dead, network=True)

        def bootstrap_warnings() -> list[dict[str, Any]]:
            return [w for w in warnings(c) if w.get("event", "").startswith("bootstrap_")]

        wait_until(lambda: len(bootstrap_warnings()) >= 2, "C's bootstrap warnings", 40)
        time.sleep(10)  # what follows within the same retry period (60 s)
        found = bootstrap_warnings()
        mismatch = [w for w in found if w["event"] == "bootstrap_wrong_peer"]
        assert len(mismatch) == 1, found
        assert wrong_id in mismatch[0]["msg"] and a_id in mismatch[0]["msg"], mismatch
        assert mismatch[0]["expected"] == wrong_id and mismatch[0]["actual"] == a_id
        unreachable = [w for w in found if w["event"] == "bootstrap_unreachable"]
        assert len(unreachable) == 1, found
        assert dead.split("/p2p/")[0] in unreachable[0]["msg"], unreachable
        noisy = [w for w in warnings(c) if NOISE.search(w["msg"])]
        assert noisy == [], noisy
