"""Boot this machine's own OS tree under a real systemd in systemd-nspawn and run a probe.

Theory of operation: ``systemd-nspawn -D / --volatile=yes`` boots systemd as PID 1 on a
tmpfs root with the host's /usr mounted read-only (the unit, sysusers and tmpfiles files
of the package live there). The host's /etc is overlaid (writes land in a scratch upper
directory, never on the host), so the container sees the installed config, the plasmd
user and the unit's enablement; /opt/plasmd is bound read-only. /var is the tmpfs, so
the daemon starts from an empty state directory and makes its key on first start, like
a fresh install. The probe runs as ``systemd.run=`` (kernel-command-line.service) and
powers the container off when it is done, success or failure; results come back through
a bound directory. Traps (FINDINGS.md): networkd-wait-online is masked or boot stalls
two minutes; the probe never calls ``systemctl is-system-running --wait`` (deadlock);
nspawn leaves /run/systemd/nspawn/propagate/<machine> behind, removed here.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

PROBE_MOUNT = "/var/lib/plasmd-probe"
NSPAWN_STATE = Path("/run/systemd/nspawn")


@dataclass(frozen=True, slots=True)
class BootResult:
    returncode: int
    console: str
    out_dir: Path

    def read(self, name: str) -> str:
        path = self.out_dir / name
        return path.read_text(errors="replace") if path.exists() else ""


def boot_with_probe(probe_script: str, workdir: Path, timeout: float) -> BootResult:
    """Boot the container, run ``probe_script`` (sh) as root inside, wait for power-off."""
    out_dir = workdir / "probe"
    etc_upper = workdir / "etc-upper"
    out_dir.mkdir()
    etc_upper.mkdir()
    probe = out_dir / "probe.sh"
    probe.write_text(probe_script)
    probe.chmod(0o755)
    machine = f"plasmd-test-{uuid.uuid4().hex[:8]}"
    cmd = [
        "systemd-nspawn",
        "--directory=/",
        "--volatile=yes",
        f"--machine={machine}",
        "--private-network",
        "--register=no",
        "--keep-unit",
        "--console=pipe",
        "--resolv-conf=copy-host",
        f"--overlay=/etc:{etc_upper}:/etc",
        "--bind-ro=/opt/plasmd",
        f"--bind={out_dir}:{PROBE_MOUNT}",
        "--boot",
        "--",
        f"systemd.run={PROBE_MOUNT}/probe.sh",
        "systemd.run_success_action=poweroff",
        "systemd.run_failure_action=poweroff",
        "systemd.mask=systemd-networkd-wait-online.service",
    ]
    process = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        console, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM asks nspawn to shut the container down; SIGKILL if even that hangs.
        process.send_signal(signal.SIGTERM)
        try:
            console, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            console, _ = process.communicate(timeout=10)
        console += f"\n[test] container did not power off within {timeout} s".encode()
    finally:
        _remove_nspawn_state(machine)
    return BootResult(process.returncode, console.decode(errors="replace"), out_dir)


def _remove_nspawn_state(machine: str) -> None:
    """Remove what nspawn leaves in /run for this machine, and its parents if now empty."""
    subprocess.run(["rm", "-rf", str(NSPAWN_STATE / "propagate" / machine)], check=True, timeout=30)
    for directory in (NSPAWN_STATE / "propagate", NSPAWN_STATE):
        # Missing already, or still holding another machine's state: leave it.
        with contextlib.suppress(OSError):
            directory.rmdir()
