"""How plasm-console shows things: rich tables for jobs, receipts, verdicts and the node.

Everything a job wrote is untrusted: it is printed with control characters made
visible (`\\x1b`), so a module cannot move the cursor or retitle the terminal, and
never parsed as rich markup.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from plasm.units import human_size

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def safe_text(text: str) -> str:
    """`text` with every control character but newline and tab shown as an escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def verdict_text(verdict: dict[str, Any]) -> Text:
    """Green `verified: ...` or red `NOT verified: reason: ...`."""
    if verdict["valid"]:
        return Text.assemble(("verified", "bold green"), f": {verdict['message']}")
    reason, message = verdict["reason"], verdict["message"]
    message = message.removeprefix(f"{reason}: ")  # ReceiptError messages lead with it
    return Text.assemble((f"NOT verified: {reason}", "bold red"), f": {message}")


def _fields() -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    return table


def _outcome(kind: str, exit_code: int | None, message: str | None) -> str:
    text = kind + (f" (exit code {exit_code})" if exit_code is not None else "")
    return text + (f": {safe_text(message)}" if message else "")


def _ms(microseconds: int) -> str:
    return f"{microseconds / 1000:.3f} ms"


def _when(unix_ms: int | None) -> str:
    if not unix_ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix_ms / 1000))


def print_output(console: Console, result: dict[str, Any]) -> None:
    """A finished job's stdout (as is) and stderr (marked), with truncation notes."""
    for name, style in (("stdout", ""), ("stderr", "yellow")):
        text = result.get(f"{name}_text") or ""
        if text:
            body = safe_text(text[:-1] if text.endswith("\n") else text)
            console.print(Text(body, style=style), soft_wrap=True)
        if result.get(f"{name}_truncated"):
            console.print(f"[dim]({name} was truncated at the job's output limit)[/dim]")


def result_summary(
    result: dict[str, Any], verdict: dict[str, Any], own_peer_id: str | None = None
) -> Table:
    """The few lines after a run: job, outcome, fuel, time, executor, receipt verdict.

    With `own_peer_id` (the node asked), the executor is marked as this node or a peer."""
    outcome = result["outcome"]
    table = _fields()
    table.add_row("job", result["job_id"])
    table.add_row("outcome", _outcome(outcome["kind"], outcome.get("exit_code"),
                                      outcome.get("message")))
    table.add_row("fuel", f"{result['fuel_consumed']:,}")
    table.add_row("wall time", _ms(result["wall_time_us"]))
    where = ""
    if own_peer_id is not None:
        where = " (this node)" if result["executor"] == own_peer_id else " (remote peer)"
    table.add_row("executor", result["executor"] + where)
    reused = result.get("reused")
    if isinstance(reused, dict):
        table.add_row("reused", f"did not run: the verified result of job {reused.get('job_id')}")
    quorum = result.get("quorum")
    if isinstance(quorum, dict):
        agreeing, dissenting = quorum.get("agreeing") or [], quorum.get("dissenting") or []
        table.add_row("quorum", f"{len(agreeing)} of {len(quorum.get('receipts') or [])} "
                      f"receipts agree (quorum {quorum.get('quorum')})")
        for peer in dissenting:
            table.add_row("dissenting", str(peer))
    table.add_row("receipt", verdict_text(verdict))
    return table


def receipt_table(verdict: dict[str, Any], title: str) -> Table:
    """A receipt body in full, under its verification verdict."""
    table = _fields()
    table.title = title
    table.title_justify = "left"
    table.add_row("verdict", verdict_text(verdict))
    body = verdict.get("receipt")
    if not body:
        return table
    table.add_row("job", body["job_id"])
    table.add_row("executor", body["executor"])
    table.add_row("requester", body["requester"])
    table.add_row("module sha256", body["module_sha256"])
    table.add_row("input sha256", body["input_sha256"])
    for name in ("stdout", "stderr"):
        note = ", truncated" if body[f"{name}_truncated"] else ""
        table.add_row(f"{name} sha256",
                      f"{body[f'{name}_sha256']} ({body[f'{name}_len']} bytes{note})")
    for output in body["outputs"]:
        table.add_row(f"output {output['path']}", f"{output['sha256']} ({output['size']} bytes)")
    if body["outputs_truncated"]:
        table.add_row("outputs", "truncated: an output quota was hit")
    table.add_row("outcome", _outcome(body["outcome"], body.get("exit_code"), body.get("message")))
    inexact = "" if body["fuel_exact"] else " (inexact: the job was stopped)"
    table.add_row("fuel", f"{body['fuel_consumed']:,} of {body['limits']['fuel']:,}{inexact}")
    table.add_row("wall time", _ms(body["wall_time_us"]))
    table.add_row("limits", ", ".join(f"{k}={v}" for k, v in body["limits"].items()))
    table.add_row("engine", f"{body['engine']['name']} {body['engine']['version']}")
    table.add_row("profile", body["profile"])
    table.add_row("nonce", body["nonce"])
    table.add_row("started", _when(body["started_at_ms"]))
    table.add_row("finished", _when(body["finished_at_ms"]))
    return table


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("job", "status", "outcome", "module", "created", "took"):
        table.add_column(name, no_wrap=True)
    for job in jobs:
        started, finished = job.get("started_at_ms"), job.get("finished_at_ms")
        took = f"{finished - started} ms" if started and finished else "-"
        table.add_row(job["job_id"], job["status"], job.get("outcome") or "-",
                      job["module_sha256"][:12], _when(job.get("created_at_ms")), took)
    return table


