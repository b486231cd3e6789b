"""The receipt transparency log of a real daemon: every receipt it signs is a leaf, results
carry their inclusion proof, the API serves heads and proofs, and a SIGKILL loses nothing.

Proofs are checked here with `rfc9162_*` below, written from RFC 9162 §2.1.3.2 and §2.1.4.2
alone (not with plasm.protocol.merkle), and heads with pycose, an independent COSE library.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cbor2
import pytest
from daemon_checks import checked_result, example_bytes, start_spinning_job

from plasm.client import ApiRequestError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


# --- RFC 9162, from the text -------------------------------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc9162_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _h(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def rfc9162_consistency(m: int, n: int, root1: bytes, root2: bytes, path: list[bytes]) -> bool:
    if m == n:
        return not path and root1 == root2
    if not path:
        return False
    if m & (m - 1) == 0:  # a power of two: the first tree's root starts the proof
        path = [root1, *path]
    fn, sn = m - 1, n - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = _h(b"\x01" + c + fr), _h(b"\x01" + c + sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _h(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0


def _head(cose_b64: str, peer_id: str) -> dict[str, Any]:
    """A signed tree head, checked with pycose, as its payload map."""
    from pycose.keys.curves import Ed25519
    from pycose.keys.okp import OKPKey

    from plasm.protocol.identity import public_key_from_peer_id
    from tests.protocol.test_cose import pycose_decode

    message = pycose_decode(base64.b64decode(cose_b64))
    message.key = OKPKey(crv=Ed25519, x=public_key_from_peer_id(peer_id))
    assert message.verify_signature()
    assert message.phdr_encoded and cbor2.loads(message.phdr_encoded) == {
        1: -8,
        3: "application/vnd.plasm.tree-head+cbor",
        4: peer_id.encode(),
    }
    body = cbor2.loads(message.payload)
    assert set(body) == {"node", "root", "size", "timestamp_ms"} and body["node"] == peer_id
    return body


def _leaf(result: dict[str, Any]) -> bytes:
    return _h(b"\x00" + base64.b64decode(result["receipt"]["cose"]))


def _jobs(client: Any, count: int, tag: str) -> list[dict[str, Any]]:
    return [
        client.submit(module=example_bytes("hello"), args=[f"{tag}{i}"], wait=30)
        for i in range(count)
    ]


def test_every_result_carries_a_proof_that_the_signed_log_includes_it(daemon) -> None:
    with daemon.client() as client:
        peer_id = client.node()["peer_id"]
        results = _jobs(client, 5, "log")
        head = client.log("head")
    indexes = []
    for result in results:
        checked_result(result)  # the schema knows `log`
        proof = result["log"]
        body = _head(proof["head"], peer_id)
        assert body["size"] == proof["size"] and body["root"].hex() == proof["root"]
        path = [bytes.fromhex(p) for p in proof["path"]]
        assert rfc9162_inclusion(
            proof["index"], proof["size"], _leaf(result), path, bytes.fromhex(proof["root"])
        )
        indexes.append(proof["index"])
    assert indexes == list(range(5))  # one leaf per receipt, in the order they were signed
    assert head["size"] == 5 and _head(head["cose"], peer_id)["root"].hex() == head["root"]


def test_the_api_serves_inclusion_and_consistency_proofs_and_the_entries(daemon) -> None:
    with daemon.client() as client:
        peer_id = client.node()["peer_id"]
        assert client.log("head") == {
            "size": 0,
            "root": hashlib.sha256(b"").hexdigest(),
            "cose": None,
        }
        first = _jobs(client, 3, "a")
        old = client.log("head")
        later = _jobs(client, 4, "b")
        new = client.log("head")
        results = first + later
        inclusions = [client.log("inclusion", index=i, size=new["size"]) for i in range(7)]
        consistency = client.log("consistency", **{"from": old["size"], "to": new["size"]})
        entries = client.log("entries", start=0, end=7)
        with pytest.raises(ApiRequestError) as past_head:
            client.log("inclusion", index=0, size=new["size"] + 1)
        with pytest.raises(ApiRequestError) as missing:
            client.log("consistency", to=3)
    assert (old["size"], new["size"]) == (3, 7)
    root = bytes.fromhex(new["root"])
    for index, (result, proof) in enumerate(zip(results, inclusions, strict=True)):
        path = [bytes.fromhex(p) for p in proof["path"]]
        assert rfc9162_inclusion(index, 7, _leaf(result), path, root)
        assert not rfc9162_inclusion((index + 1) % 7, 7, _leaf(result), path, root)
    path = [bytes.fromhex(p) for p in consistency["path"]]
    assert rfc9162_consistency(3, 7, bytes.fromhex(old["root"]), root, path)
    assert not rfc9162_consistency(3, 7, hashlib.sha256(b"forged").digest(), root, path)
    assert entries["entries"] == [r["receipt"]["cose"] for r in results]
    assert _head(new["cose"], peer_id)["size"] == 7
    assert past_head.value.status == 400 and "signed tree head" in past_head.value.message
    assert missing.value.status == 400 and "from" in missing.value.message


def test_verify_checks_the_log_proof_offline_and_rejects_a_forged_one(
    daemon, tmp_path: Path
) -> None:
    with daemon.client() as client:
        _jobs(client, 2, "pad")
        result = client.submit(module=example_bytes("hello"), args=["proved"], wait=30)
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(result))
    ok = _verify(saved)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "log" in ok.stdout
    forged = dict(result, log=dict(result["log"], index=0))
    saved.write_text(json.dumps(forged))
    bad = _verify(saved)
    assert bad.returncode == 1 and "log_invalid" in bad.stdout + bad.stderr
    with daemon.client() as client:
        verdict = client.verify(forged)
    assert verdict["valid"] is False and verdict["reason"] == "log_invalid"


def test_a_daemon_killed_mid_job_keeps_a_log_consistent_with_every_head_it_signed(
    daemon_factory,
) -> None:
    first = daemon_factory()
    heads = []
    with first.client() as client:
        peer_id = client.node()["peer_id"]
        for round_ in range(3):
            _jobs(client, 2, f"r{round_}")
            heads.append(client.log("head"))
        start_spinning_job(client)
    first.kill()

    second = daemon_factory(first.state_dir)
    with second.client() as client:
        kept = client.log("head")
        fresh = client.submit(module=example_bytes("hello"), args=["after"], wait=30)
        now = client.log("head")
        proofs = [
            client.log("consistency", **{"from": h["size"], "to": now["size"]}) for h in heads
        ]
    assert kept == heads[-1]  # nothing signed before the kill is lost or changed
    assert fresh["log"]["index"] == heads[-1]["size"] and now["size"] == heads[-1]["size"] + 1
    for head, proof in zip(heads, proofs, strict=True):
        _head(head["cose"], peer_id)
        path = [bytes.fromhex(p) for p in proof["path"]]
        assert rfc9162_consistency(
            head["size"], now["size"], bytes.fromhex(head["root"]), bytes.fromhex(now["root"]),
            path,
        )


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plasm.cli", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
