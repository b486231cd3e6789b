"""The API under connection pressure and hostile framing, against a real daemon.

Thousands of idle connections under a systemd-like task limit (a pids cgroup with
pids.max = 512, as TasksMax=512 sets), silent and slow clients, a header line without a
colon, and bodies cut short of their Content-Length: each gets a bounded, clear answer
(or a closed connection), nothing half-received is stored, and the node keeps serving.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from daemon_checks import (
    daemon_alive_and_healthy,
    example_bytes,
    raw_exchange,
    start_spinning_job,
    status_of,
    write_config,
)

from plasm.client import ApiRequestError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

IDLE_CONNECTIONS = 5000
WAITERS = 300
TASKS_MAX = 512
PIDS_CGROUP_ROOT = Path("/sys/fs/cgroup/pids")  # cgroup v1, as on this kind of machine


def daemon_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _pids_hierarchy() -> Path:
    """A writable directory under which a new cgroup gets a `pids.max`: the pids controller
    of cgroup v1, of cgroup v2 (enabled for children), or one this test mounts (root)."""
    if os.access(PIDS_CGROUP_ROOT, os.W_OK):
        return PIDS_CGROUP_ROOT
    unified = Path("/sys/fs/cgroup")
    controllers = unified / "cgroup.controllers"
    if controllers.exists() and "pids" in controllers.read_text().split():
        with contextlib.suppress(OSError):
            (unified / "cgroup.subtree_control").write_text("+pids\n")
        return unified
    mounted = Path(f"/tmp/plasm-pids-{os.getpid()}")
    mounted.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "cgroup", "-o", "pids", "plasm-pids", str(mounted)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(
            "this test needs a pids cgroup to emulate TasksMax and found none: no "
            f"{PIDS_CGROUP_ROOT}, no pids in cgroup v2, and mounting one failed: "
            f"{done.stderr.strip()} (run it as root on a machine with the pids controller)"
        )
    return mounted


@contextlib.contextmanager
def pids_cgroup(limit: int) -> Iterator[Path]:
    """A pids cgroup with `pids.max = limit` (what systemd's TasksMax sets), removed after."""
    group = _pids_hierarchy() / f"plasm-test-{os.getpid()}-{time.monotonic_ns()}"
    group.mkdir()
    try:
        (group / "pids.max").write_text(f"{limit}\n")
        yield group
    finally:
        for _ in range(200):  # the daemon's exit empties it; rmdir then succeeds
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError(f"{group} still holds tasks; remove it by hand")


@contextlib.contextmanager
def raised_open_files(wanted: int) -> Iterator[None]:
    """At least `wanted` open files for this process; a hard limit below it is raised too
    (the tests run as root, which may), and both come back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new_hard = hard if hard == resource.RLIM_INFINITY or hard >= wanted else wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), new_hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_idle(path: Path, count: int, within_s: float = 60.0) -> list[socket.socket]:
    """`count` connections to `path`; a full accept backlog (EAGAIN) is retried until the
    deadline, so a server that accepts slowly is waited for and one that stopped fails."""
    held: list[socket.socket] = []
    deadline = time.monotonic() + within_s
    try:
        while len(held) < count:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            try:
                sock.connect(str(path))
            except BlockingIOError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            held.append(sock)
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held


def test_five_thousand_idle_connections_under_a_task_limit_leave_the_api_serving(
    daemon_factory, tmp_path
) -> None:
    config = write_config(
        tmp_path,
        '[executor]\ncount = 2\ncpu_affinity = "off"\n'
        "[api]\nmax_connections = 6000\nidle_timeout_ms = 120000\n",
    )
    with raised_open_files(IDLE_CONNECTIONS + 1000), pids_cgroup(TASKS_MAX) as group:
        # The daemon joins the cgroup before it execs, so every thread it starts counts.
        join = f'echo $$ > {group}/cgroup.procs && exec "$0" "$@"'
        daemon = daemon_factory(
            None, config=config, program=("sh", "-c", join, sys.executable, "-m", "plasm.cli")
        )
        assert daemon.proc is not None
        try:
            held = open_idle(daemon.socket, IDLE_CONNECTIONS)
            try:
                with daemon.client() as client:
                    assert daemon_alive_and_healthy(client, daemon.proc)
                    result = client.submit(module=example_bytes("hello"), wait=30)
                    assert result["status"] == "done"
                # Threads do not grow with connections: well under the task limit.
                assert daemon_threads(daemon.proc.pid) < 64
            finally:
                for sock in held:
                    sock.close()
            with daemon.client() as client:
                assert daemon_alive_and_healthy(client, daemon.proc)
        finally:
            daemon.stop()  # before the cgroup goes: it cannot while a task is in it


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP response from a kept-alive connection: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-body"
        body += chunk
    return status_of(head), body


def test_clients_waiting_for_their_jobs_hold_no_threads(daemon_factory, tmp_path) -> None:
    config = write_config(tmp_path, '[executor]\ncount = 1\ncpu_affinity = "off"\n')
    daemon = daemon_factory(None, config=config)
    assert daemon.proc is not None
    with daemon.client() as client:
        sha = client.upload_module(example_bytes("hello"))
        spinner = start_spinning_job(client)  # every job after it waits in the queue
        body = orjson.dumps({"module_sha256": sha})
        request = (
            b"POST /v1/jobs?wait=60 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        waiting = open_idle(daemon.socket, WAITERS)
        try:
            for sock in waiting:
                sock.sendall(request)
            deadline = time.monotonic() + 30
            while len(client.jobs(limit=WAITERS + 1)) < WAITERS + 1:
                assert time.monotonic() < deadline, "the waiting jobs were not all admitted"
                time.sleep(0.05)
            assert daemon_threads(daemon.proc.pid) < 64
            client.cancel(spinner)
            for sock in waiting:
                sock.settimeout(60)
                status, answer = read_response(sock)
                assert (status, orjson.loads(answer)["status"]) == (200, "done")
        finally:
            for sock in waiting:
                sock.close()


def test_connections_past_max_connections_are_refused_with_503_and_the_api_serves(
    daemon_factory, tmp_path
) -> None:
    config = write_config(tmp_path, "[api]\nmax_connections = 20\nidle_timeout_ms = 60000\n")
    daemon = daemon_factory(None, config=config)
    held = open_idle(daemon.socket, 20)
    try:
        answer = raw_exchange(daemon.socket, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(answer) == 503
        assert b'"too_many_connections"' in answer
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the server notices the closes on its next loop turn
        with daemon.client() as client:
            try:
                assert daemon_alive_and_healthy(client, daemon.proc)
                break
            except ApiRequestError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_a_header_line_without_a_colon_is_400(daemon) -> None:
    answer = raw_exchange(
        daemon.socket, b"GET /v1/health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"
    )
    assert status_of(answer) == 400
    assert b'"bad_request"' in answer
    with daemon.client() as client:
        assert daemon_alive_and_healthy(client, daemon.proc)


def test_a_module_upload_cut_short_of_its_length_stores_nothing(daemon) -> None:
    module = example_bytes("hello")
    half = module[: len(module) // 2]
    head = (
        b"POST /v1/modules HTTP/1.1\r\nHost: x\r\nContent-Type: application/wasm\r\n"
        b"Content-Length: %d\r\n\r\n" % len(module)
    )
    answer = raw_exchange(daemon.socket, head + half)
    assert answer == b"" or status_of(answer) == 400
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.submit(module_sha256=hashlib.sha256(half).hexdigest(), wait=10)
    assert (caught.value.status, caught.value.code) == (404, "unknown_module")


def test_a_job_body_cut_short_of_its_length_creates_no_job(daemon) -> None:
    body = orjson.dumps({"module": base64.b64encode(example_bytes("hello")).decode()})
    # The JSON is whole; the declared length promises 100 more bytes that never come.
    head = (
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(body) + 100)
    )
    answer = raw_exchange(daemon.socket, head + body)
    assert answer == b"" or status_of(answer) == 400
    with daemon.client() as client:
        assert daemon_alive_and_healthy(client, daemon.proc)
        assert client.jobs() == []


def test_a_silent_connection_is_closed_by_the_server(daemon_factory, tmp_path) -> None:
    config = write_config(tmp_path, "[api]\nidle_timeout_ms = 500\n")
    daemon = daemon_factory(None, config=config)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)  # the bound: far past the configured timeout
        sock.connect(str(daemon.socket))
        assert sock.recv(1024) == b""


def dropped_while_trickling(sock: socket.socket, data: bytes, deadline: float) -> bool:
    """Send `data` a byte every 0.1 s; True once the server closed the connection."""
    for byte in data:
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        time.sleep(0.1)
        try:
            if sock.recv(65536, socket.MSG_DONTWAIT) == b"":
                return True
        except BlockingIOError:
            pass  # nothing from the server yet
        except ConnectionResetError:
            return True
    return False


def test_a_request_sent_a_byte_at_a_time_is_dropped_by_the_server(daemon_factory, tmp_path) -> None:
    config = write_config(tmp_path, "[api]\nrequest_timeout_ms = 1000\n")
    daemon = daemon_factory(None, config=config)
    request = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(daemon.socket))
        deadline = time.monotonic() + 20  # the bound: far past the configured timeout
        assert dropped_while_trickling(sock, request, deadline)
    with daemon.client() as client:
        assert daemon_alive_and_healthy(client, daemon.proc)
