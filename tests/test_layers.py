"""Layer rules checked by import inspection, each in a fresh interpreter.

``plasm.protocol`` is sans-IO: importing it (all of it) must load no socket, threading,
pykka, trio, libp2p, wasmtime or sqlite3 module. ``plasm.runtime.job`` must load no wasmtime.
Modules the bare interpreter already loads (on some builds ``threading`` is among them) are
taken from a baseline interpreter that imports nothing, and not held against us.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

FORBIDDEN_IN_PROTOCOL = (
    *("socket", "_socket", "threading", "pykka", "trio", "libp2p", "wasmtime"),
    *("sqlite3", "_sqlite3"),
)

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(*imports: str) -> set[str]:
    """Every module in ``sys.modules`` of a fresh interpreter after importing ``imports``."""
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, *imports],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(completed.stdout))


def roots(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def protocol_modules() -> list[str]:
    import plasm.protocol

    names = [
        info.name
        for info in pkgutil.iter_modules(plasm.protocol.__path__, prefix="plasm.protocol.")
    ]
    return ["plasm.protocol", *names]


def test_protocol_has_the_expected_submodules() -> None:
    names = protocol_modules()
    for expected in ("cbor", "framing", "messages", "receipt", "manifest", "identity"):
        assert f"plasm.protocol.{expected}" in names


@pytest.mark.timeout(90)
def test_importing_all_of_protocol_loads_no_io_concurrency_or_sandbox_module() -> None:
    baseline = roots(loaded_modules())
    loaded = roots(loaded_modules(*protocol_modules()))
    assert "plasm" in loaded  # the probe really imported the package
    offending = sorted(name for name in FORBIDDEN_IN_PROTOCOL if name in loaded - baseline)
    assert offending == []


@pytest.mark.timeout(90)
def test_importing_runtime_job_loads_no_wasmtime() -> None:
    loaded = roots(loaded_modules("plasm.runtime.job"))
    assert "plasm" in loaded
    assert "wasmtime" not in loaded


@pytest.mark.timeout(90)
def test_the_probe_does_see_a_forbidden_import() -> None:
    # guards the two tests above against a probe that can never fail
    loaded = roots(loaded_modules("plasm.runtime.sandbox"))
    assert "wasmtime" in loaded
