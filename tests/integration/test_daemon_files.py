"""Files in and out of a real daemon: inline and blob inputs, outputs fetched, saved and
checked against the receipt, blobs streamed, and the bad cases refused with nothing kept."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from daemon_checks import api_error, checked_result, example, example_bytes

from plasm.client import ApiRequestError
from plasm.protocol.receipt import check_output_files, verify_envelope

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MIB = 2**20


def plasmd(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "plasm.cli", *map(str, args)],
                          capture_output=True, timeout=90, check=False)


def _blob_files(daemon) -> list[Path]:
    return [p for p in (daemon.state_dir / "blobs").rglob("*") if p.is_file()]


def test_inline_and_blob_inputs_give_outputs_that_verify_against_the_receipt(daemon) -> None:
    small, big = b"small input\n", os.urandom(3 * MIB)  # the big one goes as a blob
    with daemon.client(timeout=60) as client:
        result = client.submit(
            module=example_bytes("copyfiles"),
            files=[("/input/small.txt", small), ("/input/deep/big.bin", big)],
            wait=60,
        )
        receipt = checked_result(result)
        assert result["outcome"]["kind"] == "ok", result
        paths = [o["path"] for o in result["outputs"]]
        assert paths == ["/output/deep/big.bin", "/output/small.txt"]
        fetched = tuple((path, client.output(result["job_id"], path)) for path in paths)
    assert dict(fetched) == {"/output/deep/big.bin": big, "/output/small.txt": small}
    check_output_files(receipt, fetched)  # raises unless every file is the signed one
    signed = {o.path: o.sha256.hex() for o in receipt.outputs}
    assert signed["/output/deep/big.bin"] == hashlib.sha256(big).hexdigest()


def test_cli_input_and_output_dir_then_job_output_dir_later(daemon, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(b"line one\nline two\n")
    out = tmp_path / "out"
    run = plasmd("submit", example("copyfiles"), "--socket", daemon.socket, "--wait", "--json",
                 "--input", f"/input/in.txt={tmp_path / 'in.txt'}", "--output-dir", out)
    assert run.returncode == 0, run.stderr
    result = orjson.loads(run.stdout)
    assert (out / "in.txt").read_bytes() == b"line one\nline two\n"
    later = tmp_path / "later"
    run = plasmd("job", result["job_id"], "--socket", daemon.socket, "--output-dir", later)
    assert run.returncode == 0, run.stderr
    assert (later / "in.txt").read_bytes() == b"line one\nline two\n"
    saved = tmp_path / "result.json"
    saved.write_bytes(run_json := orjson.dumps(result))
    assert run_json and plasmd("verify", saved).returncode == 0


def test_execute_job_takes_inputs_and_saves_outputs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"alpha\n")
    run = plasmd("execute-job", example("copyfiles"), "--state-dir", tmp_path / "state",
                 "--input", f"/input/a.txt={tmp_path / 'a.txt'}", "--output-dir", tmp_path / "o",
                 "--json")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "o" / "a.txt").read_bytes() == b"alpha\n"
    result = orjson.loads(run.stdout)
    receipt = verify_envelope(base64.b64decode(result["receipt"]["cose"]))
    check_output_files(receipt, (("/output/a.txt", b"alpha\n"),))


def test_blobs_are_stored_by_hash_and_read_back(daemon) -> None:
    data = os.urandom(MIB + 7)
    with daemon.client() as client:
        digest = client.upload_blob(data)
        assert digest == hashlib.sha256(data).hexdigest()
        assert client.blob(digest) == data
        with pytest.raises(ApiRequestError) as missing:
            client.blob("0" * 64)
    assert api_error(missing.value) == (404, "unknown_blob")


def test_a_blob_whose_bytes_do_not_match_the_promised_hash_is_refused(daemon) -> None:
    with daemon.client() as client:
        with pytest.raises(ApiRequestError) as refused:
            client.request("POST", "/v1/blobs", body=b"these bytes",
                           content_type="application/octet-stream", query={"sha256": "a" * 64})
        assert api_error(refused.value) == (400, "hash_mismatch")
    assert _blob_files(daemon) == []


def test_a_blob_upload_cut_short_keeps_nothing(daemon) -> None:
    head = (b"POST /v1/blobs HTTP/1.1\r\nHost: plasmd\r\nContent-Type: application/octet-stream"
            b"\r\nContent-Length: 1000000\r\n\r\n")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(daemon.socket))
        sock.sendall(head + b"x" * 1000)
    with daemon.client() as client:
        client.health()  # still serving
    # The writer's temporary file goes when the server sees the disconnect (bounded wait).
    deadline = time.monotonic() + 10
    while _blob_files(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _blob_files(daemon) == []


def test_a_manifest_naming_an_unknown_blob_is_404_and_makes_no_job(daemon) -> None:
    manifest = {"module": base64.b64encode(example_bytes("copyfiles")).decode(),
                "files": [{"path": "/input/x", "sha256": "ab" * 32}]}
    with daemon.client() as client:
        with pytest.raises(ApiRequestError) as refused:
            client.request("POST", "/v1/jobs", json=manifest)
        assert api_error(refused.value) == (404, "unknown_blob")
        assert client.jobs() == []


def test_input_files_over_the_limit_are_refused_before_running(daemon) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as refused:
        client.submit(module=example_bytes("copyfiles"), files=[("/input/a", b"x" * 100)],
                      limits={"max_input_files_bytes": 10})
    assert api_error(refused.value) == (400, "limits_exceeded")


@pytest.mark.parametrize(
    ("files", "words"),
    [([{"path": "/output/x", "content": ""}], "/output"),
     ([{"path": "relative", "content": ""}], "path"),
     ([{"path": "/input/../etc", "content": ""}], "normalised"),
     ([{"path": "/a", "content": ""}, {"path": "/a", "content": ""}], "twice")],
)
def test_bad_input_paths_are_400(daemon, files: list[dict[str, str]], words: str) -> None:
    manifest = {"module": base64.b64encode(example_bytes("copyfiles")).decode(), "files": files}
    with daemon.client() as client, pytest.raises(ApiRequestError) as refused:
        client.request("POST", "/v1/jobs", json=manifest)
    assert api_error(refused.value)[0] == 400
    assert words in str(refused.value), str(refused.value)


def test_replay_through_the_daemon_reproduces_a_job_and_refuses_another_input(daemon) -> None:
    manifest = {"module": base64.b64encode(example_bytes("clock_random")).decode(),
                "module_name": "clock_random.wasm", "seed": "2a"}
    with daemon.client() as client:
        result = client.request("POST", "/v1/jobs", json=manifest, query={"wait": "30"})
        by_hash = {**manifest, "module_sha256": result["module_sha256"]}
        del by_hash["module"]
        answer = client.request("POST", "/v1/receipts/replay",
                                json={"result": result, "manifest": by_hash})
        assert answer == {"reproduced": True, "differences": []}
        with pytest.raises(ApiRequestError) as refused:
            client.request("POST", "/v1/receipts/replay",
                           json={"result": result, "manifest": {**by_hash, "seed": "2b"}})
    assert api_error(refused.value) == (400, "not_this_job")
