"""Running `plasmd` as a subprocess and checking what it prints.

Imported by file name (`from cli_runs import ...`): pytest puts this folder on sys.path
for its test modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from plasm.protocol import verification
from plasm.protocol.receipt import Receipt
from plasm.protocol.schemas import validator

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "wasm-examples"


def example(name: str) -> Path:
    return EXAMPLES / f"{name}.wasm"


def plasmd(*args: str | Path, stdin: bytes = b"", timeout: float = 60
           ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "plasm.cli", *map(str, args)], input=stdin,
                          capture_output=True, timeout=timeout, check=False)


def json_result(run: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    """The `--json` result a run printed, checked against the schema, and the run's exit
    status against the job's outcome (the table in plasm.commands._exit)."""
    from plasm.commands._exit import exit_status

    assert run.stdout.strip(), run.stderr.decode()
    result: dict[str, Any] = orjson.loads(run.stdout)
    errors = [error.message for error in validator("job-result").iter_errors(result)]
    assert errors == [], errors
    outcome = result["outcome"]
    expected = exit_status(outcome["kind"], outcome.get("exit_code"))
    assert run.returncode == expected, (run.returncode, outcome, run.stderr.decode())
    return result


def verified_receipt(result: dict[str, Any]) -> Receipt:
    """The receipt of a saved result, verified against the output the result carries."""
    envelope, expected = verification.expectations_from_saved(orjson.dumps(result))
    assert "stdout" in expected  # a result: every field is checked against the receipt
    return verification.verified_receipt(envelope, expected)


def one_line_error(run: subprocess.CompletedProcess[bytes], status: int = 2) -> str:
    """Assert the run failed with exit ``status`` and an error on its last line, no
    traceback."""
    text = run.stderr.decode()
    assert run.returncode == status, (run.returncode, text)
    assert "Traceback" not in text
    last = text.strip().splitlines()[-1]
    assert "error:" in last
    return last
