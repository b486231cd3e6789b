"""Build, install and run the plasmd .deb on this machine, for tests/packaging.

Everything here acts on the real system: dpkg-buildpackage on a clean clone of the
repository, apt-get/dpkg on the host, the installed daemon started by PID as its systemd
unit would start it, and a real systemd booted in systemd-nspawn. Each function says
what it leaves behind; callers undo it (purge, stop by PID, remove the nspawn state).
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from systemd_unit import ServiceStart

PACKAGE = "plasmd"
UNIT_PATH = Path("/lib/systemd/system/plasmd.service")
SOCKET_PATH = Path("/run/plasmd/plasmd.sock")
STATE_DIR = Path("/var/lib/plasmd")
EXAMPLES_DIR = Path("/usr/share/plasmd/examples")
# What systemd puts in the environment of a User= service besides Environment=.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CommandFailed(AssertionError):
    """A command the test relies on exited non-zero; the message carries its output."""


def run(
    cmd: Sequence[str | Path], *, timeout: float, check: bool = True, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to completion; on failure raise with its full output."""
    result = subprocess.run(
        [str(part) for part in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[call-overload]
    )
    if check and result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


def build_deb(repo: Path, workdir: Path) -> Path:
    """Clone ``repo``'s HEAD into ``workdir`` and build the binary package there."""
    source = workdir / "src"
    run(["git", "clone", "--quiet", "--no-hardlinks", repo, source], timeout=120)
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=source, timeout=600)
    debs = sorted(workdir.glob(f"{PACKAGE}_*.deb"))
    if len(debs) != 1:
        raise AssertionError(f"expected one {PACKAGE} .deb in {workdir}, found {debs}")
    return debs[0]


def is_installed() -> bool:
    result = run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}", PACKAGE], timeout=30, check=False
    )
    return result.returncode == 0 and result.stdout.strip() not in ("", "not-installed")


def install(deb: Path) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(
        ["apt-get", "install", "--yes", "--no-install-recommends", deb.resolve()],
        timeout=300,
        env=env,
    )


def purge() -> None:
    run(["dpkg", "--purge", PACKAGE], timeout=120)


def installed_paths() -> list[Path]:
    """Every path dpkg recorded for the installed package (directories included)."""
    listing = run(["dpkg-query", "--listfiles", PACKAGE], timeout=60)
    return [Path(line) for line in listing.stdout.splitlines() if line.startswith("/")]


@dataclass
class RunningDaemon:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM by PID as systemd's stop does, SIGKILL if it outlives ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start_like_unit(service: ServiceStart, log_path: Path, ready_timeout: float) -> RunningDaemon:
    """Start the unit's ExecStart as its User=/Group=, with its Environment= and UMask=.

    The runtime directory is made as RuntimeDirectory= makes it. For Type=notify the
    daemon gets a NOTIFY_SOCKET and this returns once it sends READY=1; otherwise once
    the API socket accepts a connection.
    """
    account = pwd.getpwnam(service.user)
    if service.runtime_directory:
        runtime = Path("/run") / service.runtime_directory
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.chown(runtime, account.pw_uid, account.pw_gid)
        runtime.chmod(service.runtime_directory_mode)
    env = {
        "PATH": SYSTEMD_PATH,
        "HOME": account.pw_dir,
        "USER": service.user,
        "LOGNAME": service.user,
        "SHELL": account.pw_shell,
        "STATE_DIRECTORY": str(STATE_DIR),
        "RUNTIME_DIRECTORY": str(SOCKET_PATH.parent),
        "CONFIGURATION_DIRECTORY": "/etc/plasmd",
        **service.environment,
    }
    notify = None
    if service.service_type == "notify":
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"plasmd-packaging-test-{uuid.uuid4().hex}"
        notify.bind("\0" + name)
        env["NOTIFY_SOCKET"] = "@" + name
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(service.exec_start),
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=service.user,
            group=service.group,
            extra_groups=[],
            umask=service.umask,
        )
    daemon = RunningDaemon(process, log_path)
    try:
        if notify is not None:
            _wait_for_ready(notify, daemon, ready_timeout)
        else:
            _wait_for_socket(daemon, ready_timeout)
    except BaseException:
        daemon.stop()
        raise
    finally:
        if notify is not None:
            notify.close()
    return daemon


def _wait_for_ready(notify: socket.socket, daemon: RunningDaemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    notify.settimeout(0.2)
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise AssertionError(
                f"plasmd exited {daemon.process.returncode} before READY=1:\n{daemon.log()}"
            )
        try:
            message = notify.recv(4096).decode(errors="replace")
        except TimeoutError:
            continue
        if "READY=1" in message.split("\n"):
            return
    raise AssertionError(f"plasmd sent no READY=1 within {timeout} s:\n{daemon.log()}")


def _wait_for_socket(daemon: RunningDaemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise AssertionError(f"plasmd exited {daemon.process.returncode}:\n{daemon.log()}")
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(SOCKET_PATH))
                return
            except OSError:
                time.sleep(0.1)
    raise AssertionError(f"{SOCKET_PATH} did not accept within {timeout} s:\n{daemon.log()}")


def remove_runtime_directory(service: ServiceStart) -> None:
    """What systemd does to RuntimeDirectory= when the service stops."""
    if service.runtime_directory:
        run(["rm", "-rf", Path("/run") / service.runtime_directory], timeout=30)
