"""The cross-architecture demo's parts: an arm64 Debian root run under qemu-user, the example
jobs on both architectures, and the comparison of their receipt bodies.

``scripts/cross-arch-demo`` drives these; ``tests/crossarch/`` runs the same comparison under
the ``crossarch`` marker. Nothing here is emulated by Plasm itself: the root is a Debian
bookworm arm64 system made by ``debootstrap --arch arm64``; the kernel runs its binaries
through qemu-user-static (binfmt_misc, flag F), so its Python and its wasmtime (PyPI's aarch64
wheel) are real aarch64 code, and wasmtime's Cranelift emits aarch64 machine code for the jobs.

The root is built once and cached (``$PLASM_CROSSARCH_CACHE``, default
``$XDG_CACHE_HOME/plasm/cross-arch``, i.e. ``~/.cache/plasm/cross-arch``):

- ``bookworm-arm64/`` the root, with ``.plasm-base`` naming the debootstrap recipe it was
  made with (rebuilt from scratch when the recipe changes);
- ``/opt/plasm/venv`` inside it: Python's packages, pinned to the versions this checkout's
  .venv has (``.plasm-deps`` holds their hash: a changed dependency set rebuilds the venv only);
- ``/opt/plasm/src`` inside it: this checkout, copied and pip-installed again whenever its
  files changed (``.plasm-src`` holds their hash): cheap next to the rest.

Commands in the root run as ``unshare --mount`` + ``chroot``: /proc and /dev, and the host
folders a command needs, are mounted in a private mount namespace that disappears with the
process, so nothing stays mounted on the host, and the PID started is the PID of the job
(qemu runs the guest program in that same process).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from plasm.commands._exit import exit_status
from plasm.replay import PER_RUN_FIELDS

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "wasm-examples"

SUITE = "bookworm"
ARCH = "arm64"  # Debian's name; the kernel and Python say aarch64
MACHINE = "aarch64"
# What the root is made of. Changing this list (or RECIPE) rebuilds the root from scratch.
ROOT_PACKAGES = (
    "python3", "python3-venv", "python3-dev", "gcc", "libc6-dev", "libgmp-dev",
    "ca-certificates",
)  # fmt: skip
RECIPE = 1
VENV = "/opt/plasm/venv"
SRC = "/opt/plasm/src"
# What of the checkout the root's install needs (pyproject's package-dir mapping).
SOURCE_PARTS = ("pyproject.toml", "README.md", "plasm", "actors", "protocol", "runtime", "schemas")
HOST_APT = "qemu-user-static binfmt-support debootstrap"


class RootError(Exception):
    """The arm64 root cannot be built or used here; the message says why and what to do."""


def cache_dir() -> Path:
    explicit = os.environ.get("PLASM_CROSSARCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "plasm" / "cross-arch"


def root_dir() -> Path:
    return cache_dir() / f"{SUITE}-{ARCH}"


def log(message: str) -> None:
    print(f"cross-arch: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The host side: qemu's binfmt registration, the mirror, pip's configuration.


def check_host() -> None:
    if platform.machine() != "x86_64":
        raise RootError(f"this demo runs on an x86_64 host (this one is {platform.machine()})")
    if os.geteuid() != 0:
        raise RootError("building and entering the arm64 root (debootstrap, chroot) needs root")
    for tool in ("debootstrap", "qemu-aarch64-static", "unshare", "chroot"):
        if shutil.which(tool) is None:
            raise RootError(f"{tool} is missing: apt-get install {HOST_APT}")
    ensure_binfmt()


BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The ELF header of an aarch64 executable and the mask qemu's own registration uses.
_AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
_AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"


def binfmt_state() -> tuple[bool, str]:
    """(registered and enabled with flag F, what /proc says) for qemu-aarch64."""
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists():
        return False, "not registered"
    text = entry.read_text()
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("flags:")), "")
    return text.startswith("enabled") and "F" in flags, text.splitlines()[0] + f", flags {flags}"


def ensure_binfmt() -> None:
    """qemu-aarch64 registered with flag F (the kernel opens the interpreter when it is
    registered, so it need not exist inside the chroot)."""
    ok, _ = binfmt_state()
    if ok:
        return
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=False)
    if shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False,
                       capture_output=True)
    ok, state = binfmt_state()
    if ok:
        return
    if (BINFMT / "qemu-aarch64").exists():
        (BINFMT / "qemu-aarch64").write_text("-1")  # registered without F: replace it
    qemu = shutil.which("qemu-aarch64-static") or "/usr/bin/qemu-aarch64-static"
    try:
        (BINFMT / "register").write_text(
            f":qemu-aarch64:M::{_AARCH64_MAGIC}:{_AARCH64_MASK}:{qemu}:F\n"
        )
    except OSError as exc:
        raise RootError(f"cannot register qemu-aarch64 with binfmt_misc ({state}): {exc}") from exc
    ok, state = binfmt_state()
    if not ok:
        raise RootError(f"qemu-aarch64 is not usable through binfmt_misc: {state}")


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), for debootstrap."""
    override = os.environ.get("PLASM_CROSSARCH_MIRROR")
    if override:
        return override
    candidates: list[Path] = [Path("/etc/apt/sources.list")]
    parts = Path("/etc/apt/sources.list.d")
    if parts.is_dir():
        candidates += sorted(parts.iterdir())
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in text.split("\n\n"):
            lines = [line.strip() for line in stanza.splitlines()
                     if line.strip() and not line.strip().startswith("#")]
            if path.suffix == ".sources" or any(line.startswith("URIs:") for line in lines):
                fields = dict(line.split(":", 1) for line in lines if ":" in line)
                suites = fields.get("Suites", "").split()
                for uri in fields.get("URIs", "").split():
                    if SUITE in suites and "security" not in uri:
                        return uri
            for line in lines:
                words = line.split()
                if len(words) >= 3 and words[0] == "deb" and SUITE in words:
                    uri = next(word for word in words[1:] if "://" in word)
                    if "security" not in uri:
                        return uri
    return "http://deb.debian.org/debian"


