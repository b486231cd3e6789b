"""`GET /metrics`: Prometheus text exposition of what the node's actors count."""

from __future__ import annotations

from plasm.actors.ingress import LATENCY_BUCKETS_US
from plasm.actors.node import Node


def render_metrics(node: Node) -> str:
    stats = node.stats()
    lines = [
        "# HELP plasm_jobs_total Jobs finished by this node's executors, by outcome.",
        "# TYPE plasm_jobs_total counter",
    ]
    for outcome, count in sorted(stats.outcomes.items()):
        lines.append(f'plasm_jobs_total{{outcome="{outcome}"}} {count}')
    lines += [
        "# HELP plasm_jobs_reused_total Jobs answered with an earlier verified result, not run.",
        "# TYPE plasm_jobs_reused_total counter",
        f"plasm_jobs_reused_total {stats.reused}",
        "# HELP plasm_queue_depth Jobs admitted and waiting for an executor.",
        "# TYPE plasm_queue_depth gauge",
        f"plasm_queue_depth {stats.queue_depth}",
        "# HELP plasm_jobs_running Jobs handed to executors and not yet finished.",
        "# TYPE plasm_jobs_running gauge",
        f"plasm_jobs_running {stats.running}",
        "# HELP plasm_executors_busy Executors with at least one job.",
        "# TYPE plasm_executors_busy gauge",
        f"plasm_executors_busy {stats.busy_executors}",
        "# HELP plasm_executors Executors in the pool.",
        "# TYPE plasm_executors gauge",
        f"plasm_executors {stats.executors}",
        "# HELP plasm_job_latency_seconds Time from admission to result, per job.",
        "# TYPE plasm_job_latency_seconds histogram",
    ]
    cumulative = 0
    for bound_us, count in zip(LATENCY_BUCKETS_US, stats.latency_counts, strict=False):
        cumulative += count
        lines.append(f'plasm_job_latency_seconds_bucket{{le="{bound_us / 1e6:g}"}} {cumulative}')
    total = sum(stats.latency_counts)
    lines.append(f'plasm_job_latency_seconds_bucket{{le="+Inf"}} {total}')
    lines.append(f"plasm_job_latency_seconds_sum {stats.latency_sum_us / 1e6:.6f}")
    lines.append(f"plasm_job_latency_seconds_count {total}")
    lines += [
        "# HELP plasm_journal_jobs Jobs in the journal, by status.",
        "# TYPE plasm_journal_jobs gauge",
    ]
    for status, count in sorted(node.job_counts().items()):
        lines.append(f'plasm_journal_jobs{{status="{status}"}} {count}')
    if node.has_network:
        lines += [
            "# HELP plasm_dht_requests_served_total Kademlia requests from peers answered.",
            "# TYPE plasm_dht_requests_served_total counter",
            f"plasm_dht_requests_served_total {node.network_info().dht_requests_served}",
        ]
    return "\n".join(lines) + "\n"
