"""A real daemon attacked on each of its protocols keeps serving: garbage, an oversize
length prefix, a stalled half frame, a well-formed frame holding the wrong message, and
a JobRequest no offer covers each get an Error frame or a reset, and afterwards the
daemon still runs a remote job for another daemon and answers GET /v1/health.

  T  the target, a real `plasmd run` with the network
  Q  another daemon (bootstrapped from T) that asks T to run hello.wasm after each attack
The attacker is `raw_exchange` from tests/network: a throwaway libp2p host.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from plasm.protocol.framing import FrameDecoder, encode_frame
from plasm.protocol.messages import (
    Error,
    JobRequest,
    Message,
    ModuleRequest,
    decode_message,
    encode_message,
)
from plasm.protocol.p2p_messages import (
    PROTOCOL_CAPS,
    PROTOCOL_JOB,
    PROTOCOLS,
    CapabilitiesRequest,
)
from plasm.runtime.job import JobInput, Limits
from tests.conftest import Daemon, example, running_daemons
from tests.network.conftest import RawOutcome, raw_exchange
from tests.p2p.conftest import peer_id_of, seed_address, verified_peers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ANSWER_CAP = 16 * 2**20
DAEMON_READ_DEADLINE_S = 10.0  # the daemon's per-stream read deadline (NetworkActor default)
HELLO = example("hello").read_bytes()


@dataclass
class Pair:
    target: Daemon
    other: Daemon
    target_id: str
    address: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_daemons(tmp_path_factory) as make:
        target = make(network=True)
        address = seed_address(target)
        other = make(None, "--bootstrap", address, network=True)
        target_id = peer_id_of(target)
        wait_until(lambda: target_id in verified_peers(other), "the other daemon to verify T")
        yield Pair(target, other, target_id, address)
        assert target.proc is not None and target.proc.poll() is None, "T died"


def answered_error(outcome: RawOutcome) -> str | None:
    """The code of the Error frame the daemon answered, or None if it answered none."""
    frames = FrameDecoder(ANSWER_CAP).feed(outcome.received)
    if not frames:
        return None
    message = decode_message(frames[0], max_size=ANSWER_CAP)
    assert isinstance(message, Error), f"answered a {type(message).__name__}, not an Error"
    return message.code


def assert_still_serving(pair: Pair) -> None:
    with pair.other.client(timeout=60) as client:
        result = client.submit(module=HELLO, stdin=b"still here",
                               placement={"mode": "peer", "peer_id": pair.target_id}, wait=30)
    assert result.get("status") == "done", result
    assert (result["executor"], result["stdout_text"]) == (pair.target_id, "ereh llits\n")
    with pair.target.client() as client:
        assert client.health() == {"status": "ok"}
    assert pair.target.proc is not None and pair.target.proc.poll() is None


def frame(message: Message, protocol: str) -> bytes:
    cap = ANSWER_CAP if protocol == PROTOCOL_JOB else 2**16
    return encode_frame(encode_message(message), cap)


def job_request_without_offer() -> JobRequest:
    return JobRequest(job_id=os.urandom(16).hex(), module=None,
                      module_sha256=hashlib.sha256(HELLO).hexdigest(),
                      job_input=JobInput(), limits=Limits(), nonce=os.urandom(16))


def wrong_message(protocol: str) -> Message:
    """A valid catalogue message that is not a request of `protocol`."""
    if protocol == PROTOCOL_CAPS:
        return ModuleRequest(hashlib.sha256(HELLO).hexdigest())
    return CapabilitiesRequest()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_garbage_gets_an_error_and_the_daemon_keeps_serving(pair: Pair, protocol: str) -> None:
    # a zero length prefix, then text: no frame of any protocol
    outcome = raw_exchange(pair.address, protocol, b"\x00\x00\x00\x00GET / HTTP/1.1\r\n\r\n")
    assert answered_error(outcome) == "malformed"
    assert outcome.reset
    assert_still_serving(pair)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_oversize_length_prefix_is_refused_before_the_body(pair: Pair, protocol: str) -> None:
    outcome = raw_exchange(pair.address, protocol, (2**31).to_bytes(4, "big") + b"x" * 1000)
    assert answered_error(outcome) == "too_large"
    assert outcome.reset
    assert_still_serving(pair)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_frame_holding_the_wrong_message_gets_an_error(pair: Pair, protocol: str) -> None:
    outcome = raw_exchange(pair.address, protocol, frame(wrong_message(protocol), protocol))
    assert answered_error(outcome) == "malformed"
    assert_still_serving(pair)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_job_request_without_an_offer_gets_an_error(pair: Pair, protocol: str) -> None:
    # on the job protocol: nothing was offered; on the others: not their request at all
    outcome = raw_exchange(pair.address, protocol, frame(job_request_without_offer(), protocol))
    expected = "no_offer" if protocol == PROTOCOL_JOB else "malformed"
    assert answered_error(outcome) == expected
    assert_still_serving(pair)


def test_stalled_half_frames_on_every_protocol_time_out(pair: Pair) -> None:
    # All four at once, each from its own throwaway peer: the daemon gives up on each
    # after its read deadline, and serves a job while they hang.
    half = encode_frame(b"x" * 100, 2**16)[:50]
    with ThreadPoolExecutor(len(PROTOCOLS)) as pool:
        stalls = [pool.submit(raw_exchange, pair.address, protocol, half,
                              stall=DAEMON_READ_DEADLINE_S + 5) for protocol in PROTOCOLS]
        assert_still_serving(pair)
        outcomes = [stall.result(timeout=60) for stall in stalls]
    for outcome in outcomes:
        assert answered_error(outcome) == "timeout"
        assert outcome.reset
    assert_still_serving(pair)
