"""Big modules, input files and output files between two real nodes (libp2p on loopback).

Each node is a whole `Node` (journal, executors, signer, negotiator, discovery, network
actor with its own libp2p host): the module, the input file and the output file are each
above the 16 MiB job frame cap, so they can only travel over /plasm/blob/1.0.0.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from bench._modules import padded
from plasm.actors.messages import JobFinished
from plasm.actors.node import NetworkSettings, Node, NodeSettings
from plasm.protocol.p2p_messages import Placement
from plasm.protocol.receipt import verify_envelope
from plasm.runtime.job import JobInput, Limits
from tests.conftest import example

WAIT_S = 120
MIB = 2**20
BIG = Limits(
    timeout_ms=60_000,
    max_input_files_bytes=64 * MIB,
    max_output_files_bytes=64 * MIB,
    max_output_file_bytes=64 * MIB,
)


def _node(tmp_path: Path, name: str, seed: int, bootstrap: tuple[str, ...] = ()) -> Node:
    settings = NodeSettings(
        executor_count=1,
        journal_path=tmp_path / f"{name}.sqlite",
        module_cache_dir=tmp_path / f"{name}-cache",
        network=NetworkSettings(listen=("/ip4/127.0.0.1/tcp/0",), bootstrap=bootstrap),
    )
    return Node(SigningKey(bytes([seed]) * 32), settings).start()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    a = _node(tmp_path, "a", 11)
    b = None
    try:
        address = f"{a.network_info().listen_addresses[0]}/p2p/{a.peer_id}"
        b = _node(tmp_path, "b", 12, (address,))
        yield a, b
    finally:
        if b is not None:
            b.stop(grace_s=1)
        a.stop(grace_s=1)


def _run_on(requester: Node, executor: Node, module: bytes, job_input: JobInput) -> JobFinished:
    deadline = time.monotonic() + WAIT_S
    while True:  # until the requester's discovery has verified the executor's record
        submission = requester.submit(
            module=module,
            module_sha256=None,
            job_input=job_input,
            limits=BIG,
            placement=Placement(mode="peer", peer_id=executor.peer_id),
        )
        finished = submission.done.get(timeout=WAIT_S)
        assert isinstance(finished, JobFinished)
        if finished.status == "done" or time.monotonic() > deadline:
            return finished
        time.sleep(0.2)


def _run_once(requester: Node, executor: Node, module: bytes, job_input: JobInput) -> JobFinished:
    submission = requester.submit(
        module=module,
        module_sha256=None,
        job_input=job_input,
        limits=BIG,
        placement=Placement(mode="peer", peer_id=executor.peer_id),
    )
    finished = submission.done.get(timeout=WAIT_S)
    assert isinstance(finished, JobFinished)
    return finished


@pytest.mark.timeout(300)
def test_a_21_mb_module_and_a_17_mib_input_file_run_on_a_peer_and_the_output_comes_back(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    module = padded(example("copyfiles").read_bytes(), 21 * 10**6)
    data = os.urandom(17 * MIB)
    job_input = JobInput(module_name="copyfiles.wasm", files=(("/input/big.bin", data),))
    finished = _run_on(b, a, module, job_input)
    assert finished.status == "done", finished.error
    assert finished.executor == a.peer_id
    assert finished.executed is not None and finished.envelope is not None
    outcome = finished.executed.outcome
    assert outcome.output_files == (("/output/big.bin", data),)
    receipt = verify_envelope(
        finished.envelope,
        expected_executor=a.peer_id,
        expected_module_sha256=hashlib.sha256(module).hexdigest(),
        job_input=job_input,
        stdout=outcome.stdout,
        outputs=outcome.output_files,
    )
    assert [(o.path, o.size) for o in receipt.outputs] == [("/output/big.bin", 17 * MIB)]
    assert b"big.bin" in outcome.stdout


class _Tampering:
    """Stands in for a node's `BlobGrants.lookup`: serves every blob with one byte flipped."""

    def __init__(self, lookup: Callable[[str, str], bytes | None]) -> None:
        self._lookup = lookup
        self.served = 0

    def __call__(self, peer: str, sha256: str) -> bytes | None:
        data = self._lookup(peer, sha256)
        if data is None:
            return None
        self.served += 1
        return bytes([data[0] ^ 1]) + data[1:]


@pytest.mark.timeout(300)
def test_an_executor_that_serves_wrong_output_bytes_fails_the_job_clearly(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    assert a.blob_grants is not None
    module = example("copyfiles").read_bytes()
    warm = _run_on(b, a, module, JobInput(files=(("/input/small", b"x"),)))
    assert warm.status == "done", warm.error  # b knows a now
    tampering = _Tampering(a.blob_grants.lookup)
    monkeypatch.setattr(a.blob_grants, "lookup", tampering)
    data = os.urandom(3 * MIB)
    finished = _run_once(b, a, module, JobInput(files=(("/input/big.bin", data),)))
    assert finished.status == "failed" and finished.error is not None
    assert tampering.served >= 1
    assert b"outputs_hash_mismatch" in finished.error


@pytest.mark.timeout(300)
def test_a_requester_that_serves_wrong_input_bytes_gets_its_job_refused(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    assert b.blob_grants is not None
    module = example("copyfiles").read_bytes()
    warm = _run_on(b, a, module, JobInput(files=(("/input/small", b"x"),)))
    assert warm.status == "done", warm.error
    tampering = _Tampering(b.blob_grants.lookup)
    monkeypatch.setattr(b.blob_grants, "lookup", tampering)
    data = os.urandom(3 * MIB)
    finished = _run_once(b, a, module, JobInput(files=(("/input/big.bin", data),)))
    assert finished.status == "failed" and finished.error is not None
    assert tampering.served >= 1
    assert b"fetch_failed" in finished.error
    assert a.stats().running == 0  # nothing ran on a, and a keeps serving
    assert _run_on(b, a, module, JobInput(files=(("/input/small", b"y"),))).status == "done"
