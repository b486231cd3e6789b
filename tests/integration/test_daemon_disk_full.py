"""A full disk under the state dir: clients are told so, nothing is left running, and the
node recovers by itself once space returns. The state dir is a small tmpfs the test mounts
(root, as CI runs)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_checks import api_error, example_bytes, wait_for_status

from plasm.client import ApiRequestError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_a_clear_507_and_the_node_recovers_when_space_returns(
    daemon_factory, small_disk: Path
) -> None:
    daemon = daemon_factory(small_disk / "state")
    with daemon.client() as client:
        assert client.submit(module=example_bytes("hello"), wait=20)["status"] == "done"
        # accepted and running when the disk fills: its end cannot be written at first
        running = client.submit(module=example_bytes("loop"),
                                limits={"fuel": 10**11, "timeout_ms": 1500})["job_id"]
        wait_for_status(client, running, frozenset({"running"}))
        filler = _fill(small_disk)
        refused = 0
        for _ in range(10):
            try:
                # a fresh module each time: its bytes must be written too
                client.submit(module=example_bytes("hello") + os.urandom(64 * 1024), wait=20)
            except ApiRequestError as exc:
                status, code = api_error(exc)
                assert (status, code) == (507, "disk_full"), exc
                assert "free" in str(exc) and "space" in str(exc)
                refused += 1
        assert refused, "a full disk refused nothing"
        time.sleep(1.5)  # the running job has ended by now, unrecorded
        assert client.health()  # still serving
        filler.unlink()
        deadline = time.monotonic() + 30
        while True:
            try:
                done = client.submit(module=example_bytes("hello"), stdin=b"back", wait=20)
                break
            except ApiRequestError:
                assert time.monotonic() < deadline, "the node did not recover"
                time.sleep(0.2)
        assert done["status"] == "done" and done["stdout_text"] == "kcab\n"
        ended = wait_for_status(client, running, timeout=10)
        assert ended["status"] == "failed" and "full" in ended["error"]["message"], ended
        listed = client.jobs(limit=100)
        assert all(job["status"] not in ("queued", "running") for job in listed), listed
    assert daemon.stop() == 0
