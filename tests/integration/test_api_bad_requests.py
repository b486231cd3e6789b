"""Malformed and hostile requests: each gets a clear 4xx (or a closed connection for
raw garbage), and the daemon keeps serving afterwards."""

from __future__ import annotations

import base64
import socket
import time
from typing import Any

import orjson
import pytest
from daemon_checks import (
    daemon_alive_and_healthy,
    example_bytes,
    raw_exchange,
    status_of,
    write_config,
)

from plasm.client import ApiRequestError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HELLO_B64 = base64.b64encode(example_bytes("hello")).decode()


def post_jobs(daemon, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    with daemon.client() as client:
        status, payload = client.request_raw("POST", "/v1/jobs", body=body,
                                             content_type=content_type)
        assert daemon_alive_and_healthy(client, daemon.proc)
    return status, orjson.loads(payload)


def test_invalid_json_is_400_bad_json(daemon) -> None:
    status, answer = post_jobs(daemon, b'{"module": ')
    assert (status, answer["error"]["code"]) == (400, "bad_json")
    assert "JSON" in answer["error"]["message"]


def test_an_empty_body_is_400(daemon) -> None:
    status, answer = post_jobs(daemon, b"")
    assert (status, answer["error"]["code"]) == (400, "empty_body")


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        ({"module": HELLO_B64, "args": "not-a-list"}, "args"),
        ({"module": HELLO_B64, "env": {"K": 1}}, "env"),
        ({"module": HELLO_B64, "limits": {"fuel": "lots"}}, "fuel"),
        ({"module": HELLO_B64, "limits": {"fuel": -1}}, "fuel"),
        ({"module": HELLO_B64, "colour": "blue"}, "colour"),
        ({"module": HELLO_B64, "module_sha256": "ab" * 32}, "module"),
        ({"module": "!!! not base64 !!!"}, "module"),
        ({"module": HELLO_B64, "stdin": "%%%"}, "stdin"),
        ({}, "module"),
        ([1, 2, 3], ""),
    ],
    ids=["args-type", "env-value-type", "limit-type", "negative-limit", "unknown-field",
         "module-and-sha256", "bad-base64-module", "bad-base64-stdin", "no-module", "not-object"],
)
def test_a_bad_manifest_is_400_and_names_the_field(daemon, manifest: Any, named: str) -> None:
    status, answer = post_jobs(daemon, orjson.dumps(manifest))
    assert (status, answer["error"]["code"]) == (400, "bad_manifest")
    assert named in answer["error"]["message"]


def test_a_non_local_placement_is_refused_with_400(daemon) -> None:
    manifest = {"module": HELLO_B64, "placement": {"mode": "any"}}
    status, answer = post_jobs(daemon, orjson.dumps(manifest))
    assert (status, answer["error"]["code"]) == (400, "unsupported_placement")


def test_invalid_cbor_is_400_bad_cbor(daemon) -> None:
    status, answer = post_jobs(daemon, b"\xff\x00\x01", content_type="application/cbor")
    assert (status, answer["error"]["code"]) == (400, "bad_cbor")


def test_a_body_over_max_body_bytes_is_413(daemon_factory, tmp_path) -> None:
    config = write_config(tmp_path, '[api]\nmax_body_bytes = "4KiB"\n')
    daemon = daemon_factory(None, config=config)
    manifest = {"module": HELLO_B64, "stdin": base64.b64encode(b"x" * 8192).decode()}
    status, answer = post_jobs(daemon, orjson.dumps(manifest))
    assert (status, answer["error"]["code"]) == (413, "too_large")
    assert "4096" in answer["error"]["message"]


def test_a_module_upload_that_is_not_wasm_is_400(daemon) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.upload_module(b"#!/bin/sh\necho hi\n")
    assert (caught.value.status, caught.value.code) == (400, "invalid_module")


def test_a_module_upload_with_the_wrong_content_type_is_415(daemon) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.request("POST", "/v1/modules", body=example_bytes("hello"),
                       content_type="text/plain")
    assert caught.value.status == 415


def test_an_unknown_endpoint_under_a_valid_job_id_names_the_job_endpoints(daemon) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.request("POST", f"/v1/jobs/{'0' * 32}/cancel")
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert "no such endpoint" in str(caught.value) and "malformed" not in str(caught.value)
    assert "lowercase hex" not in str(caught.value)


