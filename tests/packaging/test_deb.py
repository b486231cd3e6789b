"""The plasmd .deb, end to end on this machine: build, lint, install, run, remove, purge.

The module builds the package from a clean clone of the repository's HEAD (commit what
you want tested), installs it with apt-get, starts the installed daemon the way its
systemd unit does (same user, ExecStart, environment), submits hello.wasm through
/run/plasmd/plasmd.sock with the installed `plasmd submit`, then boots the unit under a
real systemd in systemd-nspawn, and finally removes and purges the package. It needs
root and the build tools (see docs/install.md); without them it fails, it never skips.
Deselect it for quick local runs with `-m "not packaging"`. Tests run in file order and
share one build and one installation (module-scoped fixtures).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deb_harness import (
    EXAMPLES_DIR,
    PACKAGE,
    SOCKET_PATH,
    STATE_DIR,
    UNIT_PATH,
    RunningDaemon,
    build_deb,
    install,
    installed_paths,
    is_installed,
    purge,
    remove_runtime_directory,
    run,
    start_like_unit,
)
from nspawn_boot import BootResult, boot_with_probe
from systemd_unit import read_service_start

from plasm.protocol.receipt import verify_envelope

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "wasm-examples" / "hello.wasm"
REPO_UNIT = REPO / "systemd" / "plasmd.service"
MAX_EXPOSURE = 2.0
TOOLS = (
    "git",
    "dpkg-buildpackage",
    "dh",
    "lintian",
    "apt-get",
    "systemd-analyze",
    "systemd-nspawn",
    "setpriv",
    "runuser",
)
NOBODY = 65534
DEFAULT_P2P_PORT = 7601  # network.listen of the installed config


@pytest.fixture(scope="module", autouse=True)
def _prerequisites() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the packaging tests install a .deb and need root; "
            'run them as root or deselect them with -m "not packaging"'
        )
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"missing tools {missing}: install the build dependencies listed in "
            "docs/install.md (apt-get install debhelper lintian systemd-container ...)"
        )
    if is_installed():
        pytest.fail(
            f"{PACKAGE} is already installed here; these tests install and purge it, "
            f"so purge it first (dpkg --purge {PACKAGE})"
        )


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_deb(REPO, tmp_path_factory.mktemp("deb-build"))


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[list[Path]]:
    """The package installed with apt-get; yields the paths dpkg installed, purges after."""
    install(deb)
    try:
        yield installed_paths()
    finally:
        if is_installed():
            purge()


def _stat(path: Path) -> tuple[str, str, str]:
    """(octal mode, owner, group) of ``path``, not following a final symlink."""
    info = path.lstat()
    return (
        f"{stat.S_IMODE(info.st_mode):04o}",
        pwd.getpwuid(info.st_uid).pw_name,
        grp.getgrgid(info.st_gid).gr_name,
    )


def _as_user(
    cmd: list[str], *, uid: int, gid: int, groups: list[int], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
        user=uid,
        group=gid,
        extra_groups=groups,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )


def _assert_hello_result_signed_by(result: dict[str, Any], peer_id: str) -> None:
    """hello.wasm without stdin greets; the receipt verifies offline and names this node."""
    assert result["status"] == "done", result
    assert result["outcome"]["kind"] == "ok", result
    assert result["stdout_text"] == "Hello, World!\n"
    assert result["executor"] == peer_id
    verify_envelope(
        base64.b64decode(result["receipt"]["cose"]),
        expected_executor=peer_id,
        expected_job_id=result["job_id"],
        expected_module_sha256=hashlib.sha256(HELLO.read_bytes()).hexdigest(),
        stdout=base64.b64decode(result["stdout"]),
        stderr=base64.b64decode(result["stderr"]),
    )


# -- the unit, before anything is built -------------------------------------------------------


def test_unit_exposure_score_is_at_most_two() -> None:
    result = run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--no-pager",
            f"--threshold={int(MAX_EXPOSURE * 10)}",
            REPO_UNIT,
        ],
        timeout=60,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert score is not None, result.stdout
    assert float(score.group(1)) <= MAX_EXPOSURE


def test_unit_leaves_wasmtime_executable_memory_allowed() -> None:
    settings = REPO_UNIT.read_text()
    assert not re.search(r"^MemoryDenyWriteExecute\s*=\s*(yes|true|1)", settings, re.M)


# -- the built package ------------------------------------------------------------------------


def test_deb_is_named_after_the_project_version_and_architecture(deb: Path) -> None:
    from plasm import __version__

    arch = run(["dpkg", "--print-architecture"], timeout=30).stdout.strip()
    assert deb.name == f"{PACKAGE}_{__version__}_{arch}.deb"


def test_lintian_reports_no_warning_or_error(deb: Path) -> None:
    result = run(["lintian", "--fail-on", "warning,error", deb], timeout=300, check=False)
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWX]: ", line)]
    assert result.returncode == 0 and not tags, result.stdout


def test_package_depends_on_the_python_it_was_built_with(deb: Path) -> None:
    depends = run(["dpkg-deb", "--field", deb, "Depends"], timeout=30).stdout
    built_with = run(["dpkg-query", "-W", "-f", "${Version}", "python3.11"], timeout=30).stdout
    assert f"python3.11 (>= {built_with})" in depends
    assert "libgmp10" in depends  # fastecdsa, from libp2p


# -- the installed files ------------------------------------------------------------------------


def test_commands_on_path_are_the_virtualenv_console_scripts(installed: list[Path]) -> None:
    for name in ("plasmd", "plasm-console"):
        command = Path("/usr/bin") / name
        assert command.resolve() == Path("/opt/plasmd/bin") / name
        shebang = command.resolve().read_text().splitlines()[0]
        assert shebang == "#!/opt/plasmd/bin/python"


def test_virtualenv_runs_on_debian_python_with_the_p2p_extra(installed: list[Path]) -> None:
    assert Path("/opt/plasmd/bin/python3.11").resolve() == Path("/usr/bin/python3.11")
    imports = "import plasm, plasm.runtime.sandbox, wasmtime, pykka, trio, libp2p, fastecdsa"
    # From /, so that the import cannot pick up the checkout's plasm/ folder instead.
    run(["/opt/plasmd/bin/python", "-c", imports], timeout=120, cwd="/")


def test_virtualenv_holds_no_build_path(installed: list[Path]) -> None:
    config = Path("/opt/plasmd/pyvenv.cfg").read_text()
    assert "debian/plasmd" not in config
    assert "command = /usr/bin/python3.11 -m venv /opt/plasmd" in config


def test_config_is_a_conffile_readable_by_group_plasmd_only(installed: list[Path]) -> None:
    conffiles = run(["dpkg-query", "-W", "-f", "${Conffiles}", PACKAGE], timeout=30).stdout
    assert "/etc/plasmd/plasmd.toml" in conffiles
    assert _stat(Path("/etc/plasmd/plasmd.toml")) == ("0640", "root", "plasmd")
    assert _stat(Path("/etc/plasmd")) == ("0750", "root", "plasmd")


def test_plasmd_is_a_system_user_without_login(installed: list[Path]) -> None:
    account = pwd.getpwnam("plasmd")
    assert account.pw_uid < 1000
    assert grp.getgrgid(account.pw_gid).gr_name == "plasmd"
    assert account.pw_dir == str(STATE_DIR)
    assert account.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin")


def test_state_directory_belongs_to_plasmd_with_mode_0700(installed: list[Path]) -> None:
    assert _stat(STATE_DIR) == ("0700", "plasmd", "plasmd")


def test_installed_unit_verifies_without_a_word(installed: list[Path]) -> None:
    result = run(["systemd-analyze", "verify", UNIT_PATH], timeout=60)
    assert result.stdout + result.stderr == ""


def test_installed_unit_is_the_repository_unit_and_enabled(installed: list[Path]) -> None:
    assert UNIT_PATH.read_bytes() == REPO_UNIT.read_bytes()
    wants = Path("/etc/systemd/system/multi-user.target.wants/plasmd.service")
    assert wants.resolve() == UNIT_PATH.resolve()


def test_examples_are_installed(installed: list[Path]) -> None:
    for module in (REPO / "wasm-examples").glob("*.wasm"):
        assert (EXAMPLES_DIR / module.name).read_bytes() == module.read_bytes()


def test_shell_completions_are_installed(installed: list[Path]) -> None:
    for name, folder in (("plasmd", "/usr/share/bash-completion/completions"),
                         ("_plasmd", "/usr/share/zsh/vendor-completions")):
        shipped = Path(folder) / name
        assert shipped.read_text() == (REPO / "debian" / "completion" / name).read_text()


def test_venv_is_byte_compiled_at_install(installed: list[Path]) -> None:
    cached = Path("/opt/plasmd/lib/python3.11/site-packages/plasm/__pycache__")
    assert any(cached.glob("__init__.cpython-311.pyc"))


# -- the installed daemon, started as its unit starts it --------------------------------------


@pytest.fixture(scope="class")
def daemon(
    installed: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    """The installed daemon started as its unit starts it; stopped when the class ends.

    The installed config listens for peers on 0.0.0.0:7601, which any other plasmd on this
    machine may hold; here the daemon listens on a loopback port the kernel picks instead,
    and the test holds 7601 itself (when free) so that a daemon still binding it fails.
    """
    unit = read_service_start(UNIT_PATH)
    service = dataclasses.replace(
        unit, exec_start=(*unit.exec_start, "--listen", "/ip4/127.0.0.1/tcp/0")
    )
    log = tmp_path_factory.mktemp("daemon") / "plasmd.log"
    with _holding_default_port():
        running = start_like_unit(service, log, ready_timeout=60)
    try:
        yield running
    finally:
        running.stop()
        remove_runtime_directory(service)


@contextlib.contextmanager
def _holding_default_port() -> Iterator[None]:
    """Listen on 0.0.0.0:7601 meanwhile, unless another process already holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        with contextlib.suppress(OSError):  # in use already: the same condition
            held.bind(("0.0.0.0", DEFAULT_P2P_PORT))
            held.listen()
        yield


