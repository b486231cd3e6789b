"""`plasm_dht_requests_served_total` in `/metrics` counts the Kademlia requests a daemon
answered for its peers (bench/bench_scale.py sums it over a devnet for DHT messages per
job); a daemon without the network has no such line."""

from __future__ import annotations

import re

import pytest

from tests.p2p.conftest import start_pair, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def served(client) -> int | None:
    found = re.search(r"^plasm_dht_requests_served_total (\d+)$", client.metrics(), re.M)
    return None if found is None else int(found.group(1))


def test_the_bootstrap_node_counts_the_dht_requests_it_answers(daemon_factory) -> None:
    pair = start_pair(daemon_factory)
    with pair.executor.client() as e, pair.requester.client() as r:
        # the requester joins through the executor: its lookups go to it
        wait_until(lambda: (served(e) or 0) > 0, "the bootstrap node to serve a DHT request")
        assert served(r) is not None


def test_a_daemon_without_the_network_has_no_dht_counter(daemon_factory) -> None:
    with daemon_factory().client() as client:
        assert served(client) is None
