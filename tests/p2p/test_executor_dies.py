"""An executor killed (SIGKILL) in the middle of a remote job: the job runs elsewhere."""

from __future__ import annotations

import base64
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plasm.protocol.receipt import verify_envelope
from tests.conftest import Daemon, example, running_daemons

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ONE_EXECUTOR = "[executor]\ncount = 1\n"


def running_job(daemon: Daemon, job_id: str) -> bool:
    with daemon.client() as client:
        return any(job["job_id"] == job_id for job in client.jobs("running"))


@pytest.fixture
def trio_of_nodes(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> Iterator[tuple[Daemon, Daemon, Daemon]]:
    config = tmp_path / "one.toml"
    config.write_text(ONE_EXECUTOR)
    with running_daemons(tmp_path_factory) as make:
        a = make(config=config, network=True)
        with a.client() as client:
            seed = client.node()["addresses"][0]
        b = make(None, "--bootstrap", seed, config=config, network=True)
        r = make(None, "--bootstrap", seed, network=True)
        ids = set()
        for d in (a, b):
            with d.client() as client:
                ids.add(client.node()["peer_id"])
        deadline = time.monotonic() + 60
        while True:
            with r.client() as client:
                known = {
                    p["peer_id"]
                    for p in client.request("GET", "/v1/peers")["peers"]
                    if p.get("capabilities")
                }
            if ids <= known:
                break
            assert time.monotonic() < deadline, "R did not learn A's and B's capabilities"
            time.sleep(0.1)
        yield a, b, r


def test_a_job_whose_executor_dies_is_finished_by_another_peer(
    trio_of_nodes: tuple[Daemon, Daemon, Daemon],
) -> None:
    a, b, r = trio_of_nodes
    # loop.wasm never ends by itself: with a 3 s timeout its outcome is `timeout`.
    with r.client() as client:
        accepted = client.submit(
            module=example("loop").read_bytes(),
            limits={"fuel": 10**11, "timeout_ms": 3000},
            placement={"mode": "any", "exclude_self": True},
        )
    job_id = accepted["job_id"]
    deadline = time.monotonic() + 30
    victim = survivor = None
    while victim is None:
        assert time.monotonic() < deadline, "neither A nor B started the job"
        for first, second in ((a, b), (b, a)):
            if running_job(first, job_id):
                victim, survivor = first, second
        time.sleep(0.05)
    assert survivor is not None
    with survivor.client() as client:
        survivor_id = client.node()["peer_id"]
    victim.stop(signal.SIGKILL)

    deadline = time.monotonic() + 60
    while True:
        with r.client() as client:
            job = client.job(job_id)
        if job["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, f"the job stayed {job['status']}"
        time.sleep(0.1)
    assert job["status"] == "done", job
    result = job["result"]
    assert result["executor"] == survivor_id
    assert result["outcome"]["kind"] == "timeout"
    envelope = base64.b64decode(result["receipt"]["cose"])
    verify_envelope(envelope, expected_executor=survivor_id, expected_job_id=job_id)
