"""`python -m bench local` runs end to end and writes its JSON (figures are not judged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(180)
def test_bench_local_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "local.json"
    command = [
        sys.executable, "-m", "bench", "local",
        "--jobs", "40", "--rounds", "1", "--process-jobs", "1", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        timeout=170,
        env={**os.environ, "PLASM_STRICT_MESSAGES": "0", "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(out.read_text())
    paths = result["paths"]
    assert set(paths) == {"floor", "actors_sequential", "actors_pipelined", "execute_job_process"}
    for row in paths.values():
        assert row["mean_us"] > 0 and row["jobs_per_s"] > 0 and row["x_floor"] > 0
    for name in ("floor", "actors_sequential", "execute_job_process"):
        assert paths[name]["p99_us"] >= paths[name]["median_us"] > 0
    assert paths["floor"]["x_floor"] == 1
    assert result["targets"]["pipelined_x_floor"] == paths["actors_pipelined"]["x_floor"]
    assert "x floor" in done.stdout.decode()


def test_bench_without_a_name_lists_the_benchmarks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"local" in done.stderr and b"p2p" in done.stderr


@pytest.mark.timeout(180)
def test_bench_transfer_prints_its_figures_and_ratio() -> None:
    command = [sys.executable, "-m", "bench", "transfer", "--mib", "4", "--rounds", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=170)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    for figure in ("trio tcp ", "trio tcp + sha256", "blob fetch", "x trio tcp"):
        assert figure in out, out


@pytest.mark.timeout(240)
def test_bench_quorum_prints_the_quorum_job_against_the_remote_one() -> None:
    command = [sys.executable, "-m", "bench", "quorum", "--jobs", "8", "--clients", "2"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=230)
    assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
    out = done.stdout.decode()
    for figure in ("remote job B->A median", "quorum job k=3 m=2 median", "x remote",
                   "agreed on 3 of 3 replicas"):
        assert figure in out, out


@pytest.mark.timeout(180)
def test_bench_sim_runs_the_real_negotiation_and_catches_every_liar(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    command = [
        sys.executable, "-m", "bench", "sim", "--nodes", "200", "--jobs", "400",
        "--liars", "0.3", "--churn", "0.5", "--downtime-s", "20", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=170)
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(out.read_text())
    assert result["jobs"] == 400 and result["succeeded"] > 0
    assert result["settled"] == result["succeeded"] + sum(result["failed"].values())
    # liars' results reached requesters and every one failed the real receipt check
    assert result["liar_results"] > 0 and result["liar_accepted"] == 0
    assert sum(result["liar_rejected"].values()) == result["liar_results"]
    assert result["leaves"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0
    assert result["messages_per_job"]["result"] > 0
    assert "placement success" in done.stdout.decode()


def test_bench_sim_refuses_a_share_out_of_range() -> None:
    command = [sys.executable, "-m", "bench", "sim", "--liars", "1.5"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"--liars must be a share in 0..1" in done.stderr


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_bench_sim_validate_runs_a_devnet_and_the_model_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "validate.json"
    command = [
        sys.executable, "-m", "bench", "sim", "--validate", "3", "--jobs", "4",
        "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, timeout=290,
        env={**os.environ, "PLASM_STRICT_MESSAGES": "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
    result = json.loads(out.read_text())
    assert result["devnet"]["nodes"] == result["sim"]["nodes"] == 3
    assert result["devnet"]["jobs"] == result["sim"]["jobs"] == 4
    assert result["devnet"]["local_ms"] > 0 and result["devnet"]["direct_ms"] > 0
    assert "sim/devnet" in done.stdout.decode()


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_bench_scale_measures_a_small_devnet(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    command = [
        sys.executable, "-m", "bench", "scale", "--nodes", "3", "--senders", "2", "--jobs", "2",
        "--settle", "0", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=290)
    assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
    (result,) = json.loads(out.read_text())
    assert result["nodes"] == 3 and result["jobs"] == 4
    assert result["placed"] == result["codes"].get("ok", 0) and result["placed"] >= 1
    assert 1 <= result["connections_bootstrap"] <= result["connections_max"] <= 2
    assert result["rss_mean_mib"] > 10 and result["local_p50_ms"] > 0
    assert "DHT/job" in done.stdout.decode()


def test_bench_scale_refuses_a_devnet_of_one() -> None:
    command = [sys.executable, "-m", "bench", "scale", "--nodes", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode != 0 and b"at least 2 nodes" in done.stderr