class TestDaemonStartedAsTheUnit:
    def test_daemon_runs_as_plasmd(self, daemon: RunningDaemon) -> None:
        status = Path(f"/proc/{daemon.process.pid}/status").read_text()
        plasmd = pwd.getpwnam("plasmd")
        uids = re.search(r"^Uid:\s+(.*)$", status, re.M)
        assert uids is not None and set(uids.group(1).split()) == {str(plasmd.pw_uid)}

    def test_daemon_makes_its_node_key_with_mode_0600(self, daemon: RunningDaemon) -> None:
        assert _stat(STATE_DIR / "node.key") == ("0600", "plasmd", "plasmd")

    def test_api_socket_is_for_group_plasmd(self, daemon: RunningDaemon) -> None:
        assert stat.S_ISSOCK(SOCKET_PATH.lstat().st_mode)
        assert _stat(SOCKET_PATH.parent) == ("0750", "plasmd", "plasmd")
        assert _stat(SOCKET_PATH)[2] == "plasmd"

    def test_user_outside_group_plasmd_cannot_connect(self, daemon: RunningDaemon) -> None:
        probe = (
            "import socket\ntry:\n socket.socket(socket.AF_UNIX).connect("
            f"{str(SOCKET_PATH)!r})\nexcept PermissionError:\n print('refused')\n"
            "else:\n print('connected')"
        )
        result = _as_user(["/usr/bin/python3.11", "-c", probe], uid=NOBODY, gid=NOBODY, groups=[])
        assert result.stdout.strip() == "refused", result.stderr

    def test_group_member_submits_hello_and_gets_a_receipt_from_this_node(
        self, daemon: RunningDaemon
    ) -> None:
        submit = _as_user(
            [
                "/usr/bin/plasmd",
                "submit",
                str(EXAMPLES_DIR / "hello.wasm"),
                "--socket",
                str(SOCKET_PATH),
                "--wait=60",
                "--json",
            ],
            uid=NOBODY,
            gid=NOBODY,
            groups=[grp.getgrnam("plasmd").gr_gid],
        )
        assert submit.returncode == 0, submit.stderr + daemon.log()
        plasmd = pwd.getpwnam("plasmd")
        identity = _as_user(
            ["/usr/bin/plasmd", "id", "--state-dir", str(STATE_DIR), "--json"],
            uid=plasmd.pw_uid,
            gid=plasmd.pw_gid,
            groups=[],
        )
        assert identity.returncode == 0, identity.stderr
        _assert_hello_result_signed_by(
            json.loads(submit.stdout), json.loads(identity.stdout)["peer_id"]
        )

    def test_daemon_stops_cleanly_on_sigterm(self, daemon: RunningDaemon) -> None:
        assert daemon.stop() == 0, daemon.log()