def test_an_unknown_path_is_404(daemon) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.request("GET", "/v1/nothing-here")
    assert (caught.value.status, caught.value.code) == (404, "not_found")


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/v1/jobs"), ("DELETE", "/v1/jobs"), ("POST", "/v1/jobs/" + "0" * 32),
    ("POST", "/v1/health"), ("POST", "/v1/node"), ("DELETE", "/v1/peers"),
    ("GET", "/v1/modules"), ("GET", "/v1/receipts/verify"), ("POST", "/metrics"),
    ("POST", "/v1/log/head"), ("PATCH", "/v1/jobs"), ("OPTIONS", "/v1/health"),
])
def test_a_wrong_method_is_405(daemon, method: str, path: str) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.request(method, path)
    assert (caught.value.status, caught.value.code) == (405, "method_not_allowed")


@pytest.mark.parametrize(("query", "code"), [({"wait": "soon"}, "bad_query"),
                                             ({"wait": "-1"}, "bad_query"),
                                             ({"wait": ""}, "bad_query")])
def test_a_bad_wait_is_400(daemon, query: dict[str, str], code: str) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.request("POST", "/v1/jobs", json={"module": HELLO_B64}, query=query)
    assert (caught.value.status, caught.value.code) == (400, code)


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "many"}, {"status": "sleeping"}])
def test_a_bad_job_list_query_is_400(daemon, query: dict[str, str]) -> None:
    with daemon.client() as client, pytest.raises(ApiRequestError) as caught:
        client.request("GET", "/v1/jobs", query=query)
    assert (caught.value.status, caught.value.code) == (400, "bad_query")


def test_garbage_bytes_on_the_socket_do_not_hurt_the_daemon(daemon) -> None:
    answer = raw_exchange(daemon.socket, bytes(range(256)) * 64)
    assert answer == b"" or 400 <= status_of(answer) < 500
    with daemon.client() as client:
        assert daemon_alive_and_healthy(client, daemon.proc)


def test_a_garbage_request_line_gets_400(daemon) -> None:
    answer = raw_exchange(daemon.socket, b"HELLO THERE\r\n\r\n")
    assert status_of(answer) == 400


def test_a_huge_header_gets_a_4xx_and_the_daemon_keeps_serving(daemon) -> None:
    request = (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
    answer = raw_exchange(daemon.socket, request)
    assert status_of(answer) == 431
    with daemon.client() as client:
        assert daemon_alive_and_healthy(client, daemon.proc)


def test_too_many_headers_get_a_4xx(daemon) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(500))
    answer = raw_exchange(daemon.socket, b"GET /v1/health HTTP/1.1\r\n" + headers + b"\r\n")
    assert status_of(answer) == 431


def test_a_huge_request_line_gets_414(daemon) -> None:
    answer = raw_exchange(daemon.socket, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
    assert status_of(answer) == 414


def test_chunked_bodies_are_refused_with_411(daemon) -> None:
    request = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")
    assert status_of(raw_exchange(daemon.socket, request)) == 411


def test_a_bad_content_length_is_400(daemon) -> None:
    request = b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n"
    assert status_of(raw_exchange(daemon.socket, request)) == 400


@pytest.mark.timeout(30)
def test_a_half_sent_request_that_stalls_then_disconnects_leaves_the_daemon_serving(daemon
                                                                                     ) -> None:
    body = orjson.dumps({"module": HELLO_B64})
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.connect(str(daemon.socket))
        stalled.sendall(head + body[: len(body) // 2])
        time.sleep(0.5)
        # While it stalls, others are served.
        with daemon.client() as client:
            result = client.submit(module=example_bytes("hello"), wait=30)
            assert result["status"] == "done"
    with daemon.client() as client:
        assert daemon_alive_and_healthy(client, daemon.proc)
        # The half-sent job was never admitted.
        assert len(client.jobs()) == 1


def test_many_abrupt_disconnects_leave_the_daemon_serving(daemon) -> None:
    for _ in range(50):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(daemon.socket))
            sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nContent-Len")
    with daemon.client() as client:
        assert daemon_alive_and_healthy(client, daemon.proc)
