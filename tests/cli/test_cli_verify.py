"""`plasmd verify`: saved results, receipts and raw envelopes, genuine and tampered."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import cbor2
import orjson
import pytest
from cli_runs import example, json_result, one_line_error, plasmd

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = tmp_path_factory.mktemp("verify-state")
    run = plasmd("execute-job", example("hello"), "--stdin", "verify me", "--state-dir", state,
                 "--json")
    return json_result(run)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_saved_result_verifies_with_exit_0(saved: dict[str, Any], tmp_path: Path) -> None:
    run = plasmd("verify", write(tmp_path, "result.json", orjson.dumps(saved)))
    assert run.returncode == 0, run.stdout
    verdict = "valid: signed by the executor's peer-ID key; every field of the result matches"
    assert verdict in run.stdout.decode()
    assert saved["job_id"] in run.stdout.decode()


def test_json_verdict_names_the_receipt(saved: dict[str, Any], tmp_path: Path) -> None:
    run = plasmd("verify", write(tmp_path, "result.json", orjson.dumps(saved)), "--json")
    verdict = orjson.loads(run.stdout)
    assert run.returncode == 0
    assert verdict["valid"] is True and verdict["checked_output"] is True
    assert verdict["receipt"]["executor"] == saved["executor"]


def test_a_result_read_from_stdin_verifies(saved: dict[str, Any]) -> None:
    assert plasmd("verify", "-", stdin=orjson.dumps(saved)).returncode == 0


def test_a_raw_cbor_envelope_verifies(saved: dict[str, Any], tmp_path: Path) -> None:
    envelope = base64.b64decode(saved["receipt"]["cose"])
    run = plasmd("verify", write(tmp_path, "receipt.cbor", envelope))
    assert run.returncode == 0, run.stdout


def test_a_receipt_in_json_form_verifies(saved: dict[str, Any], tmp_path: Path) -> None:
    run = plasmd("verify", write(tmp_path, "receipt.json", orjson.dumps(saved["receipt"])))
    assert run.returncode == 0, run.stdout


def test_the_right_module_matches_and_another_does_not(saved: dict[str, Any], tmp_path: Path
                                                       ) -> None:
    path = write(tmp_path, "result.json", orjson.dumps(saved))
    assert plasmd("verify", path, "--module", example("hello")).returncode == 0
    other = plasmd("verify", path, "--module", example("exit3"))
    assert other.returncode == 1
    assert b"INVALID" in other.stdout


@pytest.mark.parametrize(
    ("field", "value"),
    [("stdout", base64.b64encode(b"forged\n").decode()),
     ("stderr", base64.b64encode(b"noise").decode()),
     ("job_id", "0" * 32),
     ("module_sha256", "ab" * 32)],
)
def test_a_result_with_a_changed_field_fails_with_exit_1(
    saved: dict[str, Any], tmp_path: Path, field: str, value: str
) -> None:
    tampered = {**saved, field: value}
    run = plasmd("verify", write(tmp_path, "tampered.json", orjson.dumps(tampered)))
    assert run.returncode == 1
    assert run.stdout.startswith(b"INVALID: ")


def _cose_parts(saved: dict[str, Any]) -> list[Any]:
    tagged = cbor2.loads(base64.b64decode(saved["receipt"]["cose"]))
    return [tagged.value[0], dict(tagged.value[1]), tagged.value[2], tagged.value[3]]


def _cose(parts: list[Any]) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, parts))


def test_a_receipt_with_a_changed_body_fails_with_exit_1(saved: dict[str, Any],
                                                         tmp_path: Path) -> None:
    parts = _cose_parts(saved)
    body = cbor2.loads(parts[2])
    body["fuel_consumed"] += 1
    parts[2] = cbor2.dumps(body, canonical=True)
    run = plasmd("verify", write(tmp_path, "forged.cbor", _cose(parts)))
    assert run.returncode == 1
    assert b"altered" in run.stdout


def test_a_receipt_with_a_flipped_signature_bit_fails(saved: dict[str, Any],
                                                      tmp_path: Path) -> None:
    parts = _cose_parts(saved)
    parts[3] = bytes([parts[3][0] ^ 1]) + parts[3][1:]
    run = plasmd("verify", write(tmp_path, "forged.cbor", _cose(parts)))
    assert run.returncode == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("fuel_consumed", 1), ("wall_time_us", 7), ("stdout_text", "forged"),
     ("stdout_truncated", True), ("outputs", [])],
)
def test_an_edited_result_field_is_named_with_both_values(
    saved: dict[str, Any], tmp_path: Path, field: str, value: Any
) -> None:
    tampered = {**saved, field: value}
    if field == "outputs":
        tampered["outputs"] = [{"path": "/output/x", "size": 0, "sha256": "0" * 64}]
    run = plasmd("verify", write(tmp_path, "tampered.json", orjson.dumps(tampered)))
    assert run.returncode == 1
    assert run.stdout.startswith(f"INVALID: {field}: result says ".encode()), run.stdout
    assert b", receipt says " in run.stdout


def test_a_result_without_its_stdout_is_an_error(saved: dict[str, Any], tmp_path: Path) -> None:
    without = {key: value for key, value in saved.items() if key != "stdout"}
    run = plasmd("verify", write(tmp_path, "no-stdout.json", orjson.dumps(without)))
    assert "stdout" in one_line_error(run)


def test_the_job_json_shape_verifies(saved: dict[str, Any], tmp_path: Path) -> None:
    job = {"job_id": saved["job_id"], "status": "done", "result": saved}
    assert plasmd("verify", write(tmp_path, "job.json", orjson.dumps(job))).returncode == 0


def test_garbage_is_not_a_receipt(tmp_path: Path) -> None:
    run = plasmd("verify", write(tmp_path, "garbage.bin", b"\x00\x01garbage"))
    assert run.returncode == 1
    assert b"malformed" in run.stdout or b"decoded" in run.stdout


def test_a_json_file_that_is_no_receipt_is_exit_2(tmp_path: Path) -> None:
    run = plasmd("verify", write(tmp_path, "other.json", b'{"hello": 1}'))
    assert "cose" in one_line_error(run)


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    assert "cannot read" in one_line_error(plasmd("verify", tmp_path / "absent.json"))