# -- the unit under a real systemd (systemd-nspawn) -----------------------------------------

CONTAINER_PROBE = """#!/bin/sh
# Runs as root inside the container (kernel-command-line.service); results go to $out.
out=/var/lib/plasmd-probe
exec >"$out/probe.log" 2>&1
set -x
systemctl start plasmd.service; echo $? >"$out/start.rc"
systemctl is-active plasmd.service >"$out/is-active"
systemctl show --property=User,Type,NRestarts plasmd.service
gid=$(getent group plasmd | cut -d: -f3)
setpriv --reuid=65534 --regid=65534 --groups="$gid" --inh-caps=-all \\
    /usr/bin/plasmd submit /usr/share/plasmd/examples/hello.wasm \\
    --socket /run/plasmd/plasmd.sock --wait=60 --json >"$out/result.json"
echo $? >"$out/submit.rc"
runuser -u plasmd -- /usr/bin/plasmd id --state-dir /var/lib/plasmd --json >"$out/id.json"
stat -c '%a %U' /var/lib/plasmd/node.key >"$out/key.stat"
pid=$(systemctl show --property=MainPID --value plasmd.service)
nproc --all >"$out/nproc"
cat /proc/"$pid"/task/*/status | grep Cpus_allowed_list | sort -u >"$out/cpus"
for task in /proc/"$pid"/task/*; do chrt -p "${task##*/}" | head -1; done \
    | sed 's/.*policy: //' | sort -u >"$out/policies"
systemctl stop plasmd.service
systemctl show --property=Result --value plasmd.service >"$out/stop.result"
journalctl --unit=plasmd.service --no-pager >"$out/journal.txt"
"""


