"""Node information, health, metrics, receipt verification and CBOR bodies over the API."""

from __future__ import annotations

import base64
import copy

import cbor2
import pytest
from daemon_checks import checked_result, example_bytes, metric_samples

from plasm.protocol.identity import peer_id_from_public_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_node_info_names_the_peer_its_key_and_its_limits(daemon) -> None:
    with daemon.client() as client:
        node = client.node()
    assert node["peer_id"] == peer_id_from_public_key(bytes.fromhex(node["public_key"]))
    assert node["capabilities"]["engine"]["name"] == "wasmtime"
    assert node["capabilities"]["executors"] >= 1
    assert set(node["limits"]["max"]) == {
        "fuel", "memory_bytes", "timeout_ms", "max_output_bytes", "max_output_files_bytes",
        "max_output_file_bytes", "max_output_files", "max_input_files_bytes"}
    for name, value in node["limits"]["default"].items():
        assert value <= node["limits"]["max"][name]


def test_results_are_signed_by_the_key_the_node_reports(daemon) -> None:
    with daemon.client() as client:
        node = client.node()
        result = client.submit(module=example_bytes("hello"), wait=30)
    assert result["executor"] == node["peer_id"]
    assert result["receipt"]["executor"] == node["peer_id"]


def test_health_is_ok(daemon) -> None:
    with daemon.client() as client:
        assert client.health() == {"status": "ok"}


def test_metrics_count_finished_jobs_by_outcome(daemon) -> None:
    with daemon.client() as client:
        before = metric_samples(client.metrics())
        for name in ("hello", "hello", "exit3", "trap"):
            client.submit(module=example_bytes(name), wait=30)
        after = metric_samples(client.metrics())

    def count(samples: dict[str, float], outcome: str) -> float:
        return samples.get(f'plasm_jobs_total{{outcome="{outcome}"}}', 0.0)

    assert count(after, "ok") - count(before, "ok") == 2
    assert count(after, "exit") - count(before, "exit") == 1
    assert count(after, "trap") - count(before, "trap") == 1
    assert after["plasm_job_latency_seconds_count"] == before.get(
        "plasm_job_latency_seconds_count", 0) + 4
    assert after['plasm_job_latency_seconds_bucket{le="+Inf"}'] == after[
        "plasm_job_latency_seconds_count"]
    assert after["plasm_queue_depth"] == 0
    assert after["plasm_executors"] >= 1
    done = 'plasm_journal_jobs{status="done"}'
    assert after[done] - before.get(done, 0.0) == 4


def test_metrics_are_prometheus_text(daemon) -> None:
    with daemon.client() as client:
        status, payload = client.request_raw("GET", "/metrics")
    text = payload.decode()
    assert status == 200
    for family in ("plasm_jobs_total", "plasm_queue_depth", "plasm_job_latency_seconds",
                   "plasm_executors_busy"):
        assert f"# TYPE {family} " in text
    assert metric_samples(text)  # every sample line parses as "name value"


def test_verify_accepts_a_genuine_result(daemon) -> None:
    with daemon.client() as client:
        result = client.submit(module=example_bytes("hello"), stdin=b"x", wait=30)
        verdict = client.verify(result)
    assert verdict["valid"] is True
    assert verdict["checked_output"] is True
    assert verdict["receipt"]["job_id"] == result["job_id"]


def test_verify_accepts_a_bare_receipt(daemon) -> None:
    with daemon.client() as client:
        result = client.submit(module=example_bytes("hello"), wait=30)
        verdict = client.verify({"cose": result["receipt"]["cose"]})
    assert verdict["valid"] is True
    assert verdict["checked_output"] is False


def test_verify_rejects_a_result_whose_output_was_changed(daemon) -> None:
    with daemon.client() as client:
        result = client.submit(module=example_bytes("hello"), wait=30)
        tampered = copy.deepcopy(result)
        tampered["stdout"] = base64.b64encode(b"Goodbye, World!\n").decode()
        verdict = client.verify(tampered)
    assert verdict["valid"] is False
    assert verdict["reason"] == "hash_mismatch"


def test_verify_rejects_a_receipt_whose_signed_body_was_changed(daemon) -> None:
    with daemon.client() as client:
        result = client.submit(module=example_bytes("hello"), wait=30)
        signed = base64.b64decode(result["receipt"]["cose"])
        forged = base64.b64encode(signed.replace(b"bok", b"bno", 1)).decode()
        assert forged != result["receipt"]["cose"]
        verdict = client.verify({"cose": forged})
    assert verdict["valid"] is False
    assert verdict["reason"] in {"bad_signature", "malformed"}


def test_submitting_and_answering_in_cbor(daemon) -> None:
    manifest = {"module": base64.b64encode(example_bytes("hello")).decode(),
                "stdin": base64.b64encode(b"cbor").decode()}
    with daemon.client() as client:
        client_conn = client._connection()
        client_conn.request("POST", "/v1/jobs?wait=30", body=cbor2.dumps(manifest),
                            headers={"Content-Type": "application/cbor",
                                     "Accept": "application/cbor"})
        response = client_conn.getresponse()
        payload = response.read()
        content_type = response.getheader("Content-Type")
    result = cbor2.loads(payload)
    assert (response.status, content_type) == (200, "application/cbor")
    checked_result(result)
    assert base64.b64decode(result["stdout"]) == b"robc\n"


def test_errors_come_back_in_cbor_when_cbor_is_asked_for(daemon) -> None:
    with daemon.client() as client:
        conn = client._connection()
        conn.request("GET", "/v1/jobs/" + "0" * 32, headers={"Accept": "application/cbor"})
        response = conn.getresponse()
        answer = cbor2.loads(response.read())
    assert response.status == 404
    assert answer["error"]["code"] == "unknown_job"
