"""`plasmd replay`: a saved job run again here gives the same receipt body, field by field."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from cli_runs import example, one_line_error, plasmd

pytestmark = pytest.mark.timeout(120)


def saved(tmp_path: Path, name: str, *flags: str) -> Path:
    run = plasmd("execute-job", example(name), "--state-dir", tmp_path / "state", "--json",
                 *flags)
    assert run.returncode == 0, run.stderr
    path = tmp_path / f"{name}.json"
    path.write_bytes(run.stdout)
    return path


@pytest.mark.parametrize(
    ("name", "flags"),
    [("hello", ("--stdin", "replay me")), ("primes", ("--", "20000")), ("clock_random", ()),
     ("floats", ("--", "3000")), ("env_args", ("--env", "K=V", "--", "a", "b")),
     ("clock_random", ("--seed", "0a0b", "--epoch-ms", "5"))],
    ids=["hello", "primes", "clock-random", "floats", "args-env", "seed-epoch"],
)
def test_the_example_jobs_are_reproduced(tmp_path: Path, name: str, flags: tuple[str, ...]
                                         ) -> None:
    result = saved(tmp_path, name, *flags)
    run = plasmd("replay", result, "--module", example(name), *flags)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith(b"reproduced")


def test_output_files_are_compared_too(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"file\n")
    given = ("--input", f"/input/a.txt={tmp_path / 'a.txt'}")
    run = plasmd("replay", saved(tmp_path, "copyfiles", *given), "--module",
                 example("copyfiles"), *given, "--json")
    assert run.returncode == 0, run.stderr
    assert orjson.loads(run.stdout) == {"reproduced": True, "differences": []}


def test_a_nondeterministic_job_is_not_reproduced_and_each_difference_is_named(
    tmp_path: Path,
) -> None:
    result = saved(tmp_path, "clock_random", "--determinism", "off")
    run = plasmd("replay", result, "--module", example("clock_random"), "--determinism", "off")
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.decode().splitlines()
    assert any(line.startswith("DIFFERENT: stdout_sha256: receipt says ") for line in lines)


def test_another_input_or_module_is_refused(tmp_path: Path) -> None:
    result = saved(tmp_path, "hello", "--stdin", "one")
    other_input = plasmd("replay", result, "--module", example("hello"), "--stdin", "two")
    assert "input_sha256" in one_line_error(other_input)
    other_module = plasmd("replay", result, "--module", example("exit3"), "--stdin", "one")
    assert "not the module" in one_line_error(other_module)


def test_a_result_that_does_not_verify_is_refused(tmp_path: Path) -> None:
    result = saved(tmp_path, "hello", "--stdin", "one")
    edited = orjson.loads(result.read_bytes())
    edited["fuel_consumed"] += 1
    result.write_bytes(orjson.dumps(edited))
    run = plasmd("replay", result, "--module", example("hello"), "--stdin", "one")
    assert "does not verify" in one_line_error(run)
