"""JobInput.files and the file limits: what is accepted, and a clear ValueError otherwise."""

from __future__ import annotations

import pytest

from plasm.runtime.job import (
    DEFAULT_MAX_LIMITS,
    MAX_INPUT_FILES,
    JobInput,
    Limits,
    Outcome,
    OutcomeKind,
)


def test_files_are_stored_sorted_as_tuples() -> None:
    job = JobInput(files=[["/input/b", b"2"], ("/a.svg", b"1"), ("/input/a/x", b"")])
    assert job.files == (("/a.svg", b"1"), ("/input/a/x", b""), ("/input/b", b"2"))
    assert JobInput(files=[]).files == ()
    assert job == JobInput(files=(("/input/b", b"2"), ("/input/a/x", b""), ("/a.svg", b"1")))


@pytest.mark.parametrize(("path", "says"), [
    ("input/a", "absolute"),
    ("/", "absolute"),
    ("/input//a", "normalised"),
    ("/input/./a", "normalised"),
    ("/input/../etc/passwd", "normalised"),
    ("/input/a/", "normalised"),
    ("/output", "under /output"),
    ("/output/a", "under /output"),
    ("/input/a\x00b", "NUL"),
    ("/input/" + "n" * 256, "longer than 255"),
    ("/input" + "/d" * 2100, "longer than 4096"),
    ("/input/\udc80", "UTF-8"),
])
def test_bad_paths_are_a_value_error_naming_the_path(path: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        JobInput(files=((path, b""),))


def test_other_bad_files_are_value_errors() -> None:
    with pytest.raises(ValueError, match="twice"):
        JobInput(files=(("/input/a", b"1"), ("/input/a", b"2")))
    with pytest.raises(ValueError, match="as a file and as a directory"):
        JobInput(files=(("/input/a", b"1"), ("/input/a/b", b"2")))
    with pytest.raises(ValueError, match="must be bytes"):
        JobInput(files=(("/input/a", "text"),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pairs"):
        JobInput(files=(("/input/a",),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"at most {MAX_INPUT_FILES}"):
        JobInput(files=tuple((f"/input/{i}", b"") for i in range(MAX_INPUT_FILES + 1)))
    with pytest.raises(ValueError, match="must be str"):
        JobInput(files=((b"/input/a", b""),))  # type: ignore[arg-type]


def test_the_file_limits_have_defaults_within_the_node_maximums() -> None:
    limits = Limits()
    assert (limits.max_output_files_bytes, limits.max_output_file_bytes,
            limits.max_output_files, limits.max_input_files_bytes) == (
        16 * 2**20, 16 * 2**20, 64, 16 * 2**20)
    assert limits.exceeds(DEFAULT_MAX_LIMITS) is None
    asked = Limits(max_output_files=DEFAULT_MAX_LIMITS.max_output_files + 1)
    assert asked.exceeds(DEFAULT_MAX_LIMITS) == (
        f"limits.max_output_files = {DEFAULT_MAX_LIMITS.max_output_files + 1} is above this "
        f"node's maximum {DEFAULT_MAX_LIMITS.max_output_files}")
    assert Limits.from_json({"max_output_files": 3}).max_output_files == 3


def test_admits_bounds_the_input_files_total() -> None:
    job = JobInput(files=(("/a", b"x" * 6), ("/b", b"y" * 5)))
    assert Limits(max_input_files_bytes=11).admits(job) is None
    assert Limits(max_input_files_bytes=10).admits(job) == (
        "job_input.files hold 11 bytes, above limits.max_input_files_bytes = 10")


def test_an_outcome_not_run_has_no_output_files() -> None:
    outcome = Outcome.not_run(OutcomeKind.INVALID_MODULE, "no", 5)
    assert (outcome.output_files, outcome.outputs_truncated) == ((), False)
