"""`plasmd devnet`: N real daemons as separate processes, joined, stopped by Ctrl-C.

The command runs as a user runs it (a process of its own); the test reads its JSON line,
places a job through one node on a peer, then sends it SIGINT (or SIGKILL: its nodes
must not outlive it) and checks that every node's process is gone and what it made is
removed (or kept, with --keep).
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from plasm.client import Client
from tests.conftest import example, plasmd_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def start_devnet(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(plasmd_command("devnet", "--json", *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_ready(proc: subprocess.Popen[bytes], timeout: float = 150) -> dict[str, Any]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            pytest.fail(f"plasmd devnet printed nothing in {timeout} s")
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"plasmd devnet ended (rc {proc.returncode}): {err.decode()}")
    return dict(orjson.loads(line))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0): ended, not yet reaped by its (dead) parent
    status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return status == "Z"


def wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, [pid for pid in pids if not gone(pid)]
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> int:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    return proc.returncode


def test_a_devnet_places_jobs_on_peers_and_ctrl_c_stops_and_removes_it(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    proc = start_devnet("--nodes", "3", "--dir", str(tmp_path / "net"))
    try:
        ready = read_ready(proc)
        nodes = ready["nodes"]
        assert [n["name"] for n in nodes] == ["node-0", "node-1", "node-2"]
        assert len({n["peer_id"] for n in nodes}) == 3
        for node in nodes:
            assert node["address"].endswith(f"/p2p/{node['peer_id']}")
            assert node["address"].startswith("/ip4/127.0.0.1/tcp/")
        for node in nodes[1:]:
            with Client(Path(node["socket"]), timeout=60) as client:
                result = client.submit(module=example("hello").read_bytes(), wait=30,
                                       placement={"mode": "any", "exclude_self": True})
            assert result["status"] == "done", result
            assert result["executor"] in {n["peer_id"] for n in nodes} - {node["peer_id"]}
        pids = [n["pid"] for n in nodes]
        assert not any(gone(pid) for pid in pids)
    finally:
        rc = stop(proc)
    assert rc == 0, proc.stderr.read().decode() if proc.stderr else ""
    wait_gone(pids)
    assert (tmp_path / "net").is_dir()  # the --dir given stays; what the devnet made goes
    assert list((tmp_path / "net").iterdir()) == []


def test_keep_leaves_the_node_folders_and_a_killed_devnet_takes_its_nodes_along(
    tmp_path: Path,
) -> None:
    proc = start_devnet("--nodes", "2", "--dir", str(tmp_path / "net"), "--keep")
    try:
        nodes = read_ready(proc)["nodes"]
    finally:
        stop(proc, signal.SIGKILL)
    wait_gone([n["pid"] for n in nodes])  # SIGTERM from the kernel when their parent died
    for node in nodes:
        assert Path(node["state_dir"], "journal.sqlite3").exists() or any(
            Path(node["state_dir"]).iterdir()
        )
    proc = start_devnet("--nodes", "2", "--dir", str(tmp_path / "net"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "node-0 already exists" in err.decode(), err.decode()


def test_a_node_that_cannot_start_fails_the_devnet_with_its_log(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[executor]\ncount = "many"\n')
    proc = start_devnet("--nodes", "2", "--dir", str(tmp_path / "net"), "--config", str(config))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "node-0 exited" in err.decode() and "executor.count" in err.decode(), err.decode()
    assert not (tmp_path / "net").exists()  # it made the folder, so it removed it