def pip_files() -> dict[str, bytes]:
    """pip's configuration files on this host, by the path they get in the root (the same
    path; the home folder's become /root's): the root's pip then reads the same settings."""
    home = Path.home()
    copied: dict[str, bytes] = {}
    for path in (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"),
                 Path("/etc/xdg/pip/constraints.txt"), home / ".config/pip/pip.conf",
                 home / ".pip/pip.conf"):
        if path.is_file():
            inside_home = path.is_relative_to(home)
            guest = f"/root/{path.relative_to(home)}" if inside_home else str(path)
            copied[guest] = path.read_bytes()
    return copied


def pip_environment() -> dict[str, str]:
    """pip's PIP_* settings from this environment, for pip in the root; the CA bundle is the
    host's (a proxy's CA may be in it), copied into the root at a fixed path."""
    env = {key: value for key, value in os.environ.items() if key.startswith("PIP_")}
    env["PIP_CERT"] = "/etc/plasm-host-ca.crt"
    return env


def host_ca_bundle() -> bytes:
    for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


# ---------------------------------------------------------------------------------------------
# What the root's Python installs: plasm's runtime dependencies at the host .venv's versions.


def pinned_requirements(top: str = "plasm") -> list[str]:
    """``name==version`` for every distribution ``top`` needs at run time (no extras),
    transitively, as installed in this interpreter's environment; sorted."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(top, frozenset())]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise RootError(f"{name} is not installed in {sys.prefix}: run scripts/test or "
                            f"scripts/demo once to make .venv") from exc
        key = canonicalize_name(name)
        if key != canonicalize_name(top):
            pins[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def top_level_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def _digest(parts: Iterable[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def base_recipe() -> str:
    return _digest([str(RECIPE), SUITE, ARCH, *ROOT_PACKAGES])


def deps_recipe() -> str:
    return _digest([base_recipe(), *top_level_requirements(), "--", *pinned_requirements()])


def source_files() -> list[Path]:
    found: list[Path] = []
    for part in SOURCE_PARTS:
        path = REPO / part
        if path.is_file():
            found.append(path)
        else:
            found += sorted(p for p in path.rglob("*") if p.is_file()
                            and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return found


def source_recipe() -> str:
    parts: list[str | bytes] = [deps_recipe()]
    for path in source_files():
        parts += [str(path.relative_to(REPO)), path.read_bytes()]
    return _digest(parts)


# ---------------------------------------------------------------------------------------------
# Running commands inside the root.

_ENTER = r"""
set -e
root="$1"; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
while [ "$1" != "--" ]; do
    mkdir -p "$root$1"
    mount --bind "$1" "$root$1"
    shift
