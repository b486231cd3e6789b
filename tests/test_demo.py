"""The README's main job (scripts/demo.py): two real daemons, hello.wasm on a peer, a receipt
verified by the requester and offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo.py"


def test_the_demo_runs_hello_on_a_peer_and_prints_a_verified_receipt() -> None:
    run = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True,
                         timeout=170, stdin=subprocess.DEVNULL, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "output: dlroW ,olleH" in run.stdout
    assert "verified: node A's peer-ID key signed this receipt for node B" in " ".join(
        run.stdout.split()
    )
