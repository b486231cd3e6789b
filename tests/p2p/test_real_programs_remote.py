"""A 21 MB WASI program runs on a peer with a 17 MiB input file and writes a 17 MiB output
file, which the requester saves and checks against the executor's receipt: once from the
CLI (`plasmd submit --on ... --input ... --output-dir ...` then `plasmd verify`) and once
through the API (POST /v1/blobs, POST /v1/jobs with a peer placement, GET
/v1/jobs/{id}/outputs/{path}, POST /v1/receipts/verify).

  E  the executor (the seed)
  R  the requester; bootstraps from E. Its default limits let a job read and write 64 MiB
     of files (the built-in defaults stop at 16 MiB); E's maxima (256 MiB) allow that.

The module, the input and the output are each above the 16 MiB job frame cap, so each can
only travel between the two `plasmd run` processes over /plasm/blob/1.0.0.

A 64 MiB module (above the API's 32 MiB body limit) is uploaded with POST /v1/modules,
which streams it to disk, and runs on the peer by its sha256.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bench._modules import padded
from tests.conftest import Daemon, example, plasmd_command, running_daemons
from tests.p2p.conftest import Pair, start_pair, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MIB = 2**20
MODULE_BYTES = 21 * 10**6
INPUT_BYTES = 17 * MIB
BIG_MODULE_BYTES = 64 * MIB
WAIT_S = 180
REQUESTER_CONFIG = """\
[limits.default]
timeout_ms = 120000
max_input_files_bytes = "64MiB"
max_output_files_bytes = "64MiB"
max_output_file_bytes = "64MiB"
"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("programs")
    with running_daemons(tmp_path_factory) as make:
        yield start_pair(make, write_config(tmp, "r", REQUESTER_CONFIG))


def big_module(folder: Path) -> Path:
    """copyfiles (copies /input to /output) padded to 21 MB with random bytes: a module
    neither node has seen, so it travels to the executor in each test."""
    module = folder / "copyfiles-21mb.wasm"
    module.write_bytes(padded(example("copyfiles").read_bytes(), MODULE_BYTES))
    return module


def plasmd(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(plasmd_command(*args), capture_output=True, timeout=WAIT_S + 60,
                          check=False)


def plasmd_at(node: Daemon, *args: str) -> subprocess.CompletedProcess[bytes]:
    return plasmd(*args, "--socket", str(node.socket))


def test_cli_runs_the_big_program_on_the_peer_and_saves_the_verified_output(
        pair: Pair, tmp_path: Path) -> None:
    module = big_module(tmp_path)
    data = os.urandom(INPUT_BYTES)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    saved = tmp_path / "out"
    run = plasmd_at(pair.requester, "submit", str(module), "--on", pair.executor_id,
                    "--input", f"/input/in.bin={source}", "--output-dir", str(saved),
                    f"--wait={WAIT_S}", "--json")
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    result = orjson.loads(run.stdout)
    assert result["status"] == "done", result.get("error")
    assert result["executor"] == pair.executor_id
    assert result["receipt"]["body"]["requester"] == pair.requester_id
    assert sorted(p.name for p in saved.iterdir()) == ["in.bin"]
    assert (saved / "in.bin").read_bytes() == data
    [output] = result["outputs"]
    assert (output["path"], output["size"]) == ("/output/in.bin", INPUT_BYTES)
    assert output["sha256"] == hashlib.sha256(data).hexdigest()

    result_file = tmp_path / "result.json"
    result_file.write_bytes(run.stdout)
    check = plasmd("verify", str(result_file), "--module", str(module), "--json")
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    verdict = orjson.loads(check.stdout)
    assert verdict["valid"] is True, verdict


def test_api_runs_the_big_program_on_the_peer_and_the_output_matches_the_receipt(
        pair: Pair, tmp_path: Path) -> None:
    module = big_module(tmp_path).read_bytes()
    module_sha256 = hashlib.sha256(module).hexdigest()
    data = os.urandom(INPUT_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    with pair.requester.client(timeout=WAIT_S) as client:
        assert client.upload_blob(data) == digest
        assert client.upload_module(module) == module_sha256
        result = client.submit(
            module_sha256=module_sha256,
            module_name="copyfiles.wasm",
            placement={"mode": "peer", "peer_id": pair.executor_id},
            extra={"files": [{"path": "/input/data.bin", "sha256": digest}]},
            wait=WAIT_S,
        )
        assert result["status"] == "done", result.get("error")
        assert result["executor"] == pair.executor_id
        assert result["receipt"]["body"]["module_sha256"] == module_sha256
        [output] = result["outputs"]
        assert (output["path"], output["size"]) == ("/output/data.bin", INPUT_BYTES)
        fetched = client.output(result["job_id"], output["path"])
        assert hashlib.sha256(fetched).hexdigest() == output["sha256"] == digest
        assert fetched == data
        verdict = client.verify(result)
    assert verdict["valid"] is True, verdict


def test_cli_submits_a_module_too_big_to_ride_inline_in_the_manifest(
        pair: Pair, tmp_path: Path) -> None:
    # 30 MB is base64'd to 40 MB, above the 32 MiB body an API request may have; a node
    # takes modules up to 256 MiB (blobs.max_module_bytes), so the CLI must upload it first.
    module = tmp_path / "hello-30mb.wasm"
    module.write_bytes(padded(example("hello").read_bytes(), 30 * 10**6))
    run = plasmd_at(pair.requester, "submit", str(module), "--on", pair.executor_id,
                    f"--wait={WAIT_S}", "--json")
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    result = orjson.loads(run.stdout)
    assert (result["executor"], result["stdout_text"]) == (pair.executor_id, "Hello, World!\n")
    assert result["module_sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()
    with pair.requester.client() as client:
        assert client.verify(result)["valid"] is True


def test_a_module_above_the_api_body_limit_runs_on_the_peer_by_sha256(
        pair: Pair, tmp_path: Path) -> None:
    # 64 MiB: uploaded streamed (POST /v1/modules is capped by blobs.max_module_bytes, not
    # api.max_body_bytes), then fetched by the executor over /plasm/blob/1.0.0.
    module = padded(example("hello").read_bytes(), BIG_MODULE_BYTES)
    digest = hashlib.sha256(module).hexdigest()
    with pair.requester.client(timeout=WAIT_S) as client:
        assert client.upload_module(module) == digest
        del module
        result = client.submit(
            module_sha256=digest,
            stdin=b"big",
            placement={"mode": "peer", "peer_id": pair.executor_id},
            wait=WAIT_S,
        )
        assert result["status"] == "done", result.get("error")
        assert (result["executor"], result["stdout_text"]) == (pair.executor_id, "gib\n")
        assert result["receipt"]["body"]["module_sha256"] == digest
        assert client.verify(result)["valid"] is True