done
shift
exec chroot "$root" "$@"
"""


def root_command(argv: Sequence[str], *, binds: Sequence[Path | str] = (),
                 env: dict[str, str] | None = None, root: Path | None = None) -> list[str]:
    """The host command that runs ``argv`` inside the root, with each of ``binds`` (host
    folders) mounted at the same path inside it; ``env`` is the whole environment."""
    root = root or root_dir()
    environment = {
        "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
        **{key: value for key, value in os.environ.items() if key.startswith("PLASM_")
           and key != "PLASM_CROSSARCH_CACHE"},
        **(env or {}),
    }
    return [
        "unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER, "enter",
        str(root), *(str(Path(b).resolve()) for b in binds), "--",
        "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in environment.items()), *argv,
    ]


def run_in_root(argv: Sequence[str], *, binds: Sequence[Path | str] = (),
                env: dict[str, str] | None = None, root: Path | None = None,
                check: bool = True, capture: bool = False,
                log_to: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` in the root; ``capture`` its output, or append it to ``log_to``."""
    command = root_command(argv, binds=binds, env=env, root=root)
    if log_to is not None:
        with open(log_to, "ab") as sink:
            sink.write(f"\n$ {' '.join(argv)}\n".encode())
            sink.flush()
            run = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=sink,
                                 stderr=subprocess.STDOUT, check=False)
    else:
        run = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=capture,
                             check=False)
    if check and run.returncode != 0:
        if log_to is not None:
            detail = log_to.read_text(errors="replace")[-4000:] + f"\n(whole log: {log_to})"
        else:
            detail = (run.stderr or b"").decode(errors="replace")[-4000:] if capture else ""
        raise RootError(f"in the arm64 root, {' '.join(argv)} exited {run.returncode}\n{detail}")
    return run


# ---------------------------------------------------------------------------------------------
# Building the root (once), its venv (when the dependencies change), the project (each run).


def _stamp(root: Path, name: str) -> str:
    path = root / name
    return path.read_text().strip() if path.is_file() else ""


def root_status() -> str:
    """``ready``, ``stale`` (exists, something to redo) or ``missing``."""
    root = root_dir()
    if _stamp(root, ".plasm-base") != base_recipe():
        return "missing"
    if _stamp(root, ".plasm-deps") != deps_recipe():
        return "stale"
    return "ready"


