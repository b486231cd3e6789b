"""Modules above the API's body limit, against a real daemon: `POST /v1/modules` streams
the body to disk (capped by blobs.max_module_bytes, not api.max_body_bytes), the journal
copies it in, and a job runs it by sha256. A module over the cap is a clear 413 through
the Python client and the CLI, and nothing of a refused or cut-short upload is kept.

The big modules are made here (hello.wasm plus a custom section of random bytes), never
committed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from daemon_checks import api_error

from bench._modules import padded
from plasm.client import ApiRequestError, Client
from tests.conftest import example, plasmd_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MIB = 2**20
BIG_BYTES = 40 * MIB  # above api.max_body_bytes (32 MiB by default)
SMALL_CAP = """\
[blobs]
max_module_bytes = "2MiB"
"""


def hello_padded(size: int) -> bytes:
    return padded(example("hello").read_bytes(), size)


def staged_files(daemon) -> list[Path]:
    """Temporary files of the blob store (a staged upload while it is being written)."""
    return [p for p in (daemon.state_dir / "blobs").iterdir() if p.name.startswith(".tmp-")]


def blob_files(daemon) -> list[Path]:
    return [p for p in (daemon.state_dir / "blobs").rglob("*") if p.is_file()]


def journaled_module_sizes(daemon) -> dict[str, int]:
    with sqlite3.connect(f"file:{daemon.state_dir / 'journal.sqlite3'}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT sha256, size FROM modules"))


def refusal(call) -> tuple[int, str]:
    with pytest.raises(ApiRequestError) as refused:
        call()
    return api_error(refused.value)


def wait_until_nothing_staged(daemon, timeout_s: float = 10.0) -> list[Path]:
    """The staged files left once the daemon has seen the client go (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while (left := staged_files(daemon)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_module_above_the_api_body_limit_uploads_streamed_and_runs_by_sha256(daemon) -> None:
    module = hello_padded(BIG_BYTES)
    digest = hashlib.sha256(module).hexdigest()
    with daemon.client(timeout=120) as client:
        answer = client.request("POST", "/v1/modules", body=module,
                                content_type="application/wasm", timeout=120)
        assert answer == {"sha256": digest, "size": len(module)}
        result = client.submit(module_sha256=digest, stdin=b"abc", wait=120)
        assert result["status"] == "done", result.get("error")
        assert result["stdout_text"] == "cba\n"
        assert result["module_sha256"] == digest
        assert client.verify(result)["valid"] is True
        # Uploading the same bytes again changes nothing and answers the same.
        assert client.upload_module(module) == digest
    assert journaled_module_sizes(daemon)[digest] == len(module)
    # The staged file is gone, and the module was not kept as a blob as well.
    assert staged_files(daemon) == []
    assert digest not in {p.name for p in blob_files(daemon)}


def test_a_big_module_survives_a_restart(daemon) -> None:
    module = hello_padded(BIG_BYTES)
    with daemon.client(timeout=120) as client:
        digest = client.upload_module(module)
    daemon.stop()
    daemon.start()
    with daemon.client(timeout=120) as client:
        result = client.submit(module_sha256=digest, stdin=b"xy", wait=120)
    assert (result["status"], result["stdout_text"]) == ("done", "yx\n"), result.get("error")


TOKEN = "big-modules-token-" + "x" * 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def capped(daemon_factory, tmp_path: Path):
    """A daemon taking modules of at most 2 MiB, on its Unix socket and on TCP."""
    token_file = tmp_path / "api.token"
    token_file.write_text(TOKEN)
    os.chmod(token_file, 0o600)
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "plasmd.toml"
    config.write_text(f'{SMALL_CAP}[api]\ntcp_listen = "{address}"\ntoken_file = "{token_file}"\n')
    return daemon_factory(config=config), address


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_a_module_over_the_cap_is_413_module_too_large_through_the_client(
        capped, transport: str) -> None:
    daemon, address = capped

    def client() -> Client:
        if transport == "unix":
            return daemon.client(timeout=60)
        return Client(tcp=address, token=TOKEN, timeout=60)

    module = hello_padded(8 * MIB)  # the client is still sending when the daemon answers
    with client() as plasm, pytest.raises(ApiRequestError) as refused:
        plasm.upload_module(module)
    assert (refused.value.status, refused.value.code) == (413, "module_too_large")
    assert "blobs.max_module_bytes" in refused.value.message
    assert str(2 * MIB) in refused.value.message
    # Under the cap is fine on the same node, on the same client after the close.
    with client() as plasm:
        with pytest.raises(ApiRequestError) as refused:
            plasm.upload_module(module)
        assert refused.value.code == "module_too_large"
        small = hello_padded(MIB)
        assert plasm.upload_module(small) == hashlib.sha256(small).hexdigest()
    assert staged_files(daemon) == []
    assert len(journaled_module_sizes(daemon)) == 1


def test_a_wrong_token_on_a_big_upload_is_401(capped) -> None:
    _, address = capped
    with Client(tcp=address, token="wrong-" + "y" * 20, timeout=60) as plasm, pytest.raises(
            ApiRequestError) as refused:
        plasm.upload_module(hello_padded(8 * MIB))
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")


def test_the_cli_reports_the_413_of_a_module_over_the_cap(daemon_factory, tmp_path: Path) -> None:
    config = tmp_path / "plasmd.toml"
    config.write_text(SMALL_CAP)
    daemon = daemon_factory(config=config)
    module = tmp_path / "big.wasm"
    module.write_bytes(hello_padded(12 * MIB))  # above 8 MiB: submit uploads it first
    run = subprocess.run(
        plasmd_command("submit", str(module), "--socket", str(daemon.socket), "--wait=30"),
        capture_output=True, timeout=90, check=False)
    stderr = run.stderr.decode(errors="replace")
    assert run.returncode != 0
    assert "module_too_large" in stderr and "blobs.max_module_bytes" in stderr, stderr
    assert "closed the connection" not in stderr


def test_a_staged_body_that_is_not_wasm_is_400_and_nothing_is_kept(daemon) -> None:
    with daemon.client(timeout=60) as client:
        assert refusal(lambda: client.request(
            "POST", "/v1/modules", body=b"\x7fELF" + bytes(3 * MIB),
            content_type="application/wasm")) == (400, "invalid_module")
        assert refusal(lambda: client.request(
            "POST", "/v1/modules", body=b"", content_type="application/wasm"
        )) == (400, "invalid_module")
        assert refusal(lambda: client.request(
            "POST", "/v1/modules", body=hello_padded(MIB), content_type="text/plain"
        )) == (415, "unsupported_media_type")
    assert staged_files(daemon) == [] and blob_files(daemon) == []
    assert journaled_module_sizes(daemon) == {}


def test_an_upload_cut_short_leaves_nothing(daemon) -> None:
    module = hello_padded(4 * MIB)
    head = (b"POST /v1/modules HTTP/1.1\r\nHost: plasmd\r\nContent-Type: application/wasm\r\n"
            b"Content-Length: %d\r\n\r\n" % len(module))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(daemon.socket))
        sock.sendall(head + module[: len(module) // 2])
    digest = hashlib.sha256(module).hexdigest()
    assert wait_until_nothing_staged(daemon) == []
    with daemon.client() as client:
        assert client.health() == {"status": "ok"}  # the daemon serves on
        assert refusal(lambda: client.submit(module_sha256=digest, wait=10)) == (
            404, "unknown_module")
    assert journaled_module_sizes(daemon) == {}
    assert staged_files(daemon) == []
