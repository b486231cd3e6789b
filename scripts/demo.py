"""Demo: start a real plasmd, run hello.wasm through its API, verify the receipt offline.

Everything lives in a temporary directory and the daemon is stopped (by its PID)
before the script exits, whatever happens.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from plasm.client import Client, ClientError
from plasm.protocol.receipt import verify_envelope
from plasm.protocol.verification import expectations_from_saved

REPO = Path(__file__).resolve().parent.parent
HELLO = REPO / "wasm-examples" / "hello.wasm"
console = Console()


def start_daemon(base: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    socket = base / f"{name}.sock"
    log = open(base / f"{name}.log", "wb")  # noqa: SIM115 - the daemon owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "plasm.cli", "run", "--state-dir", str(base / name),
         "--socket", str(socket), "--log-format", "json"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"plasmd exited: {(base / f'{name}.log').read_text()}")
        try:
            with Client(socket, timeout=2) as client:
                client.health()
            return proc, socket
        except ClientError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("plasmd did not start within 30 s")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="plasm-demo-") as tmp:
        base = Path(tmp)
        proc, socket = start_daemon(base, "node-a")
        try:
            with Client(socket) as client:
                node = client.node()
                console.print(f"[bold]node A[/] {node['peer_id']} is up (API on {socket})")
                console.print("submitting hello.wasm with stdin 'Hello, World' ...")
                result = client.submit(module=HELLO.read_bytes(), module_name="hello.wasm",
                                       stdin=b"Hello, World", wait=30)
                verdict = client.verify(result)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    stdout = base64.b64decode(result["stdout"])
    console.print(f"job {result['job_id']} ran on {result['executor']}")
    console.print(f"[bold]output:[/] {stdout.decode(errors='replace').rstrip()}")
    # Verify offline too, from the saved result alone: no daemon involved.
    envelope, expected = expectations_from_saved(__import__("orjson").dumps(result))
    receipt = verify_envelope(envelope, **expected)
    table = Table(title="receipt", show_header=False)
    body = result["receipt"]["body"]
    for key in ("job_id", "executor", "requester", "module_sha256", "input_sha256",
                "stdout_sha256", "outcome", "fuel_consumed", "wall_time_us"):
        table.add_row(key, str(body[key]))
    table.add_row("engine", f"{body['engine']['name']} {body['engine']['version']}")
    table.add_row("signature", result["receipt"]["signature"][:32] + "...")
    console.print(table)
    ok = verdict["valid"] and receipt.executor == result["executor"]
    if ok:
        console.print("[bold green]verified[/]: the executor's peer-ID key signed this receipt, "
                      "and the output matches its hashes (checked by the daemon and offline)")
        return 0
    console.print(f"[bold red]NOT verified[/]: {verdict['message']}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
