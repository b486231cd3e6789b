"""The virtual filesystem (runtime/_vfs.py) as a real wasi-libc C program sees it.

tests/runtime/c/fsprobe.c is built with the examples' clang flags (wasm-examples/build.py)
and run in a real Sandbox; each of its arguments is one file operation and one line of output
("OP ok ..." or "OP err <wasi errno>").
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from plasm.runtime import _vfs as v
from plasm.runtime.job import JobInput, Limits, Outcome, OutcomeKind
from plasm.runtime.sandbox import Sandbox

HERE = Path(__file__).resolve().parent
BUILD = HERE.parents[1] / "wasm-examples" / "build.py"
INPUTS = (
    ("/input/in.txt", b"hello input"),
    ("/input/sub/b", b"B"),
    ("/data/x.svg", b"<svg/>"),
    ("/input/a", b"A"),
)

Probe = Callable[..., tuple[Outcome, list[str]]]


@pytest.fixture(scope="module")
def fsprobe() -> bytes:
    spec = importlib.util.spec_from_file_location("wasm_examples_build", BUILD)
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.build_c(HERE / "c" / "fsprobe.c")


@pytest.fixture
def probe(sandbox: Sandbox, fsprobe: bytes) -> Probe:
    module = sandbox.compile(fsprobe)

    def run(*ops: str, files: tuple[tuple[str, bytes], ...] = INPUTS,
            limits: Limits | None = None) -> tuple[Outcome, list[str]]:
        outcome = sandbox.run(module, JobInput(args=ops, files=files), limits or Limits())
        assert outcome.kind is OutcomeKind.OK, outcome
        lines = outcome.stdout.decode().splitlines()
        assert len(lines) == len(ops), lines
        return outcome, lines

    return run


def test_input_files_are_readable_at_the_paths_the_job_names(probe: Probe) -> None:
    _, lines = probe("read:/input/in.txt", "read:/data/x.svg", "read:/input/sub/b")
    assert lines == ["read ok 11 hello input", "read ok 6 <svg/>", "read ok 1 B"]


def test_stat_is_fixed_timestamps_fixed_dev_and_inodes_in_creation_order(probe: Probe) -> None:
    _, lines = probe("stat:/", "stat:/data/x.svg", "fstat:/input/in.txt", "stat:/output")
    assert lines == [
        "stat ok ino=1 size=0 type=dir nlink=1 dev=1 atime=0 mtime=0 ctime=0",
        "stat ok ino=4 size=6 type=file nlink=1 dev=1 atime=0 mtime=0 ctime=0",
        "fstat ok ino=6 size=11 type=file nlink=1 dev=1 atime=0 mtime=0 ctime=0",
        "stat ok ino=9 size=0 type=dir nlink=1 dev=1 atime=0 mtime=0 ctime=0",
    ]


@pytest.mark.parametrize("op", [
    "write:/input/in.txt:x", "append:/input/in.txt:x", "openw:/input/in.txt",
    "unlink:/input/in.txt", "remove:/input/a", "rename:/input/a:/output/a",
    "rename:/output:/out", "mkdir:/input/new", "write:/input/new:x", "write:/new:x",
    "rmdir:/input/sub", "rmdir:/output", "truncate:/input/a:0",
])
def test_inputs_and_the_tree_above_output_are_read_only(probe: Probe, op: str) -> None:
    outcome, lines = probe(op, "read:/input/in.txt", "read:/input/a")
    assert lines[0].endswith(f"err {v.EROFS}")
    assert lines[1:] == ["read ok 11 hello input", "read ok 1 A"]
    assert outcome.output_files == ()


def test_outputs_come_back_with_their_exact_bytes_sorted_by_path(probe: Probe) -> None:
    outcome, lines = probe(
        "write:/output/z.txt:last", "mkdir:/output/d", "mkdir:/output/d/e",
        "write:/output/d/e/deep:nested", "write:/output/a:first", "append:/output/a:+more",
        "mkdir:/output/empty", "write:/output/gone:x", "unlink:/output/gone",
    )
    assert all(" ok" in line for line in lines), lines
    assert outcome.output_files == (
        ("/output/a", b"first+more"),
        ("/output/d/e/deep", b"nested"),
        ("/output/z.txt", b"last"),
    )
    assert not outcome.outputs_truncated


def test_readdir_lists_dot_entries_then_names_sorted(probe: Probe) -> None:
    files = (("/input/zeta", b""), ("/input/Alpha", b""), ("/input/beta", b""), ("/input/_", b""))
    _, lines = probe("write:/output/m:", "write:/output/b:", "mkdir:/output/a",
                     "ls:/input", "ls:/output", "ls:/", files=files)
    assert lines[3:] == [
        "ls ok .,..,Alpha,_,beta,zeta", "ls ok .,..,a,b,m", "ls ok .,..,input,output"]


def test_dot_dot_never_leaves_the_root_and_the_host_is_invisible(probe: Probe) -> None:
    _, lines = probe("read:/etc/passwd", "read:/input/../../../etc/passwd", "stat:/proc",
                     "read:/../../input/a", "ls:/..", "chdir:/input", "cwdread:../../etc/hostname",
                     "cwdread:../../input/sub/b")
    assert lines == [f"read err {v.ENOENT}", f"read err {v.ENOENT}", f"stat err {v.ENOENT}",
                     "read ok 1 A", "ls ok .,..,data,input,output", "chdir ok",
                     f"cwdread err {v.ENOENT}", "cwdread ok 1 B"]


def test_relative_paths_resolve_after_chdir(probe: Probe) -> None:
    _, lines = probe("chdir:/input/sub", "cwdread:b", "chdir:/output", "write:rel.txt:r",
                     "cwdread:rel.txt")
    assert lines == ["chdir ok", "cwdread ok 1 B", "chdir ok", "write ok", "cwdread ok 1 r"]


def test_directories_rename_and_remove_like_posix(probe: Probe) -> None:
    outcome, lines = probe(
        "mkdir:/output/d", "mkdir:/output/d", "write:/output/d/f:1", "rmdir:/output/d",
        "rename:/output/d:/output/d/inside", "rename:/output/d:/output/e", "read:/output/e/f",
        "unlink:/output/e", "rmdir:/output/e/f", "remove:/output/e/f", "rmdir:/output/e",
        "write:/output/x:old", "write:/output/y:new", "rename:/output/y:/output/x",
    )
    assert lines == [
        "mkdir ok", f"mkdir err {v.EEXIST}", "write ok", f"rmdir err {v.ENOTEMPTY}",
        f"rename err {v.EINVAL}", "rename ok", "read ok 1 1", f"unlink err {v.EISDIR}",
        f"rmdir err {v.ENOTDIR}", "remove ok", "rmdir ok", "write ok", "write ok", "rename ok",
    ]
    assert outcome.output_files == (("/output/x", b"new"),)


def test_there_are_no_links(probe: Probe) -> None:
    _, lines = probe("symlink:/input/a:/output/l", "link:/input/a:/output/l",
                     "readlink:/input/a", "readlink:/output/none")
    assert lines == [f"symlink err {v.ENOTSUP}", f"link err {v.ENOTSUP}",
                     f"readlink err {v.EINVAL}", f"readlink err {v.ENOENT}"]


QUOTA = Limits(max_output_file_bytes=100_000, max_output_files_bytes=250_000, max_output_files=4)


def test_one_file_stops_at_its_quota_with_efbig(probe: Probe) -> None:
    outcome, lines = probe("fill:/output/big:300000", limits=QUOTA)
    assert lines == [f"fill err {v.EFBIG} 100000"]
    assert outcome.output_files == (("/output/big", b"x" * 100_000),)
    assert outcome.outputs_truncated


def test_all_files_together_stop_at_the_total_with_edquot(probe: Probe) -> None:
    outcome, lines = probe("fill:/output/a:100000", "fill:/output/b:100000",
                           "fill:/output/c:100000", limits=QUOTA)
    assert lines == ["fill ok 100000", "fill ok 100000", f"fill err {v.EDQUOT} 50000"]
    assert [len(data) for _, data in outcome.output_files] == [100_000, 100_000, 50_000]
    assert outcome.outputs_truncated


def test_removing_a_file_gives_its_bytes_back(probe: Probe) -> None:
    outcome, lines = probe("fill:/output/a:100000", "fill:/output/b:100000", "unlink:/output/a",
                           "fill:/output/c:100000", limits=QUOTA)
    assert lines == ["fill ok 100000", "fill ok 100000", "unlink ok", "fill ok 100000"]
    assert not outcome.outputs_truncated


def test_the_file_count_stops_at_its_quota_with_enospc(probe: Probe) -> None:
    outcome, lines = probe("mkdir:/output/d", "manyfiles:/output/d:10", limits=QUOTA)
    assert lines == ["mkdir ok", f"manyfiles err {v.ENOSPC} 3"]
    assert len(outcome.output_files) == 3
    assert outcome.outputs_truncated


@pytest.mark.parametrize(("op", "errno"), [
    ("sparse:/output/s:5000000", v.EFBIG),  # a seek far past the end, then one byte
    ("sparse:/output/s:4611686018427387904", v.EFBIG),  # 2**62: nothing is allocated
    ("truncate:/output/t:5000000", v.EFBIG),
    ("fallocate:/output/t:5000000", v.EFBIG),
])
def test_sparse_files_count_their_full_size(probe: Probe, op: str, errno: int) -> None:
    outcome, lines = probe("write:/output/t:", op, limits=QUOTA)
    assert lines[1].endswith(f"err {errno}")
    assert outcome.outputs_truncated
    assert all(len(data) <= 100_000 for _, data in outcome.output_files)


def test_a_sparse_write_within_the_quota_is_zero_filled(probe: Probe) -> None:
    outcome, lines = probe("sparse:/output/s:99999", "fallocate:/output/f:10", limits=QUOTA)
    assert lines == ["sparse ok", "fallocate ok"]
    assert outcome.output_files == (("/output/f", bytes(10)), ("/output/s", bytes(99_999) + b"y"))
    assert not outcome.outputs_truncated


def test_a_sparse_write_past_the_total_is_edquot(probe: Probe) -> None:
    limits = Limits(max_output_file_bytes=1_000_000, max_output_files_bytes=250_000)
    _, lines = probe("sparse:/output/s:300000", limits=limits)
    assert lines == [f"sparse err {v.EDQUOT}"]


def test_two_runs_of_one_job_give_identical_outcomes(probe: Probe) -> None:
    ops = ("mkdir:/output/d", "write:/output/d/f:1", "fill:/output/g:70000", "stat:/output/g",
           "stat:/output/d/f", "ls:/output", "fstat:/input/a", "read:/input/in.txt")
    first, _ = probe(*ops)
    second, _ = probe(*ops)
    assert (first.stdout, first.stderr, first.output_files) == (
        second.stdout, second.stderr, second.output_files)
    assert first.fuel_consumed == second.fuel_consumed


def test_a_job_without_files_sees_empty_input_and_output(probe: Probe) -> None:
    outcome, lines = probe("ls:/", "ls:/input", "ls:/output", files=())
    assert lines == ["ls ok .,..,input,output", "ls ok .,..", "ls ok .,.."]
    assert (outcome.output_files, outcome.outputs_truncated) == ((), False)


def test_input_files_above_the_limit_are_refused_before_running(sandbox: Sandbox,
                                                                 fsprobe: bytes) -> None:
    job = JobInput(files=(("/input/a", b"x" * 11),))
    with pytest.raises(ValueError, match="max_input_files_bytes = 10"):
        sandbox.run(fsprobe, job, Limits(max_input_files_bytes=10))
    assert sandbox.run(fsprobe, job, Limits(max_input_files_bytes=11)).kind is OutcomeKind.OK


def test_jobs_on_several_threads_each_see_only_their_own_files(
    sandbox: Sandbox, example: Callable[[str], bytes]
) -> None:
    module = sandbox.compile(example("copyfiles"))

    def copy(index: int) -> Outcome:
        data = bytes([index]) * (50_000 + index)
        return sandbox.run(module, JobInput(files=((f"/input/{index}.bin", data),)), Limits())

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(copy, range(16)))
    for index, outcome in enumerate(outcomes):
        assert outcome.kind is OutcomeKind.OK, outcome
        data = bytes([index]) * (50_000 + index)
        assert outcome.output_files == ((f"/output/{index}.bin", data),)
