"""Checks shared by the integration tests: results, receipts, raw sockets, configs.

Imported by file name (`from daemon_checks import ...`): pytest puts this folder on
sys.path for its test modules.
"""

from __future__ import annotations

import base64
import re
import socket
import time
from pathlib import Path
from typing import Any

from plasm.client import ApiRequestError, Client
from plasm.protocol.receipt import Receipt, verify_envelope
from plasm.protocol.schemas import validator

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "wasm-examples"
FINAL_STATUSES = frozenset({"done", "failed", "cancelled", "interrupted", "rejected"})
# Enough fuel and time for loop.wasm to spin until it is cancelled or killed.
SPIN_LIMITS = {"fuel": 10**11, "timeout_ms": 300_000}


def example(name: str) -> Path:
    return EXAMPLES / f"{name}.wasm"


def example_bytes(name: str) -> bytes:
    return example(name).read_bytes()


def checked_result(result: dict[str, Any]) -> Receipt:
    """Assert `result` fits the job-result schema and its receipt signs its output."""
    errors = [e.message for e in validator("job-result").iter_errors(result)]
    assert errors == [], errors
    return verify_envelope(
        base64.b64decode(result["receipt"]["cose"]),
        expected_executor=result["executor"],
        expected_job_id=result["job_id"],
        expected_module_sha256=result["module_sha256"],
        stdout=base64.b64decode(result["stdout"]),
        stderr=base64.b64decode(result["stderr"]),
    )


def wait_for_status(
    client: Client, job_id: str, statuses: frozenset[str] = FINAL_STATUSES, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll GET /v1/jobs/{id} until the job has one of `statuses`; the job's JSON."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.job(job_id)
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(0.02)


def start_spinning_job(client: Client) -> str:
    """Submit loop.wasm with a huge budget and wait until an executor runs it."""
    accepted = client.submit(module=example_bytes("loop"), limits=SPIN_LIMITS)
    wait_for_status(client, accepted["job_id"], frozenset({"running"}))
    return str(accepted["job_id"])


def api_error(exc: ApiRequestError) -> tuple[int, str]:
    return exc.status, exc.code


def raw_exchange(sock_path: Path, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on the API socket and read until the daemon closes or goes quiet."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(sock_path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(raw_response: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw_response)
    assert match, f"not an HTTP response: {raw_response[:200]!r}"
    return int(match.group(1))


def write_config(directory: Path, text: str) -> Path:
    path = directory / "plasmd.toml"
    path.write_text(text)
    return path


def metric_samples(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {'name{labels}': value}; comments skipped."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    return samples


def daemon_alive_and_healthy(client: Client, proc: Any) -> bool:
    return proc.poll() is None and client.health() == {"status": "ok"}
