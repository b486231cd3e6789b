"""Fixtures shared by every test folder.

Every actor message in every test round-trips through the CBOR codec
(PLASM_STRICT_MESSAGES=1, inherited by the daemons the tests start), so a message
that could not cross the wire fails here rather than in production.

`daemon_factory` starts real `plasmd run` processes: each with its own temporary
state dir and socket, stopped (SIGTERM, then SIGKILL if it hangs) by PID at teardown.
They run without the peer-to-peer network (`--no-network`) unless a test passes
`network=True`; then they listen on 127.0.0.1 with a port the kernel picks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from plasm.client import Client

os.environ["PLASM_STRICT_MESSAGES"] = "1"

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "wasm-examples"
START_TIMEOUT_S = 30.0


def example(name: str) -> Path:
    return EXAMPLES / f"{name}.wasm"


@pytest.fixture
def hello_wasm() -> bytes:
    return example("hello").read_bytes()


def plasmd_command(*args: str) -> list[str]:
    """`plasmd ARGS` with this interpreter, so tests use the checkout under test."""
    return [sys.executable, "-m", "plasm.cli", *args]


@dataclass
class Daemon:
    state_dir: Path
    socket: Path
    log_path: Path
    extra_args: tuple[str, ...] = ()
    config: Path | None = None
    network: bool = False
    program: tuple[str, ...] = ()  # what runs instead of `python -m plasm.cli`
    env: dict[str, str] | None = None  # added to this process's environment
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, ready_timeout: float = START_TIMEOUT_S) -> Daemon:
        args = [
            "run",
            "--state-dir",
            str(self.state_dir),
            "--socket",
            str(self.socket),
            "--log-format",
            "json",
            *self.extra_args,
        ]
        if self.config is not None:
            args += ["--config", str(self.config)]
        if not self.network:
            args.append("--no-network")
        elif "--listen" not in self.extra_args:
            args += ["--listen", "/ip4/127.0.0.1/tcp/0"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        command = [*self.program, *args] if self.program else plasmd_command(*args)
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(
            command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env
        )
        log.close()
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        from plasm.client import Client, ClientError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"plasmd exited with {self.proc.returncode}:\n{self.log()}")
            if self.socket.exists():
                try:
                    with Client(self.socket, timeout=2) as client:
                        client.health()
                    return
                except ClientError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"plasmd did not become ready in {timeout:g}s:\n{self.log()}")

    def client(self, timeout: float = 30.0) -> Client:
        from plasm.client import Client

        return Client(self.socket, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the daemon (by PID) and wait for it; SIGKILL if it does not exit."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@contextmanager
def running_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Daemon]]:
    """A daemon maker; every daemon it made is stopped (by PID) on exit."""
    started: list[Daemon] = []

    def make(
        state_dir: Path | None = None,
        *extra_args: str,
        config: Path | None = None,
        start: bool = True,
        network: bool = False,
        program: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Daemon:
        # Unix socket paths are limited to 107 bytes: keep them short.
        base = Path(tmp_path_factory.mktemp("plasmd"))
        state = state_dir or base / "state"
        daemon = Daemon(
            state,
            base / "api.sock",
            base / "plasmd.log",
            tuple(extra_args),
            config,
            network,
            program,
            env,
        )
        started.append(daemon)
        return daemon.start() if start else daemon

    try:
        yield make
    finally:
        for daemon in started:
            if daemon.proc is not None:
                daemon.stop()


@pytest.fixture
def daemon_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Daemon]]:
    with running_daemons(tmp_path_factory) as make:
        yield make


@pytest.fixture
def daemon(daemon_factory: Callable[..., Daemon]) -> Daemon:
    return daemon_factory()
