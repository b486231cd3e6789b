"""The plain job dataclasses validate what they hold."""

from __future__ import annotations

import subprocess
import sys

import pytest

from plasm.runtime.job import JobInput, Limits, OutcomeKind


def test_limits_refuse_non_positive_values() -> None:
    with pytest.raises(ValueError, match="fuel"):
        Limits(fuel=0)


def test_limits_refuse_values_beyond_signed_64_bits() -> None:
    with pytest.raises(ValueError, match="fuel"):
        Limits(fuel=2**63)


def test_limits_refuse_non_integers() -> None:
    with pytest.raises(ValueError, match="timeout_ms"):
        Limits(timeout_ms=1.5)


def test_job_input_refuses_unsorted_env() -> None:
    with pytest.raises(ValueError, match="sorted"):
        JobInput(env=(("B", "1"), ("A", "2")))


def test_job_input_refuses_duplicate_env_keys() -> None:
    with pytest.raises(ValueError, match="unique"):
        JobInput(env=(("A", "1"), ("A", "2")))


def test_job_input_refuses_equals_sign_in_env_key() -> None:
    with pytest.raises(ValueError, match="'='"):
        JobInput(env=(("A=B", "1"),))


def test_job_input_refuses_nul_in_args() -> None:
    with pytest.raises(ValueError, match="NUL"):
        JobInput(args=("a\x00b",))


def test_job_input_stores_lists_as_tuples() -> None:
    job_input = JobInput(args=["a"], env=[["K", "V"]])
    assert job_input.args == ("a",)
    assert job_input.env == (("K", "V"),)


def test_outcome_kinds_are_their_wire_strings() -> None:
    assert OutcomeKind("out_of_fuel") is OutcomeKind.OUT_OF_FUEL
    assert str(OutcomeKind.MEMORY_LIMIT) == "memory_limit"


def test_importing_the_runtime_package_does_not_load_wasmtime() -> None:
    code = "import sys, plasm.runtime.job, plasm.runtime; print('wasmtime' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
