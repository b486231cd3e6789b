"""The cross-architecture comparison (scripts/crossarch.py, as scripts/cross-arch-demo runs it):
the example jobs with `plasmd execute-job --json` on this x86_64 host and in an arm64 Debian
root under qemu-user (a real aarch64 Python and wasmtime), their signed receipt bodies
byte-identical but for the fields that name the run; and an x86_64 and an aarch64
`plasmd run` on loopback running a job for each other.

The root is cached (~/.cache/plasm/cross-arch, or $PLASM_CROSSARCH_CACHE). When it is missing
or out of date, these tests build it (debootstrap and pip in the root: ~7 minutes here), so a
fresh machine, CI's included, runs them for real; `-m "not crossarch"` leaves them out.
PLASM_CROSSARCH_JOBS=quick runs one job of each kind instead of all.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.crossarch, pytest.mark.integration, pytest.mark.timeout(1800)]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crossarch", REPO / "scripts" / "crossarch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crossarch"] = module
    spec.loader.exec_module(module)
    return module


crossarch = _load()
JOBS = crossarch.select_jobs(os.environ.get("PLASM_CROSSARCH_JOBS", "all"))


@pytest.fixture(scope="module")
def root() -> Path:
    path: Path = crossarch.ensure_root(allow_build=True)  # built once, then cached
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Short: the daemons' Unix sockets live here (107 bytes at most).
    path = Path(tmp_path_factory.mktemp("xarch"))
    crossarch.prepare_work(path)
    return path


def test_the_root_runs_aarch64_python_and_aarch64_wasmtime(root: Path) -> None:
    info = crossarch.root_info(root)
    assert info["machine"] == "aarch64"
    assert info["libwasmtime_elf"] == "aarch64"
    from importlib.metadata import version

    assert info["wasmtime"] == version("wasmtime")  # the same engine as on this host


@pytest.mark.parametrize("job", JOBS, ids=[job.name for job in JOBS])
def test_a_job_signs_the_same_receipt_body_on_x86_64_and_aarch64(
    root: Path, work: Path, job: Any
) -> None:
    x86 = crossarch.run_job(job, work, "x86_64")
    arm = crossarch.run_job(job, work, "aarch64", root)
    assert x86.body["executor"] != arm.body["executor"]  # two nodes, two keys
    row = crossarch.comparison_rows([(x86, arm)])[0]
    assert row["differing_fields"] == [], row
    assert row["identical"], row
    assert (work / f"x86_64-{job.name}.json").is_file()
    assert (work / f"aarch64-{job.name}.json").is_file()
    if job.outputs:  # the files saved on both sides are the ones the receipts sign
        for arch in ("x86_64", "aarch64"):
            saved = sorted(p.relative_to(work / f"{arch}-{job.name}-output").as_posix()
                           for p in (work / f"{arch}-{job.name}-output").rglob("*") if p.is_file())
            assert saved == [o["path"].removeprefix("/output/") for o in x86.body["outputs"]]


def test_the_comparison_sees_a_difference(root: Path, work: Path) -> None:
    """Without the determinism profile the clock and the randomness are the host's: the
    bodies differ, and the comparison says in which fields."""
    job = crossarch.Job("clock-random-nondet", "clock_random.wasm",
                        options=("--determinism", "off"))
    x86 = crossarch.run_job(job, work, "x86_64")
    arm = crossarch.run_job(job, work, "aarch64", root)
    row = crossarch.comparison_rows([(x86, arm)])[0]
    assert not row["identical"]
    assert "stdout_sha256" in row["differing_fields"]
    # The same profile and the same input on both sides: only what the job saw differs.
    assert "profile" not in row["differing_fields"]
    assert "input_sha256" not in row["differing_fields"]
    assert x86.body["profile"] == arm.body["profile"] == "wasi-p1-nondet/1"


def test_stack_exhaustion_differs_in_fuel_only(root: Path, work: Path) -> None:
    """The known difference (docs/architecture.md): wasmtime's stack limit is bytes of native
    stack, so the call that traps comes after a different count on each architecture; the
    outcome and its message are the same, only the fuel burnt before it may differ."""
    job = crossarch.select_jobs("stack-exhaustion")[0]
    x86 = crossarch.run_job(job, work, "x86_64")
    arm = crossarch.run_job(job, work, "aarch64", root)
    assert x86.body["outcome"] == arm.body["outcome"] == "trap"
    assert x86.body["message"] == arm.body["message"]
    assert "call stack exhausted" in x86.body["message"]
    assert set(crossarch.differences(x86.fixed_body, arm.fixed_body)) <= {"fuel_consumed"}


@pytest.fixture(scope="module")
def each_way(root: Path, work: Path) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    yield crossarch.daemons_each_way(work, root, crossarch.REMOTE_JOB)


def test_an_aarch64_daemon_runs_a_job_for_an_x86_64_one_and_back(
    each_way: tuple[list[Any], dict[str, Any]]
) -> None:
    runs, caps = each_way
    assert caps["aarch64"]["arch"] == "aarch64"  # the record the x86_64 node verified
    assert caps["x86_64"]["arch"] == "x86_64"
    directions = [(run.requester, run.executor, run.how.split()[0]) for run in runs]
    assert directions == [("x86_64", "aarch64", "--on"), ("x86_64", "aarch64", "--anywhere"),
                          ("aarch64", "x86_64", "--on"), ("aarch64", "x86_64", "--anywhere")]
    # Each receipt verified offline (remote_job) and names the node that ran it; all four
    # bodies are the same but for the fields naming the run.
    assert runs[0].executor_peer == runs[1].executor_peer != runs[2].executor_peer
    fixed = [{k: v for k, v in run.body.items() if k not in crossarch.VOLATILE_FIELDS}
             for run in runs]
    assert all(body == fixed[0] for body in fixed)
    assert b"nan bits 7ff8000000000000 7ff8000000000000 7fc00000\n" in runs[0].stdout


def test_the_demo_script_prints_the_table_and_exits_0(root: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "crossarch.py"), str(tmp_path / "out"),
         "--jobs", "hello", "--no-daemons", "--no-build"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "│ hello" in run.stdout and "identical" in run.stdout
    assert (tmp_path / "out" / "x86_64-hello.json").is_file()
    assert (tmp_path / "out" / "aarch64-hello.json").is_file()
    assert (tmp_path / "out" / "comparison.json").is_file()


def test_the_demo_script_exits_1_when_a_body_differs(root: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "crossarch.py"), str(tmp_path / "out"),
         "--jobs", "stack-exhaustion", "--no-daemons", "--no-build"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "differs: fuel_consumed" in run.stdout
    assert "NOT identical" in run.stdout
