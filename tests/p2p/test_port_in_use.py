"""Two daemons asked for the same TCP port: the second refuses to start, clearly.

py-libp2p binds with SO_REUSEPORT, which would let both listen and split incoming
connections between them at random; plasmd checks the port first.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.conftest import plasmd_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_second_daemon_on_a_taken_port_exits_with_an_error_that_names_it(
    daemon_factory, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    listen = f"/ip4/127.0.0.1/tcp/{free_port()}"
    first = daemon_factory(None, "--listen", listen, network=True)
    second = subprocess.run(
        plasmd_command(
            "run",
            "--state-dir",
            str(tmp_path / "second"),
            "--socket",
            str(tmp_path / "second.sock"),
            "--listen",
            listen,
            "--log-format",
            "json",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert second.returncode == 2
    assert f"cannot listen on {listen}" in second.stderr
    assert "Traceback" not in second.stderr
    with first.client() as client:
        assert client.health()["status"] == "ok"
