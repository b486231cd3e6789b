"""Verifying a saved result trusts only signed bytes: every field the receipt covers is checked."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from plasm.protocol.errors import DecodeError
from plasm.protocol.result import job_result_to_json
from plasm.protocol.verification import expectations_from_saved, verify_saved
from plasm.runtime.job import Outcome

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def result(envelope: bytes, outcome: Outcome, module_sha256: str, executor_id: str,
           job_id: str) -> dict[str, Any]:
    return job_result_to_json(job_id, "done", outcome, module_sha256, executor_id, envelope)


def verdict_of(saved: dict[str, Any]) -> dict[str, Any]:
    envelope, expected = expectations_from_saved(orjson.dumps(saved))
    return verify_saved(envelope, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Each edit changes one field of the result and leaves the receipt alone.
EDITS = {
    "job_id": lambda r: r.update(job_id="f" * 32),
    "executor": lambda r: r.update(executor=r["executor"][:-1] + "x"),
    "module_sha256": lambda r: r.update(module_sha256="0" * 64),
    "outcome.kind": lambda r: r["outcome"].update(kind="ok"),
    "outcome.exit_code": lambda r: r["outcome"].update(exit_code=0),
    "outcome.message": lambda r: r["outcome"].update(message="all fine"),
    "fuel_consumed": lambda r: r.update(fuel_consumed=r["fuel_consumed"] + 1),
    "wall_time_us": lambda r: r.update(wall_time_us=1),
    "stdout_truncated": lambda r: r.update(stdout_truncated=True),
    "stderr_truncated": lambda r: r.update(stderr_truncated=True),
    "outputs_truncated": lambda r: r.update(outputs_truncated=True),
    "outputs": lambda r: r["outputs"].pop(),
    "outputs.sha256": lambda r: r["outputs"][0].update(sha256="0" * 64),
    "outputs.size": lambda r: r["outputs"][0].update(size=2),
    "stdout_text": lambda r: r.update(stdout_text="all is well\n"),
    "stderr_text": lambda r: r.update(stderr_text=""),
    "stdout": lambda r: r.update(stdout=_b64(b"forged\n")),
    "stderr": lambda r: r.update(stderr=_b64(b"")),
    "fuel_consumed type": lambda r: r.update(fuel_consumed=str(r["fuel_consumed"])),
}


def test_an_untouched_result_is_valid_and_says_every_field_was_checked(
    result: dict[str, Any],
) -> None:
    verdict = verdict_of(result)
    assert verdict["valid"] and verdict["checked_output"], verdict
    assert "every field" in verdict["message"]


@pytest.mark.parametrize("field", sorted(EDITS))
def test_editing_any_covered_field_is_invalid_naming_the_field(
    result: dict[str, Any], field: str
) -> None:
    edited = copy.deepcopy(result)
    EDITS[field](edited)
    verdict = verdict_of(edited)
    assert not verdict["valid"], field
    assert verdict["reason"] in ("result_mismatch", "hash_mismatch", "executor_mismatch")
    if verdict["reason"] == "result_mismatch":
        name = field.split(" ")[0].split(".")[0]
        assert verdict["message"].startswith(name), verdict["message"]
        assert "result says" in verdict["message"] and "receipt says" in verdict["message"]


def test_the_message_says_what_each_side_says(result: dict[str, Any]) -> None:
    edited = copy.deepcopy(result)
    edited["outcome"]["exit_code"] = 0
    assert verdict_of(edited)["message"] == "outcome.exit_code: result says 0, receipt says 3"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_result_without_its_output_bytes_is_an_error_not_a_pass(
    result: dict[str, Any], stream: str
) -> None:
    del result[stream]
    with pytest.raises(DecodeError, match=stream):
        expectations_from_saved(orjson.dumps(result))


def test_the_job_shape_of_plasmd_job_json_is_accepted(result: dict[str, Any]) -> None:
    job = {"job_id": result["job_id"], "status": "done", "result": result}
    assert verdict_of(job)["valid"]
    job["result"]["fuel_consumed"] += 1
    assert verdict_of(job)["reason"] == "result_mismatch"
