"""docs/api.md stays true: its endpoints exist on a real daemon, its error codes are the code's."""

from __future__ import annotations

import re

import orjson
import pytest
from daemon_checks import REPO

from plasm.actors.errors import ERROR_CODES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

API_DOC = REPO / "docs" / "api.md"
ENDPOINT_ROW = re.compile(r"^\| `(GET|POST|DELETE|PUT)` \| `(/[^`]*)` \|", re.MULTILINE)
ERROR_ROW = re.compile(r"^\| (\d{3}) \| `([a-z_]+)` \|", re.MULTILINE)
ERROR_IN_CODE = re.compile(r'ApiError\(\s*\w+,\s*"([a-z_]+)"')


def documented_endpoints() -> list[tuple[str, str]]:
    return ENDPOINT_ROW.findall(API_DOC.read_text())


def test_the_doc_lists_the_endpoints_the_issue_asks_for() -> None:
    listed = set(documented_endpoints())
    assert {("POST", "/v1/modules"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs"),
            ("GET", "/v1/jobs/{id}"), ("DELETE", "/v1/jobs/{id}"), ("GET", "/v1/node"),
            ("GET", "/v1/health"), ("GET", "/metrics"),
            ("POST", "/v1/receipts/verify")} <= listed


def test_every_documented_endpoint_exists_on_a_running_daemon(daemon) -> None:
    endpoints = documented_endpoints()
    with daemon.client() as client:
        for method, path in endpoints:
            concrete = path.replace("{id}", "0" * 32).replace("{sha256}", "0" * 64)
            status, payload = client.request_raw(method, concrete.replace("{path}", "x"),
                                                 body=b"{}" if method == "POST" else None,
                                                 content_type="application/json")
            if status in (404, 405):
                code = orjson.loads(payload)["error"]["code"]
                assert code not in {"not_found", "method_not_allowed"}, (method, path, code)


def test_every_error_code_the_api_raises_is_documented_and_vice_versa() -> None:
    documented = {code for _, code in ERROR_ROW.findall(API_DOC.read_text())}
    raised = set()
    for source in (REPO / "plasm" / "api").glob("*.py"):
        raised |= set(ERROR_IN_CODE.findall(source.read_text()))
    assert raised, "found no ApiError in plasm/api: the pattern is stale"
    raised |= {code.code for code in ERROR_CODES.values()}  # refusals of the actor layer
    assert raised == documented


def test_every_documented_status_goes_with_its_code() -> None:
    sources = "".join(p.read_text() for p in (REPO / "plasm" / "api").glob("*.py"))
    from_table = {code.code: str(code.status) for code in ERROR_CODES.values()}
    for status, code in ERROR_ROW.findall(API_DOC.read_text()):
        if code in from_table:
            assert from_table[code] == status, (code, from_table[code], status)
            continue
        literal = re.search(rf'ApiError\(\s*(\w+),\s*"{code}"', sources)
        assert literal is not None, code
        if literal.group(1).isdigit():
            assert literal.group(1) == status, (code, literal.group(1), status)
