"""A damaged journal: plasmd refuses to start on it with one line, instead of writing into it."""

from __future__ import annotations

import os
import subprocess

import pytest
from daemon_checks import example_bytes

from tests.conftest import plasmd_command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

JOURNAL = "journal.sqlite3"


def _damage(path, page_size: int = 4096) -> None:
    """Overwrite every page but the first (the header) with garbage, as a bad disk would."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        for offset in range(page_size, size, page_size):
            f.seek(offset)
            f.write(os.urandom(64) + b"\xff" * 64)


def test_a_damaged_journal_is_refused_at_start_with_one_line_naming_it(daemon_factory) -> None:
    daemon = daemon_factory()
    with daemon.client() as client:
        for _ in range(20):
            client.submit(module=example_bytes("hello"), stdin=b"x" * 500, wait=10)
    assert daemon.stop() == 0
    journal = daemon.state_dir / JOURNAL
    for leftover in ("-wal", "-shm"):
        journal.with_name(JOURNAL + leftover).unlink(missing_ok=True)
    _damage(journal)

    proc = subprocess.run(
        plasmd_command("run", "--state-dir", str(daemon.state_dir), "--socket",
                       str(daemon.socket), "--no-network"),
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("plasmd")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(journal) in lines[0]
    assert "damaged" in lines[0] and "move" in lines[0]