@pytest.fixture(scope="class")
def boot(installed: list[Path], tmp_path_factory: pytest.TempPathFactory) -> BootResult:
    """One boot of the installed unit under systemd in a container, probe results inside."""
    result = boot_with_probe(CONTAINER_PROBE, tmp_path_factory.mktemp("nspawn"), timeout=180)
    if not result.read("start.rc"):
        pytest.fail(
            f"the probe did not run in the container (nspawn exit "
            f"{result.returncode}):\n{result.console[-4000:]}"
        )
    return result


class TestUnitUnderSystemd:
    def _diagnose(self, boot: BootResult) -> str:
        return f"{boot.read('probe.log')}\n{boot.read('journal.txt')[-4000:]}"

    def test_systemd_starts_the_unit_to_active(self, boot: BootResult) -> None:
        assert boot.read("start.rc").strip() == "0", self._diagnose(boot)
        assert boot.read("is-active").strip() == "active", self._diagnose(boot)

    def test_unit_serves_hello_to_a_plasmd_group_member(self, boot: BootResult) -> None:
        assert boot.read("submit.rc").strip() == "0", self._diagnose(boot)
        _assert_hello_result_signed_by(
            json.loads(boot.read("result.json")), json.loads(boot.read("id.json"))["peer_id"]
        )

    def test_daemon_makes_its_key_0600_on_first_start(self, boot: BootResult) -> None:
        assert boot.read("key.stat").strip() == "600 plasmd", self._diagnose(boot)

    def test_unit_lets_the_daemon_pin_its_threads_under_sched_batch(
        self, boot: BootResult
    ) -> None:
        if int(boot.read("nproc") or "1") < 2:
            pytest.skip("the container has one CPU: nothing to pin")
        assert "cannot pin" not in boot.read("journal.txt"), self._diagnose(boot)
        cpus = boot.read("cpus").strip().splitlines()
        assert len(cpus) == 1 and cpus[0].split()[-1].isdigit(), cpus  # one CPU, all threads
        assert boot.read("policies").split() == ["SCHED_BATCH"], boot.read("policies")

    def test_unit_stops_cleanly(self, boot: BootResult) -> None:
        assert boot.read("stop.result").strip() == "success", self._diagnose(boot)

    def test_container_leaves_no_nspawn_state(self, boot: BootResult) -> None:
        assert not Path("/run/systemd/nspawn/propagate").exists() or not any(
            name.name.startswith("plasmd-test-")
            for name in Path("/run/systemd/nspawn/propagate").iterdir()
        )


# -- remove and purge -------------------------------------------------------------------------


def test_remove_keeps_config_and_state(installed: list[Path]) -> None:
    # The node key is a file of the state directory like this one: what keeps one keeps both.
    kept = STATE_DIR / "packaging-test-state"
    kept.write_text("journal and key live here")
    plasmd = pwd.getpwnam("plasmd")
    os.chown(kept, plasmd.pw_uid, plasmd.pw_gid)
    run(["dpkg", "--remove", PACKAGE], timeout=120)
    assert Path("/etc/plasmd/plasmd.toml").exists()
    assert kept.read_text() == "journal and key live here"
    assert not Path("/opt/plasmd").exists()
    assert not Path("/usr/bin/plasmd").exists()


def test_purge_leaves_nothing_behind(installed: list[Path]) -> None:
    purge()
    assert not is_installed()
    shared = {Path(p) for p in ("/", "/etc", "/lib", "/opt", "/usr", "/var", "/run")}
    left = [
        path
        for path in installed
        if path.exists() and path not in shared and not _is_shared_directory(path)
    ]
    extra = [
        Path(p)
        for p in (
            STATE_DIR,
            "/run/plasmd",
            "/etc/systemd/system/multi-user.target.wants/plasmd.service",
            "/var/lib/systemd/deb-systemd-helper-enabled/plasmd.service",
        )
    ]
    left += [path for path in extra if path.exists() or path.is_symlink()]
    assert left == []


def _is_shared_directory(path: Path) -> bool:
    """A directory other packages own too (/usr/bin, /usr/share/man/man1, ...)."""
    if not path.is_dir() or path.is_symlink():
        return False
    owners = run(["dpkg-query", "--search", str(path)], timeout=30, check=False)
    return owners.returncode == 0