def ensure_root(*, allow_build: bool = True) -> Path:
    """The arm64 root with this checkout installed, built or brought up to date as needed.

    ``allow_build=False``: only reinstall the project into a root whose base and venv are
    current; ``RootError`` if they are not."""
    import fcntl

    root = root_dir()
    status = root_status()
    if status != "ready" and not allow_build:
        raise RootError(f"the arm64 root at {root} is {status} and building is not allowed")
    check_host()
    cache_dir().mkdir(parents=True, exist_ok=True)
    # One builder at a time (two demos, or a demo and the tests, share the cache).
    with open(cache_dir() / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        if root_status() == "missing":
            build_base(root)
        if _stamp(root, ".plasm-deps") != deps_recipe():
            build_venv(root)
        if _stamp(root, ".plasm-src") != source_recipe():
            install_source(root)
    log(f"arm64 root ready at {root} ({time.monotonic() - started:.0f} s)")
    return root


def build_base(root: Path) -> None:
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        log(f"removing an unfinished root at {partial}")
        shutil.rmtree(partial)
    if root.exists():
        log(f"removing the root at {root}: it was made from another recipe")
        shutil.rmtree(root)
    partial.parent.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    log(f"debootstrap --arch {ARCH} {SUITE} from {mirror} (first run only: several minutes)")
    started = time.monotonic()
    command = ["debootstrap", f"--arch={ARCH}", "--variant=minbase",
               f"--include={','.join(ROOT_PACKAGES)}", SUITE, str(partial), mirror]
    run = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if run.returncode != 0:
        tail = (run.stdout + run.stderr).decode(errors="replace")[-3000:]
        debootstrap_log = partial / "debootstrap" / "debootstrap.log"
        if debootstrap_log.is_file():
            tail += "\n" + debootstrap_log.read_text(errors="replace")[-3000:]
        raise RootError(f"debootstrap failed ({run.returncode}):\n{tail}")
    (partial / ".plasm-base").write_text(base_recipe() + "\n")
    partial.rename(root)
    log(f"base system made in {time.monotonic() - started:.0f} s")


def _write(root: Path, guest_path: str, data: bytes) -> None:
    target = root / guest_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _host_files(root: Path) -> None:
    """Name resolution and pip's configuration, as on the host (refreshed on every build)."""
    for name in ("/etc/resolv.conf", "/etc/hosts"):
        if Path(name).is_file():
            target = root / name.lstrip("/")
            if target.is_symlink():
                target.unlink()
            _write(root, name, Path(name).read_bytes())
    for guest_path, data in pip_files().items():
        _write(root, guest_path, data)
    _write(root, "/etc/plasm-host-ca.crt", host_ca_bundle())


def build_venv(root: Path) -> None:
    _host_files(root)
    (root / ".plasm-deps").unlink(missing_ok=True)
    (root / ".plasm-src").unlink(missing_ok=True)
    venv = root / VENV.lstrip("/")
    if venv.exists():
        shutil.rmtree(venv)
    started = time.monotonic()
    log("making the root's venv and installing plasm's dependencies (aarch64 wheels where "
        "PyPI has them, the rest compiled in the root: first run only, several minutes)")
    _write(root, "/opt/plasm/requirements.txt", "\n".join(top_level_requirements()).encode())
    _write(root, "/opt/plasm/pins.txt", "\n".join(pinned_requirements()).encode())
    env = pip_environment()
    build_log = cache_dir() / "venv-build.log"
    build_log.write_text("")
    log(f"pip's output goes to {build_log}")
    run_in_root(["/usr/bin/python3", "-m", "venv", VENV], root=root, env=env, log_to=build_log)
    pip = [f"{VENV}/bin/python", "-m", "pip", "install", "--disable-pip-version-check",
           "--progress-bar", "off"]
    run_in_root([*pip, "setuptools>=68", "wheel"], root=root, env=env, log_to=build_log)
    run_in_root([*pip, "-r", "/opt/plasm/requirements.txt", "-c", "/opt/plasm/pins.txt"],
                root=root, env=env, log_to=build_log)
    run_in_root([f"{VENV}/bin/python", "-c", "import wasmtime, nacl, libp2p, uvloop"],
                root=root, env=env, log_to=build_log)
    (root / ".plasm-deps").write_text(deps_recipe() + "\n")
    log(f"venv made in {time.monotonic() - started:.0f} s")


def install_source(root: Path) -> None:
    started = time.monotonic()
    src = root / SRC.lstrip("/")
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for path in source_files():
        target = src / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    run_in_root([f"{VENV}/bin/python", "-m", "pip", "install", "--no-deps", "--no-index",
                 "--no-build-isolation", "--disable-pip-version-check", "-q", SRC],
                root=root, env=pip_environment(), capture=True)
    shutil.rmtree(src / "build", ignore_errors=True)
    (root / ".plasm-src").write_text(source_recipe() + "\n")
    log(f"this checkout installed in the root in {time.monotonic() - started:.0f} s")


_ROOT_INFO = """
import importlib.metadata, pathlib, platform, wasmtime
lib = next(p for p in pathlib.Path(wasmtime.__file__).parent.rglob("*libwasmtime*.so"))
header = lib.read_bytes()[:20]
print(platform.machine(), platform.python_version(), importlib.metadata.version("wasmtime"),
      {183: "aarch64", 62: "x86_64"}.get(int.from_bytes(header[18:20], "little"), "other"))
"""


def root_info(root: Path | None = None) -> dict[str, str]:
    """What runs in the root: Python's machine and version, wasmtime's version, and the
    machine its native library (_libwasmtime.so, read from its ELF header) is built for."""
    run = run_in_root([f"{VENV}/bin/python", "-c", _ROOT_INFO], root=root, capture=True)
    machine, python, wasmtime, library = run.stdout.decode().split()
    return {"machine": machine, "python": python, "wasmtime": wasmtime,
            "libwasmtime_elf": library}


# ---------------------------------------------------------------------------------------------
# The example jobs, on both architectures, and what their receipts must share.

# The receipt body's fields that name this run rather than the job (job_id, nonce, requester,
# executor, started_at_ms, finished_at_ms, wall_time_us: what `plasmd replay` ignores too);
# everything else must be byte-identical across architectures, fuel_consumed included.
VOLATILE_FIELDS = PER_RUN_FIELDS
# Limits given to every job on both sides (they are part of the receipt body): generous wall
# and compile limits, since under qemu wasmtime's compiler and the job run several times slower.
JOB_LIMITS = ("--timeout", "300", "--max-compile-ms", "120000")
SUBMIT_LIMITS = ("--timeout", "300")  # a daemon's compile limit is its own config's


@dataclass(frozen=True)
class Job:
    """One example job: a module of wasm-examples/ with its arguments, stdin and files."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    stdin: str | None = None
    inputs: tuple[tuple[str, str], ...] = ()  # (guest path, file name in the inputs folder)
    outputs: bool = False  # saves /output with --output-dir
    options: tuple[str, ...] = ()  # more execute-job / submit options (limits)


# The input files of the file job: made by the demo, the same bytes on both sides.
INPUT_FILES = {
    "b.txt": b"hello\n",
    "notes.md": b"# Notes\n\nA file job: read under /input, hashes written under /output.\n",
}

JOBS = (
    Job("hello", "hello.wasm", ("Hello, World",)),
    Job("primes", "primes.wasm", ("100000",)),
    Job("clock-random-floats", "clock_floats.wasm", ("2000",)),
    Job("clock-random", "clock_random.wasm"),
    Job("floats", "floats.wasm", ("20000",)),
    Job("wc", "wc.wasm", stdin="one two\nthree\n"),
    Job("sha256sum-files", "sha256sum.wasm",
        inputs=(("/input/b.txt", "b.txt"), ("/input/docs/notes.md", "notes.md")), outputs=True),
    # How jobs end other than ok: a trap (wasmtime's signal handler under qemu), fuel running
    # out at an exact count, and the memory limit.
    Job("trap", "trap.wasm"),
    Job("out-of-fuel", "loop.wasm", options=("--fuel", "1000000")),
    Job("memory-limit", "membomb.wasm"),
)
# Jobs whose receipts are known to differ between architectures: only run when named
# (docs/architecture.md, "Across architectures"). The call stack's limit is bytes of native
# stack, and x86_64 and aarch64 frames differ, so the trap comes after another call count.
KNOWN_DIFFERENT = (Job("stack-exhaustion", "stackbomb.wasm"),)
# What the two daemons run for each other: clocks, randomness and floats, over the network.
REMOTE_JOB = JOBS[2]
# The smaller set CI runs (tests/crossarch, PLASM_CROSSARCH_JOBS=quick): one of each kind.
QUICK_JOBS = ("hello", "clock-random-floats", "sha256sum-files")


def select_jobs(spec: str | None) -> tuple[Job, ...]:
    """``None``/``all``: every job; ``quick``: QUICK_JOBS; else comma-separated names."""
    if spec in (None, "", "all"):
        return JOBS
    names = QUICK_JOBS if spec == "quick" else tuple(n.strip() for n in spec.split(","))
    by_name = {job.name: job for job in (*JOBS, *KNOWN_DIFFERENT)}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return tuple(by_name[name] for name in names)


def job_arguments(job: Job, work: Path, arch: str) -> list[str]:
    argv = ["execute-job", "--json", "--state-dir", str(work / f"{arch}-state"), *JOB_LIMITS,
            *job.options]
    if job.stdin is not None:
        argv += ["--stdin", job.stdin]
    for guest, name in job.inputs:
        argv += ["--input", f"{guest}={work / 'inputs' / name}"]
    if job.outputs:
        out = work / f"{arch}-{job.name}-output"
        shutil.rmtree(out, ignore_errors=True)
        argv += ["--output-dir", str(out)]
    argv += [str(EXAMPLES / job.module), "--", *job.args]
    return argv


def prepare_work(work: Path) -> None:
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for name, data in INPUT_FILES.items():
        (inputs / name).write_bytes(data)


@dataclass
class Run:
    """One job's result on one architecture: the saved JSON and its verified receipt body."""

    arch: str
    job: Job
    result: dict[str, Any]
    body: dict[str, Any]  # the CBOR body map, verified against the result's bytes
    seconds: float

    @property
    def fixed_body(self) -> dict[str, Any]:
        return {k: v for k, v in self.body.items() if k not in VOLATILE_FIELDS}


def verified_body(saved: bytes) -> dict[str, Any]:
    """The receipt body of a saved ``--json`` result, after the offline checks ``plasmd
    verify`` makes (signature, and the result's stdout, stderr and files against it)."""
    from plasm.protocol.receipt import receipt_to_body
    from plasm.protocol.verification import expectations_from_saved, verified_receipt

    envelope, expected = expectations_from_saved(saved)
    return receipt_to_body(verified_receipt(envelope, expected))


def run_job(job: Job, work: Path, arch: str, root: Path | None = None) -> Run:
    """Run ``job`` with ``plasmd execute-job --json`` on ``arch`` (x86_64 here, aarch64 in the
    root); the result goes to ``work/<arch>-<job>.json``."""
    argv = job_arguments(job, work, arch)
    started = time.monotonic()
    if arch == MACHINE:
        run = run_in_root([f"{VENV}/bin/plasmd", *argv], binds=[work, EXAMPLES], root=root,
                          check=False, capture=True)
    else:
        run = subprocess.run([sys.executable, "-m", "plasm.cli", *argv], capture_output=True,
                             stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - started
    (work / f"{arch}-{job.name}.json").write_bytes(run.stdout)
    if not run.stdout.strip():
        raise RootError(f"{job.name} on {arch}: execute-job exited {run.returncode}:\n"
                        + run.stderr.decode(errors="replace")[-3000:])
    result = orjson.loads(run.stdout)
    outcome = result["outcome"]
    expected = exit_status(outcome["kind"], outcome.get("exit_code"))
    if run.returncode != expected:  # the job's own status (a trap: 134, ...), else a failure
        raise RootError(f"{job.name} on {arch}: execute-job exited {run.returncode}, not "
                        f"{expected} for {outcome['kind']}:\n"
                        + run.stderr.decode(errors="replace")[-3000:])
    return Run(arch, job, result, verified_body(run.stdout), seconds)


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k, "(absent)") != b.get(k, "(absent)"))


