"""A real daemon under two resource attacks keeps serving other peers.

  T  the target, a real `plasmd run` with the network (two executors, so two slots)
  Q  an honest daemon that asks T to run hello.wasm
Idle sockets: 300 TCP connections from 127.0.0.2 that never start the handshake, kept
open (reopened when T closes them). A fresh libp2p host still connects to T, and Q, started
while they are held, bootstraps from T and runs a remote job there.
Offer squatting: one throwaway peer offers jobs and never sends them. Once T's offer hold
window passes, its held slots come free, Q's remote jobs run, and the squatter's later
offers are declined `rate_limited`.
Times are printed (run with -s), never asserted; the bounds are generous liveness checks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trio

from tests.conftest import Daemon, example, running_daemons
from tests.network.hostile_peers import Answer, IdleSockets, squat, tcp_endpoint, time_to_connect
from tests.p2p.conftest import peer_id_of, seed_address, verified_peers, wait_until, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HELLO = example("hello").read_bytes()
IDLE_SOCKETS = 300
ATTACKER_IP = "127.0.0.2"  # one address, not the honest peers' 127.0.0.1
HOLD_MS = 2000
TARGET_CONFIG = f"""
[executor]
count = 2

[network]
max_jobs_per_peer = 4
rate_limit_per_minute = 6000  # the token bucket never declines the squatter here
offer_hold_ms = {HOLD_MS}
"""


@pytest.fixture
def make(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with running_daemons(tmp_path_factory) as make:
        yield make


def start_target(make: object, folder: Path) -> Daemon:
    config = write_config(folder, "target", TARGET_CONFIG)
    return make(config=config, network=True)  # type: ignore[operator, no-any-return]


def run_on(daemon: Daemon, executor: str, stdin: bytes) -> dict[str, object]:
    with daemon.client(timeout=60) as client:
        return client.submit(
            module=HELLO,
            stdin=stdin,  # type: ignore[no-any-return]
            placement={"mode": "peer", "peer_id": executor},
            wait=30,
        )


def runs(answers: list[Answer]) -> list[tuple[float, str, int]]:
    """Consecutive equal answers as (first seen at, answer, count)."""
    out: list[tuple[float, str, int]] = []
    for answer in answers:
        what = "accepted" if answer.accepted else str(answer.reason)
        if out and out[-1][1] == what:
            out[-1] = (out[-1][0], what, out[-1][2] + 1)
        else:
            out.append((round(answer.at, 1), what, 1))
    return out


def test_idle_sockets_do_not_lock_new_peers_out(make: object, tmp_path: Path) -> None:
    target = start_target(make, tmp_path)
    address = seed_address(target)
    target_id = peer_id_of(target)
    with IdleSockets(tcp_endpoint(address), IDLE_SOCKETS, ATTACKER_IP) as idle:
        time.sleep(1.0)  # let T accept them all
        elapsed = trio.run(time_to_connect, address, 30.0)
        print(f"\nnew peer connected in {elapsed:.3f} s with {IDLE_SOCKETS} idle sockets held")
        other: Daemon = make(None, "--bootstrap", address, network=True)  # type: ignore[operator]
        wait_until(lambda: target_id in verified_peers(other), "Q to verify T", timeout=60)
        started = time.monotonic()
        result = run_on(other, target_id, b"past the idle sockets")
        print(
            f"remote job {result.get('status')} in {time.monotonic() - started:.3f} s; "
            f"{idle.opened} idle connections opened in all"
        )
    assert result.get("status") == "done", result
    assert result["stdout_text"] == "stekcos eldi eht tsap\n"
    assert target.proc is not None and target.proc.poll() is None, "T died"


def test_an_offer_squatter_cannot_hold_the_slots(make: object, tmp_path: Path) -> None:
    target = start_target(make, tmp_path)
    address = seed_address(target)
    target_id = peer_id_of(target)
    honest: Daemon = make(None, "--bootstrap", address, network=True)  # type: ignore[operator]
    wait_until(lambda: target_id in verified_peers(honest), "Q to verify T", timeout=60)
    with ThreadPoolExecutor(1) as pool:
        squatting = pool.submit(squat, address, 25.0, HELLO, 0.05)
        time.sleep(0.5)  # the squatter holds the slots by now
        began = time.monotonic()
        tries: list[tuple[float, object]] = []
        result: dict[str, object] = {}
        while time.monotonic() - began < 20.0:
            result = run_on(honest, target_id, b"squatters")
            error = result.get("error")
            tries.append(
                (
                    round(time.monotonic() - began, 2),
                    result.get("status") if result.get("status") == "done" else error,
                )
            )
            if result.get("status") == "done":
                break
            time.sleep(0.5)
        answers = squatting.result(timeout=60)
    print(f"\nhonest tries (s since squatting began, outcome): {tries}")
    accepted = [a for a in answers if a.accepted]
    declined = [(round(a.at, 1), a.reason) for a in answers if not a.accepted]
    print(f"squatter's answers (from s, answer, how many): {runs(answers)}")
    assert result.get("status") == "done", tries
    assert result["stdout_text"] == "srettauqs\n"
    assert accepted, "the squatter never held a slot: the test proves nothing"
    assert any(a.reason == "rate_limited" for a in answers if a.at > HOLD_MS / 1000), declined
    assert target.proc is not None and target.proc.poll() is None, "T died"