def job_table(job: dict[str, Any]) -> Table:
    table = _fields()
    table.add_row("job", job["job_id"])
    table.add_row("status", job["status"])
    table.add_row("outcome", job.get("outcome") or "-")
    table.add_row("module sha256", job["module_sha256"])
    for name in ("created", "started", "finished"):
        table.add_row(name, _when(job.get(f"{name}_at_ms")))
    error = job.get("error")
    if error:
        message = error.get("message", error) if isinstance(error, dict) else error
        table.add_row("error", safe_text(str(message)))
    return table


def node_table(node: dict[str, Any], health: str, where: str) -> Table:
    caps = node.get("capabilities", {})
    table = _fields()
    table.add_row("daemon", f"{health} at {where}")
    table.add_row("peer id", node["peer_id"])
    table.add_row("version", str(node.get("version", "?")))
    engine = caps.get("engine", {})
    if engine:
        table.add_row("engine", f"{engine.get('name')} {engine.get('version')}")
    if "executors" in caps:
        table.add_row("executors", f"{caps['executors']} ({caps.get('free_slots', '?')} free), "
                                   f"queue up to {caps.get('queue_length', '?')}")
    for which in ("default", "max"):
        limits = node.get("limits", {}).get(which)
        if limits:
            table.add_row(f"{which} limits", ", ".join(f"{k}={v}" for k, v in limits.items()))
    return table


def mapping_table(mapping: dict[str, Any]) -> Table:
    """Any flat-ish JSON object as key/value rows (capabilities, peer records)."""
    table = _fields()
    for key, value in mapping.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_shown(k, v)}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        else:
            value = _shown(key, value)
        table.add_row(str(key), safe_text(str(value)))
    return table


def _shown(key: str, value: Any) -> Any:
    """Sizes (keys ending in `bytes`) as the peers table shows them: `1 GiB`, `23.5 GiB`."""
    if key.endswith("bytes") and isinstance(value, int) and not isinstance(value, bool):
        return human_size(value)
    return value


def peers_table(peers: list[dict[str, Any]]) -> Table:
    """The peer list, narrow enough for 120 columns: who, up now, how fast, what it did for
    us, what it offers (`caps PEER` shows the rest, addresses included). The `disputed`
    column (receipts that disagreed with an agreed quorum, and a cool-down) appears only
    when some peer has one, so the usual table keeps its width."""
    from plasm.commands.peers import peer_row

    table = Table(box=None, pad_edge=False, header_style="bold",
                  caption="`caps PEER` shows a peer's addresses and full record",
                  caption_justify="left")
    table.add_column("peer id", no_wrap=True)  # never cut: it goes into --on
    disputes = any(peer.get("receipts_disputed") for peer in peers)
    names = ("up", "latency", "jobs", "rejected", *(("disputed",) if disputes else ()),
             "runtimes", "max fuel", "max mem")
    for name in names:
        table.add_column(name, no_wrap=True)
    for peer in peers:
        peer_id, up, latency, jobs, rejected, disputed, runtimes, _, memory, _ = peer_row(peer)
        fuel = (peer.get("capabilities") or {}).get("max_limits", {}).get("fuel")
        table.add_row(*(safe_text(cell) for cell in (
            peer_id, up, latency, jobs, rejected, *((disputed,) if disputes else ()),
            runtimes, _short_number(fuel), memory)))
    return table


def _short_number(value: Any) -> str:
    """1000000000 -> 1G, 5000000 -> 5M: fuel figures in a narrow column."""
    if not isinstance(value, int):
        return "-"
    for suffix, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= size:
            return f"{value / size:.4g}{suffix}"
    return str(value)


def capabilities_table(record: dict[str, Any]) -> Table:
    """A peer's verified capability record, one field a row (its text shown safely:
    a peer signs what it likes)."""
    memory = record.get("memory_bytes")
    limits = record.get("max_limits") or {}
    rows = (
        ("peer id", str(record.get("peer_id", "?"))),
        ("platform", f"{record.get('os', '?')} {record.get('arch', '?')}, "
                     f"{record.get('cpus', '?')} cpus"),
        ("memory", human_size(memory) if isinstance(memory, int) else "?"),
        ("runtimes", ", ".join(map(str, record.get("runtimes") or [])) or "-"),
        ("engine", f"{record.get('engine_name', '?')} {record.get('engine_version', '')}"),
        ("max limits", ", ".join(f"{k}={v}" for k, v in limits.items()) or "-"),
        ("free slots", str(record.get("free_slots", "?"))),
        ("addresses", "\n".join(map(str, record.get("addresses") or [])) or "-"),
        ("expires", _when(record.get("expires_at_ms"))),
    )
    table = _fields()
    for name, value in rows:
        table.add_row(name, Text(safe_text(value)))
    return table
