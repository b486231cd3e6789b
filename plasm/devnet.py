"""A devnet: N real `plasmd run` processes on this machine, joined through the first.

Each node has its own state directory, API socket and log under one folder, listens on
127.0.0.1 on a port the kernel picks, and (all but the first) bootstraps from the first
node's address. `Devnet.start` returns once every node has verified the capability
record of at least one other node (so each can place an `any` job on a peer);
`Devnet.stop` ends the processes it started, by PID. `plasmd devnet` is the command
around it; tests and benches use the class directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plasm.errors import PlasmError

MAX_SOCKET_PATH = 107  # sun_path, less its terminating NUL
STOP_GRACE_S = 20.0
# What a devnet node changes from the defaults: many nodes share this machine's CPUs,
# so none claims one (claims would also keep a real plasmd here from its own).
NODE_CONFIG = '[executor]\ncpu_affinity = "off"\n'


class DevnetError(PlasmError):
    """The devnet could not be made or did not come up (which node, and its log)."""


@dataclass
class DevnetNode:
    name: str
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    peer_id: str = ""
    address: str = ""

    @property
    def socket(self) -> Path:
        return self.folder / "api.sock"

    @property
    def log_path(self) -> Path:
        return self.folder / "plasmd.log"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "peer_id": self.peer_id,
            "socket": str(self.socket),
            "address": self.address,
            "pid": self.proc.pid if self.proc is not None else None,
            "state_dir": str(self.folder / "state"),
            "log": str(self.log_path),
        }


@dataclass
class Devnet:
    """``count`` nodes under ``folder`` (made here when missing, and then removed by
    ``remove``, as it is with ``owns_folder``; otherwise ``remove`` takes only the node
    folders made here)."""

    count: int
    folder: Path
    config: Path | None = None  # every node's config; without it, NODE_CONFIG
    extra_args: tuple[str, ...] = ()  # more `plasmd run` arguments for every node
    owns_folder: bool = False
    nodes: list[DevnetNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise DevnetError("a devnet has at least 1 node")
        longest = self.folder.resolve() / f"node-{self.count - 1}" / "api.sock"
        if len(str(longest)) > MAX_SOCKET_PATH:
            raise DevnetError(
                f"{longest} is longer than a Unix socket path may be ({MAX_SOCKET_PATH} "
                "bytes): choose a shorter --dir"
            )

    # --- start ------------------------------------------------------------------------

    def start(
        self, timeout: float = 120.0, progress: Callable[[str], None] | None = None
    ) -> None:
        """Start every node and wait until each has verified a peer's capability record."""
        say = progress or (lambda _text: None)
        deadline = time.monotonic() + timeout
        self._make_folders()
        seed = self.nodes[0]
        self._spawn(seed, ())
        self._wait_serving(seed, deadline)
        say(f"{seed.name} is up: {seed.peer_id} at {seed.address}")
        for node in self.nodes[1:]:
            self._spawn(node, ("--bootstrap", seed.address))
        for node in self.nodes[1:]:
            self._wait_serving(node, deadline)
        say(f"{len(self.nodes)} nodes are up; waiting for each to find a capable peer")
        if len(self.nodes) > 1:
            self._wait_found_peers(deadline)

    def _make_folders(self) -> None:
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            self.owns_folder = True
        for index in range(self.count):
            folder = self.folder / f"node-{index}"
            try:
                folder.mkdir()
            except FileExistsError:
                raise DevnetError(
                    f"{folder} already exists (an earlier devnet kept with --keep?): "
                    "remove it or choose another --dir"
                ) from None
            except OSError as exc:
                raise DevnetError(f"cannot make {folder}: {exc.strerror}") from exc
            self.nodes.append(DevnetNode(f"node-{index}", folder))
        if self.config is None:
            for node in self.nodes:
                (node.folder / "plasmd.toml").write_text(NODE_CONFIG)

    def _spawn(self, node: DevnetNode, extra: tuple[str, ...]) -> None:
        config = self.config or node.folder / "plasmd.toml"
        command = [
            sys.executable, "-m", "plasm.cli", "run",
            "--config", str(config),
            "--state-dir", str(node.folder / "state"),
            "--socket", str(node.socket),
            "--log-format", "json",
            "--listen", "/ip4/127.0.0.1/tcp/0",
            *extra, *self.extra_args,
        ]
        with open(node.log_path, "ab") as log:
            node.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # Ctrl-C reaches the devnet, which stops them in order
                preexec_fn=_end_with_parent,
            )

    def _wait_serving(self, node: DevnetNode, deadline: float) -> None:
        from plasm.client import Client, ClientError

        while True:
            self._check_alive(node)
            try:
                with Client(node.socket, timeout=5) as client:
                    info = client.node()
                addresses = [a for a in info.get("addresses", []) if "/p2p/" in a]
                if addresses:
                    node.peer_id, node.address = str(info["peer_id"]), str(addresses[0])
                    return
            except ClientError:
                pass
            if time.monotonic() > deadline:
                raise DevnetError(
                    f"{node.name} did not answer on {node.socket} in time; its log ends:\n"
                    f"{node.log_tail()}"
                )
            time.sleep(0.1)

    def _wait_found_peers(self, deadline: float) -> None:
        from plasm.client import Client, ClientError

        waiting = list(self.nodes)
        while waiting:
            for node in list(waiting):
                self._check_alive(node)
                try:
                    with Client(node.socket, timeout=5) as client:
                        peers = client.peers()
                except ClientError:
                    continue
                if any(peer.get("capabilities") for peer in peers):
                    waiting.remove(node)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(node.name for node in waiting)
                raise DevnetError(
                    f"{names} found no peer with a verified capability record in time; "
                    f"the log of {waiting[0].name} ends:\n{waiting[0].log_tail()}"
                )
            if waiting:
                time.sleep(0.2)

    def _check_alive(self, node: DevnetNode) -> None:
        if node.proc is not None and node.proc.poll() is not None:
            raise DevnetError(
                f"{node.name} exited with status {node.proc.returncode}; its log ends:\n"
                f"{node.log_tail()}"
            )

    # --- while it runs ----------------------------------------------------------------

    def exited(self) -> list[DevnetNode]:
        """The nodes whose process has ended."""
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is not None]

    # --- stop -------------------------------------------------------------------------

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM every node this devnet started (by PID), then SIGKILL what is left."""
        running = [n.proc for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def remove(self) -> None:
        """Remove what this devnet made: its folder if it made it, else its node folders."""
        if self.owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        for node in self.nodes:
            shutil.rmtree(node.folder, ignore_errors=True)

    def __enter__(self) -> Devnet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _end_with_parent() -> None:
    """In the child before exec: SIGTERM when the devnet's process dies, even by SIGKILL."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def default_folder() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="plasm-devnet-", dir=os.environ.get("TMPDIR", "/tmp")))