def identical(a: Run, b: Run) -> bool:
    from plasm.protocol import cbor

    return bool(cbor.dumps(a.fixed_body) == cbor.dumps(b.fixed_body))


def comparison_rows(pairs: Sequence[tuple[Run, Run]]) -> list[dict[str, Any]]:
    rows = []
    for x86, arm in pairs:
        same = identical(x86, arm)
        rows.append({
            "job": x86.job.name,
            "fuel_x86_64": x86.body["fuel_consumed"],
            "fuel_aarch64": arm.body["fuel_consumed"],
            "stdout_sha256": [x86.body["stdout_sha256"].hex(), arm.body["stdout_sha256"].hex()],
            "outputs": [[(o["path"], o["sha256"].hex()) for o in run.body["outputs"]]
                        for run in (x86, arm)],
            "outcome": [x86.body["outcome"], arm.body["outcome"]],
            "seconds": [round(x86.seconds, 2), round(arm.seconds, 2)],
            "identical": same,
            "differing_fields": [] if same else differences(x86.fixed_body, arm.fixed_body),
        })
    return rows


def _short(values: Sequence[str]) -> str:
    if len(set(values)) == 1:
        return values[0][:16]
    return " / ".join(v[:16] for v in values)


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="the same jobs on x86_64 and aarch64 (receipt bodies compared)")
    for column in ("job", "fuel x86_64", "fuel aarch64", "stdout sha256", "output files",
                   "seconds x86/arm", "receipt body"):
        table.add_column(column)
    for row in rows:
        outputs = [", ".join(f"{path.removeprefix('/output/')} {digest[:12]}"
                             for path, digest in files) or "-" for files in row["outputs"]]
        table.add_row(
            row["job"], f"{row['fuel_x86_64']:,}", f"{row['fuel_aarch64']:,}",
            _short(row["stdout_sha256"]), outputs[0] if outputs[0] == outputs[1]
            else " / ".join(outputs), "{} / {}".format(*row["seconds"]),
            "identical" if row["identical"] else "differs: " + ", ".join(row["differing_fields"]),
        )
    Console(width=160).print(table)


