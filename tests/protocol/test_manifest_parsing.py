"""Manifests: the schema and the semantic checks, each refusal naming its JSON path."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from plasm.protocol.errors import ManifestError
from plasm.protocol.manifest import parse_manifest
from plasm.runtime.job import JobInput, Limits

MODULE = b"\x00asm\x01\x00\x00\x00"
MODULE_B64 = base64.b64encode(MODULE).decode()
PEER = "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"


def refusal(obj: Any, **kwargs: Any) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse_manifest(obj, **kwargs)
    return info.value


def test_a_minimal_manifest_takes_every_default() -> None:
    manifest = parse_manifest({"module": MODULE_B64})
    assert manifest.module == MODULE
    assert manifest.module_sha256 == hashlib.sha256(MODULE).hexdigest()
    assert manifest.job_input == JobInput()
    assert manifest.limits == Limits()
    assert manifest.placement == {"mode": "local"}


def test_a_full_manifest_becomes_typed_values() -> None:
    manifest = parse_manifest(
        {
            "module": MODULE_B64,
            "module_name": "hello.wasm",
            "stdin": base64.b64encode(b"abc").decode(),
            "args": ["-n", "3"],
            "env": {"TZ": "UTC", "LANG": "C"},
            "limits": {"fuel": 1000, "timeout_ms": 50},
            "placement": {"mode": "any", "requirements": {"arch": "x86_64"}, "exclude_self": True},
        }
    )
    assert manifest.module_name == "hello.wasm"
    assert manifest.job_input == JobInput(
        stdin=b"abc", args=("-n", "3"), env=(("LANG", "C"), ("TZ", "UTC")), module_name="hello.wasm"
    )
    assert manifest.limits == Limits(fuel=1000, timeout_ms=50)
    assert manifest.placement["requirements"] == {"arch": "x86_64"}


def test_a_module_named_by_hash_has_no_bytes() -> None:
    manifest = parse_manifest(
        {"module_sha256": "ab" * 32, "placement": {"mode": "peer", "peer_id": PEER}}
    )
    assert manifest.module is None
    assert manifest.module_sha256 == "ab" * 32
    assert manifest.placement == {"mode": "peer", "peer_id": PEER}


def test_missing_limits_come_from_the_given_defaults() -> None:
    defaults = Limits(fuel=7, memory_bytes=2**20, timeout_ms=9, max_output_bytes=11)
    manifest = parse_manifest(
        {"module": MODULE_B64, "limits": {"fuel": 5}}, default_limits=defaults
    )
    assert manifest.limits == Limits(fuel=5, memory_bytes=2**20, timeout_ms=9, max_output_bytes=11)


@pytest.mark.parametrize(
    ("obj", "path", "words"),
    [
        ({}, "$", "exactly one of 'module'"),
        ({"module": MODULE_B64, "module_sha256": "ab" * 32}, "$", "exactly one"),
        ({"module_sha256": "AB" * 32}, "$.module_sha256", "does not match"),
        ({"module": MODULE_B64, "colour": "red"}, "$", "unknown field(s) colour"),
        ({"module": MODULE_B64, "args": ["ok", 3]}, "$.args[1]", "not of type 'string'"),
        ({"module": MODULE_B64, "env": {"A": 1}}, "$.env.A", "not of type 'string'"),
        ({"module": MODULE_B64, "env": {"A=B": "x"}}, "$.env", "does not match"),
        ({"module": MODULE_B64, "limits": {"fuel": 0}}, "$.limits.fuel", "minimum of 1"),
        ({"module": MODULE_B64, "limits": {"fuel": True}}, "$.limits.fuel", "not of type"),
        ({"module": MODULE_B64, "limits": {"fuel": 1.5}}, "$.limits.fuel", "not of type"),
        ({"module": MODULE_B64, "limits": {"cpu": 1}}, "$.limits", "unknown field(s) cpu"),
        ({"module": MODULE_B64, "placement": {"mode": "moon"}}, "$.placement.mode", "one of"),
        ({"module": MODULE_B64, "placement": {"mode": "peer"}}, "$.placement", "'peer_id' is"),
        (
            {"module": MODULE_B64, "placement": {"mode": "local", "peer_id": PEER}},
            "$.placement",
            "does not belong",
        ),
        (
            {"module": MODULE_B64, "placement": {"mode": "any", "requirements": {"min_fuel": 0}}},
            "$.placement.requirements.min_fuel",
            "minimum of 1",
        ),
        ({"module": MODULE_B64, "stdin": "%%%%"}, "$.stdin", "does not match"),
        ({"module": "AGFzbQ"}, "$.module", "not valid base64"),
        ({"module": MODULE_B64, "module_name": ""}, "$.module_name", "non-empty"),
        ({"module": MODULE_B64, "args": ["nul\u0000inside"]}, "$.args[0]", "does not match"),
    ],
)
def test_an_invalid_manifest_is_refused_with_its_path(obj: Any, path: str, words: str) -> None:
    error = refusal(obj)
    assert error.path == path
    assert words in str(error)


def test_a_manifest_that_is_not_an_object_is_refused() -> None:
    assert refusal(["module"]).path == "$"


def test_a_huge_bad_value_gives_a_short_message() -> None:
    error = refusal({"module": "%" * 100_000})
    assert error.path == "$.module"
    assert len(str(error)) < 400


def test_determinism_seed_and_epoch_reach_the_job_input() -> None:
    manifest = parse_manifest({"module": MODULE_B64, "seed": "00ff", "epoch_ms": 5})
    assert manifest.job_input.deterministic
    assert (manifest.job_input.seed, manifest.job_input.epoch_ms) == (b"\x00\xff", 5)
    off = parse_manifest({"module": MODULE_B64, "determinism": "off"})
    assert not off.job_input.deterministic


@pytest.mark.parametrize(
    ("extra", "path"),
    [({"determinism": "sometimes"}, "$.determinism"),
     ({"seed": "0"}, "$.seed"), ({"seed": "ZZ"}, "$.seed"), ({"seed": "00" * 65}, "$.seed"),
     ({"epoch_ms": -1}, "$.epoch_ms"),
     ({"determinism": "off", "seed": "00"}, "$.determinism"),
     ({"determinism": "off", "epoch_ms": 0}, "$.determinism")],
)
def test_bad_determinism_fields_are_refused_naming_them(extra: dict[str, Any], path: str) -> None:
    assert refusal({"module": MODULE_B64, **extra}).path == path
