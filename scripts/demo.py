"""Demo: two real plasmd nodes on this machine; B runs hello.wasm on A; verify the receipt.

Node A starts first; node B bootstraps from A's address over libp2p (TCP, Noise,
Yamux on 127.0.0.1). The job is submitted to B's API with placement "any peer but
yourself", so B negotiates with A, ships the module, gets the result and checks A's
receipt; then this script checks it again offline. Everything lives in a temporary
directory and both daemons are stopped (by PID) before the script exits.
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
from plasm.protocol.verification import expectations_from_saved, verified_receipt

REPO = Path(__file__).resolve().parent.parent
HELLO = REPO / "wasm-examples" / "hello.wasm"
console = Console()


def start_daemon(base: Path, name: str, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    socket = base / f"{name}.sock"
    log = open(base / f"{name}.log", "wb")  # noqa: SIM115 - the daemon owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "plasm.cli", "run", "--state-dir", str(base / name),
         "--socket", str(socket), "--log-format", "json",
         "--listen", "/ip4/127.0.0.1/tcp/0", *extra],
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


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_peer(client: Client, peer_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        peers = client.request("GET", "/v1/peers")["peers"]
        if any(p["peer_id"] == peer_id and p.get("capabilities") for p in peers):
            return
        time.sleep(0.1)
    raise SystemExit(f"node B did not learn node A's capabilities ({peer_id}) within 30 s")


def main() -> int:
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="plasm-demo-") as tmp:
        base = Path(tmp)
        try:
            proc_a, socket_a = start_daemon(base, "node-a")
            procs.append(proc_a)
            with Client(socket_a) as client_a:
                node_a = client_a.node()
            console.print(f"[bold]node A[/] {node_a['peer_id']}")
            console.print(f"        listening on {node_a['addresses'][0]}")
            proc_b, socket_b = start_daemon(base, "node-b", "--bootstrap", node_a["addresses"][0])
            procs.append(proc_b)
            with Client(socket_b) as client_b:
                node_b = client_b.node()
                console.print(f"[bold]node B[/] {node_b['peer_id']} (bootstrapped from A)")
                wait_for_peer(client_b, node_a["peer_id"])
                console.print("B found A and verified its capability record; submitting "
                              "hello.wasm with stdin 'Hello, World' to B, to run on a peer ...")
                result = client_b.submit(
                    module=HELLO.read_bytes(), module_name="hello.wasm", stdin=b"Hello, World",
                    placement={"mode": "any", "exclude_self": True}, wait=60)
                if "receipt" not in result:
                    console.print(f"[bold red]the job did not run[/]: {result}")
                    return 1
                verdict = client_b.verify(result)
        finally:
            for proc in reversed(procs):
                stop(proc)
    stdout = base64.b64decode(result["stdout"])
    console.print(f"job {result['job_id']} ran on {result['executor']} (node A)")
    console.print(f"[bold]output:[/] {stdout.decode(errors='replace').rstrip()}")
    # Verify offline too, from the saved result alone: no daemon involved.
    envelope, expected = expectations_from_saved(__import__("orjson").dumps(result))
    receipt = verified_receipt(envelope, expected)
    table = Table(title="receipt", show_header=False)
    body = result["receipt"]["body"]
    for key in ("job_id", "executor", "requester", "module_sha256", "input_sha256",
                "stdout_sha256", "outcome", "fuel_consumed", "wall_time_us"):
        table.add_row(key, str(body[key]))
    table.add_row("engine", f"{body['engine']['name']} {body['engine']['version']}")
    table.add_row("profile", body["profile"])
    cose = result["receipt"]["cose"]
    table.add_row("COSE_Sign1", f"{len(cose) * 3 // 4} bytes, base64 {cose[:24]}...")
    console.print(table)
    ok = (verdict["valid"] and receipt.executor == result["executor"] == node_a["peer_id"]
          and receipt.requester == node_b["peer_id"])
    if ok:
        console.print("[bold green]verified[/]: node A's peer-ID key signed this receipt for "
                      "node B, and every field of the result matches it (checked by B and offline)")
        return 0
    console.print(f"[bold red]NOT verified[/]: {verdict['message']}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
