"""`plasmd execute-job`: every example module, every flag, and its exit codes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cli_runs import example, json_result, one_line_error, plasmd, verified_receipt

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def execute(state: Path, name: str, *flags: str, stdin: bytes = b"") -> dict[str, Any]:
    run = plasmd("execute-job", example(name), "--state-dir", state, "--json", *flags,
                 stdin=stdin)
    result = json_result(run)
    verified_receipt(result)
    return result


@pytest.mark.parametrize(
    ("name", "flags", "kind", "stdout"),
    [
        ("hello", (), "ok", b"Hello, World!\n"),
        ("exit3", (), "exit", b""),
        ("trap", (), "trap", b""),
        ("loop", ("--fuel", "100000"), "out_of_fuel", b""),
        ("loop", ("--fuel", "100000000000", "--timeout", "0.2"), "timeout", b""),
        ("membomb", ("--memory", "2MiB"), "memory_limit", b""),
        ("bigmem", (), "memory_limit", b""),
        ("flood", ("--max-output", "1KiB"), "exit", b"x" * 1024),
        ("env_args", (), "ok", b"env_args.wasm\n"),
        ("escape", (), "ok", b"path_open 44\nfd_prestat_get 0\n"),  # ENOENT in the virtual /
        ("stderr", (), "ok", b"fine\n"),
    ],
    ids=["hello", "exit3", "trap", "loop-fuel", "loop-timeout", "membomb", "bigmem", "flood",
         "env_args", "escape", "stderr"],
)
def test_each_example_gives_its_outcome_with_a_valid_receipt(
    state: Path, name: str, flags: tuple[str, ...], kind: str, stdout: bytes
) -> None:
    result = execute(state, name, *flags)
    assert result["outcome"]["kind"] == kind
    assert base64.b64decode(result["stdout"]) == stdout


def test_exit3_reports_its_exit_code(state: Path) -> None:
    assert execute(state, "exit3")["outcome"]["exit_code"] == 3


def test_flood_output_is_capped_and_marked_truncated(state: Path) -> None:
    result = execute(state, "flood", "--max-output", "1KiB")
    assert result["stdout_truncated"] is True
    assert verified_receipt(result).limits.max_output_bytes == 1024


def test_stdin_text_reaches_the_guest(state: Path) -> None:
    assert execute(state, "hello", "--stdin", "Hello, World")["stdout_text"] == "dlroW ,olleH\n"


def test_stdin_file_reaches_the_guest(state: Path, tmp_path: Path) -> None:
    given = tmp_path / "input.bin"
    given.write_bytes(b"from a file\n")
    assert execute(state, "hello", "--stdin-file", str(given))["stdout_text"] == "elif a morf\n"


def test_stdin_file_dash_reads_our_stdin(state: Path) -> None:
    result = execute(state, "hello", "--stdin-file", "-", stdin=b"piped")
    assert result["stdout_text"] == "depip\n"


def test_args_and_env_reach_the_guest_in_order(state: Path) -> None:
    result = execute(state, "env_args", "--arg", "a", "--arg", "b c", "--env", "Z=26",
                     "--env", "A=1")
    assert result["stdout_text"] == "env_args.wasm\na\nb c\nA=1\nZ=26\n"


def test_guest_args_after_double_dash_reach_the_guest_untouched(state: Path) -> None:
    # As `wasmtime run` takes them: options after `--` are the guest's, not ours.
    run = plasmd("execute-job", example("env_args"), "--state-dir", state, "--json",
                 "--arg", "last", "--", "-e", "x y", "--fuel", "--")
    assert json_result(run)["stdout_text"] == "env_args.wasm\n-e\nx y\n--fuel\n--\nlast\n"


def test_every_limit_flag_lands_in_the_signed_receipt(state: Path) -> None:
    result = execute(state, "hello", "--fuel", "5_000_000", "--memory", "64MiB",
                     "--timeout", "2.5", "--max-output", "512KiB")
    limits = verified_receipt(result).limits
    assert (limits.fuel, limits.memory_bytes, limits.timeout_ms, limits.max_output_bytes) == (
        5_000_000, 64 * 2**20, 2500, 512 * 1024)


def test_the_file_quota_flags_land_in_the_receipt_and_bind_the_job(
        state: Path, tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a" * 3000)
    (tmp_path / "b.bin").write_bytes(b"b" * 100)
    inputs = ("--input", f"/input/a.bin={tmp_path / 'a.bin'}",
              "--input", f"/input/b.bin={tmp_path / 'b.bin'}")  # fmt: skip
    result = execute(state, "copyfiles", *inputs, "--max-input-files", "1MiB",
                     "--max-output-files", "64KiB", "--max-output-file", "1KiB",
                     "--max-output-count", "9")  # fmt: skip
    limits = verified_receipt(result).limits
    assert (limits.max_input_files_bytes, limits.max_output_files_bytes,
            limits.max_output_file_bytes, limits.max_output_files) == (
        2**20, 64 * 1024, 1024, 9)  # fmt: skip
    # a.bin is over the per-file cap: the guest sees EFBIG (and stops), the result says so.
    assert result["outputs_truncated"] is True
    assert [(o["path"], o["size"]) for o in result["outputs"]] == [("/output/a.bin", 1024)]
    assert "File too large" in result["stderr_text"]
    refused = plasmd("execute-job", example("copyfiles"), "--state-dir", state, *inputs,
                     "--max-input-files", "1000")  # fmt: skip
    assert refused.returncode == 2 and b"1000" in refused.stderr, refused.stderr


def test_state_dir_holds_the_key_that_signs(state: Path) -> None:
    first = execute(state, "hello")
    second = execute(state, "exit3")
    assert (state / "node.key").exists()
    assert first["executor"] == second["executor"]
    assert first["receipt"]["executor"] == second["receipt"]["executor"] == first["executor"]


def test_without_json_the_guest_output_is_passed_through(state: Path) -> None:
    run = plasmd("execute-job", example("stderr"), "--state-dir", state)
    assert (run.returncode, run.stdout, run.stderr) == (0, b"fine\n", b"oops\n")


def test_without_json_a_non_ok_outcome_is_reported_on_stderr_with_its_exit_code(
    state: Path,
) -> None:
    run = plasmd("execute-job", example("exit3"), "--state-dir", state)
    assert run.returncode == 3  # the guest's own, as `wasmtime run` passes it through
    assert b"job ended with exit (exit code 3)" in run.stderr


@pytest.mark.parametrize(
    ("name", "flags", "status"),
    [
        ("hello", (), 0),
        ("exit3", (), 3),
        ("trap", (), 134),
        ("loop", ("--fuel", "100000"), 152),
        ("loop", ("--fuel", "100000000000", "--timeout", "0.2"), 124),
        ("membomb", ("--memory", "2MiB"), 137),
    ],
    ids=["ok", "exit", "trap", "out_of_fuel", "timeout", "memory_limit"],
)
def test_the_exit_status_tells_how_the_job_ended(
    state: Path, name: str, flags: tuple[str, ...], status: int
) -> None:
    run = plasmd("execute-job", example(name), "--state-dir", state, *flags)
    assert run.returncode == status, run.stderr


def test_a_file_that_is_not_wasm_is_exit_126_with_one_line(state: Path) -> None:
    run = plasmd("execute-job", example("hello").with_suffix(".wat"), "--state-dir", state)
    assert "not a runnable WebAssembly module" in one_line_error(run, 126)
    assert run.stdout == b""


def test_a_module_over_the_compile_limit_is_exit_126_and_names_the_flag(
    state: Path, tmp_path: Path
) -> None:
    from tests.runtime.wasm_bombs import many_functions

    bomb = tmp_path / "bomb.wasm"
    bomb.write_bytes(many_functions(1_000_000))
    run = plasmd("execute-job", bomb, "--state-dir", state, "--max-compile-ms", "300")
    error = one_line_error(run, 126)
    assert "was not compiled" in error and "300 ms" in error and "--max-compile-ms" in error
    assert run.stdout == b""


def test_a_missing_module_file_is_exit_2_with_one_line(state: Path, tmp_path: Path) -> None:
    run = plasmd("execute-job", tmp_path / "absent.wasm", "--state-dir", state)
    assert "cannot read module" in one_line_error(run)


def test_a_missing_stdin_file_is_exit_2_with_one_line(state: Path, tmp_path: Path) -> None:
    run = plasmd("execute-job", example("hello"), "--stdin-file", tmp_path / "absent",
                 "--state-dir", state)
    assert "--stdin-file" in one_line_error(run)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--memory", "lots"), "--memory"),
        (("--memory", "0"), "--memory"),
        (("--fuel", "-5"), "--fuel"),
        (("--fuel", "many"), "--fuel"),
        (("--timeout", "0"), "--timeout"),
        (("--timeout", "nan"), "--timeout"),
        (("--max-output", "1XB"), "--max-output"),
        (("--env", "NOEQUALS"), "--env"),
        (("--stdin", "a", "--stdin-file", "-"), "--stdin"),
        (("--fuel", str(2**70)), "fuel"),
    ],
    ids=["memory-word", "memory-zero", "fuel-negative", "fuel-word", "timeout-zero",
         "timeout-nan", "max-output-unit", "env-no-equals", "two-stdins", "fuel-over-64-bits"],
)
def test_a_bad_flag_value_is_exit_2_with_an_error_naming_it(
    state: Path, flags: tuple[str, ...], named: str
) -> None:
    run = plasmd("execute-job", example("hello"), "--state-dir", state, *flags)
    assert named in one_line_error(run)


@pytest.mark.parametrize(("name", "flags", "stdin", "stdout"), [
    ("primes", ("--arg", "1000"), b"", b"168\n"),
    ("primes", ("--arg", "100000"), b"", b"9592\n"),
    ("wc", ("--stdin-file", "-"), b"a b\nc\n", b"2 3 6\n"),
], ids=["primes-1000", "primes-100000", "wc"])
def test_c_examples_run_with_a_valid_receipt(
    state: Path, name: str, flags: tuple[str, ...], stdin: bytes, stdout: bytes
) -> None:
    result = execute(state, name, *flags, stdin=stdin)
    assert result["outcome"]["kind"] == "ok"
    assert base64.b64decode(result["stdout"]) == stdout


def test_sha256sum_without_input_files_gives_an_empty_manifest(state: Path) -> None:
    # execute-job passes no input files yet: /input is there, empty, and /output writable.
    result = execute(state, "sha256sum")
    assert (result["outcome"]["kind"], result["outcome"]["exit_code"]) == ("ok", None)
    assert base64.b64decode(result["stderr"]) == b""


def test_hello_takes_its_text_as_an_argument(state: Path) -> None:
    result = execute(state, "hello", "--arg", "Hello, World", "--stdin", "unread")
    assert result["stdout_text"] == "dlroW ,olleH\n"


def test_the_determinism_profile_gives_one_answer_and_off_gives_the_hosts(state: Path) -> None:
    first, second = (execute(state, "clock_random") for _ in range(2))
    assert first["stdout_text"] == second["stdout_text"]
    assert first["receipt"]["body"]["profile"] == "wasi-p1-det/1"
    seeded = execute(state, "clock_random", "--seed", "01", "--epoch-ms", "0")
    assert seeded["stdout_text"].startswith("time 0.000001000\n")
    assert seeded["stdout_text"] != first["stdout_text"]
    off = [execute(state, "clock_random", "--determinism", "off") for _ in range(2)]
    assert off[0]["stdout_text"] != off[1]["stdout_text"]
    assert off[0]["receipt"]["body"]["profile"] == "wasi-p1-nondet/1"


def test_a_seed_that_is_not_hex_is_exit_2(state: Path) -> None:
    run = plasmd("execute-job", example("clock_random"), "--state-dir", state, "--seed", "xyz")
    assert "--seed" in one_line_error(run)