# ---------------------------------------------------------------------------------------------
# Two daemons: x86_64 on the host, aarch64 in the root, joined on loopback.

DAEMON_START_S = 180.0  # an emulated daemon imports and starts several times slower
JOIN_TIMEOUT_S = 180.0
REMOTE_WAIT_S = 300


@dataclass
class Node:
    """A ``plasmd run`` on one architecture, its API socket in the shared work folder."""

    arch: str
    work: Path
    root: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    peer_id: str = ""
    address: str = ""

    @property
    def socket(self) -> Path:
        return self.work / f"{self.arch}.sock"

    @property
    def log_path(self) -> Path:
        return self.work / f"{self.arch}-daemon.log"

    def plasmd(self, *argv: str) -> list[str]:
        """The command running ``plasmd ARGV`` on this node's architecture."""
        if self.arch == MACHINE:
            return root_command([f"{VENV}/bin/plasmd", *argv], binds=[self.work, EXAMPLES],
                                root=self.root)
        return [sys.executable, "-m", "plasm.cli", *argv]

    def start(self, *extra: str) -> Node:
        self.socket.unlink(missing_ok=True)
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                self.plasmd("run", "--state-dir", str(self.work / f"{self.arch}-node"),
                            "--socket", str(self.socket), "--log-format", "json",
                            "--listen", "/ip4/127.0.0.1/tcp/0", *extra),
                stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL,
            )
        self.wait_ready()
        node = self.client().node()
        self.peer_id = str(node["peer_id"])
        self.address = str(node["addresses"][0])
        return self

    def client(self, timeout: float = 60.0) -> Any:
        from plasm.client import Client

        return Client(self.socket, timeout=timeout)

    def wait_ready(self) -> None:
        from plasm.client import ClientError

        deadline = time.monotonic() + DAEMON_START_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RootError(f"the {self.arch} plasmd exited with {self.proc.returncode}:\n"
                                + self.log_path.read_text(errors="replace")[-3000:])
            if self.socket.exists():
                try:
                    with self.client(timeout=5) as client:
                        client.health()
                    return
                except (ClientError, OSError):
                    pass
            time.sleep(0.2)
        raise RootError(f"the {self.arch} plasmd did not answer in {DAEMON_START_S:.0f} s")

    def stop(self) -> None:
        """SIGTERM by PID (qemu runs the emulated daemon in the PID we started), then KILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def verified_capabilities(self, peer_id: str) -> dict[str, Any] | None:
        with self.client() as client:
            for peer in client.peers():
                if peer["peer_id"] == peer_id and peer.get("capabilities"):
                    return dict(peer["capabilities"])
        return None

    def submit(self, job: Job, *placement: str) -> tuple[dict[str, Any], bytes]:
        """``plasmd submit --wait --json`` on this node's architecture (its own CLI against
        its own socket); the answer and its raw bytes."""
        argv = ["submit", "--socket", str(self.socket), f"--wait={REMOTE_WAIT_S}", "--json",
                *SUBMIT_LIMITS, *job.options, *placement]
        if job.stdin is not None:
            argv += ["--stdin", job.stdin]
        argv += [str(EXAMPLES / job.module), "--", *job.args]
        run = subprocess.run(self.plasmd(*argv), capture_output=True, stdin=subprocess.DEVNULL,
                             check=False, timeout=REMOTE_WAIT_S + 120)
        if run.returncode != 0:
            raise RootError(f"plasmd submit {' '.join(placement)} from {self.arch} exited "
                            f"{run.returncode}:\n{run.stderr.decode(errors='replace')[-3000:]}"
                            f"\n{run.stdout.decode(errors='replace')[-2000:]}")
        return orjson.loads(run.stdout), run.stdout


@dataclass
class Remote:
    """One job one node ran for the other, checked."""

    requester: str
    executor: str
    how: str
    job: str
    executor_peer: str
    body: dict[str, Any]
    stdout: bytes


def wait_joined(a: Node, b: Node) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both nodes have verified each other's capability record; (a's of b, b's of a)."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while time.monotonic() < deadline:
        of_b, of_a = a.verified_capabilities(b.peer_id), b.verified_capabilities(a.peer_id)
        if of_b and of_a:
            return of_b, of_a
        time.sleep(0.5)
    raise RootError(f"the nodes did not verify each other's capability record in "
                    f"{JOIN_TIMEOUT_S:.0f} s")


def remote_job(requester: Node, executor: Node, job: Job, *placement: str) -> Remote:
    """``job`` submitted to ``requester`` with ``placement``: it must run on ``executor``,
    and its receipt must verify offline here, naming ``executor``."""
    answer, raw = requester.submit(job, *placement)
    if "receipt" not in answer:
        raise RootError(f"{job.name} {' '.join(placement)}: no receipt: {answer}")
    body = verified_body(raw)
    signer = answer["receipt"]["executor"]
    if answer.get("executor") != executor.peer_id or signer != executor.peer_id:
        raise RootError(f"{job.name} {' '.join(placement)} ran on {answer.get('executor')} "
                        f"(receipt by {signer}), not on the {executor.arch} node "
                        f"{executor.peer_id}")
    import base64

    return Remote(requester.arch, executor.arch, " ".join(placement), job.name, signer, body,
                  base64.b64decode(answer["stdout"]))


def daemons_each_way(work: Path, root: Path, job: Job) -> tuple[list[Remote], dict[str, Any]]:
    """An x86_64 and an aarch64 ``plasmd run`` on loopback, joined; ``job`` from x86_64 on
    aarch64 (``--on``, then ``--anywhere --require arch=aarch64``) and from aarch64 on x86_64
    (``--on``, then ``--anywhere --require arch=x86_64``). Returns the runs and the
    capability records each node verified of the other."""
    x86 = Node("x86_64", work)
    arm = Node(MACHINE, work, root)
    try:
        x86.start()
        log(f"x86_64 node {x86.peer_id} at {x86.address}")
        arm.start("--bootstrap", x86.address)
        log(f"aarch64 node {arm.peer_id} at {arm.address} (in the arm64 root)")
        arm_caps, x86_caps = wait_joined(x86, arm)
        if arm_caps.get("arch") != MACHINE or x86_caps.get("arch") != "x86_64":
            raise RootError(f"capability records say arch {arm_caps.get('arch')!r} for the "
                            f"arm64 node and {x86_caps.get('arch')!r} for the x86_64 one")
        runs = [
            remote_job(x86, arm, job, "--on", arm.peer_id),
            remote_job(x86, arm, job, "--anywhere", "--require", f"arch={MACHINE}"),
            remote_job(arm, x86, job, "--on", x86.peer_id),
            remote_job(arm, x86, job, "--anywhere", "--require", "arch=x86_64"),
        ]
    finally:
        arm.stop()
        x86.stop()
    return runs, {"aarch64": arm_caps, "x86_64": x86_caps}


# ---------------------------------------------------------------------------------------------
# scripts/cross-arch-demo


def demo(argv: Sequence[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(
        prog="cross-arch-demo",
        description="Run the example jobs on x86_64 and on aarch64 (an arm64 Debian root under "
        "qemu-user), compare their receipt bodies, and run a job each way between an x86_64 "
        "and an aarch64 plasmd. Exit 0 only when every deterministic receipt field is "
        "byte-identical across the two architectures and every remote job verified.")
    parser.add_argument("outdir", nargs="?", type=Path, default=None,
                        help="where the results go (default: a new folder under /tmp)")
    parser.add_argument("--jobs", default=os.environ.get("PLASM_CROSSARCH_JOBS", "all"),
                        help="all (default), quick (" + ", ".join(QUICK_JOBS) + "), or names: "
                        + ", ".join(job.name for job in (*JOBS, *KNOWN_DIFFERENT))
                        + " (" + ", ".join(job.name for job in KNOWN_DIFFERENT)
                        + " is known to differ and runs only when named)")
    parser.add_argument("--no-build", action="store_true",
                        help="fail instead of building the arm64 root when it is missing")
    parser.add_argument("--no-daemons", action="store_true",
                        help="only compare the jobs; skip the two daemons")
    args = parser.parse_args(argv)
    jobs = select_jobs(args.jobs)
    started = time.monotonic()
    try:
        root = ensure_root(allow_build=not args.no_build)
        info = root_info(root)
        if info["machine"] != MACHINE or info["libwasmtime_elf"] != MACHINE:
            raise RootError(f"the arm64 root is not aarch64 through and through: {info}")
        log(f"arm64 root: Python {info['python']} on {info['machine']}, wasmtime "
            f"{info['wasmtime']} (_libwasmtime.so: ELF {info['libwasmtime_elf']}); "
            f"host: Python {platform.python_version()} on {platform.machine()}")
        out = (args.outdir or Path(tempfile.mkdtemp(prefix="plasm-xarch-"))).resolve()
        out.mkdir(parents=True, exist_ok=True)
        prepare_work(out)
        log(f"results in {out}")
        pairs = []
        for job in jobs:
            pair = (run_job(job, out, "x86_64"), run_job(job, out, MACHINE, root))
            log(f"{job.name}: {pair[0].seconds:.1f} s on x86_64, {pair[1].seconds:.1f} s on "
                "aarch64")
            pairs.append(pair)
        rows = comparison_rows(pairs)
        print_table(rows)
        same = all(row["identical"] for row in rows)
        report: dict[str, Any] = {"jobs": rows}
        remote_ok = True
        if not args.no_daemons:
            runs, caps = daemons_each_way(out, root, REMOTE_JOB)
            reference = runs[0].body
            print("\nplasmd run on x86_64 (host) and on aarch64 (arm64 root), joined on loopback "
                  "(each receipt body compared with the first's):")
            print(f"  capability records: aarch64 node says arch={caps['aarch64']['arch']}, "
                  f"x86_64 node says arch={caps['x86_64']['arch']}")
            for remote in runs:
                fixed = {k: v for k, v in remote.body.items() if k not in VOLATILE_FIELDS}
                ref = {k: v for k, v in reference.items() if k not in VOLATILE_FIELDS}
                agrees = fixed == ref
                remote_ok = remote_ok and agrees
                print(f"  {remote.requester} -> {remote.executor} ({remote.how}): {remote.job} "
                      f"ran on {remote.executor_peer[:16]}..., receipt verified, stdout sha256 "
                      f"{remote.body['stdout_sha256'].hex()[:16]}, body "
                      f"{'identical' if agrees else 'DIFFERS'}")
            report["remote"] = [
                {"requester": r.requester, "executor": r.executor, "placement": r.how,
                 "job": r.job, "executor_peer": r.executor_peer,
                 "identical_body": {k: v for k, v in r.body.items() if k not in VOLATILE_FIELDS}
                 == {k: v for k, v in reference.items() if k not in VOLATILE_FIELDS}}
                for r in runs
            ]
            report["capabilities"] = caps
        (out / "comparison.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    except RootError as exc:
        log(str(exc))
        return 1
    verdict = "identical" if same and remote_ok else "NOT identical"
    print(f"\nreceipt bodies across x86_64 and aarch64: {verdict} "
          f"({len(rows)} jobs{'' if args.no_daemons else ', a job each way between daemons'}; "
          f"{time.monotonic() - started:.0f} s)")
    return 0 if same and remote_ok else 1


def build_only() -> int:
    """``python scripts/crossarch.py build``: build or refresh the root, print its path."""
    try:
        print(ensure_root())
    except RootError as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        sys.exit(build_only())
    sys.exit(demo(sys.argv[1:]))
