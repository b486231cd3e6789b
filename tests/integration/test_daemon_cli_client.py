"""`plasmd submit/jobs/job/cancel` as subprocesses against a running daemon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from daemon_checks import SPIN_LIMITS, checked_result, example, example_bytes, wait_for_status

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def plasmd(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "plasm.cli", *args], input=stdin,
                          capture_output=True, timeout=60, check=False)


def socket_args(daemon) -> tuple[str, str]:
    return ("--socket", str(daemon.socket))


def test_submit_wait_json_prints_a_verified_result(daemon) -> None:
    run = plasmd("submit", str(example("hello")), "--stdin", "plasm", "--wait", "--json",
                 *socket_args(daemon))
    assert run.returncode == 0, run.stderr
    result = orjson.loads(run.stdout)
    checked_result(result)
    assert result["stdout_text"] == "msalp\n"


def test_submit_wait_prints_the_guests_output(daemon) -> None:
    run = plasmd("submit", str(example("hello")), "--stdin-file", "-", "--wait",
                 *socket_args(daemon), stdin=b"abc")
    assert (run.returncode, run.stdout) == (0, b"cba\n")


def test_submit_takes_guest_args_after_double_dash(daemon) -> None:
    run = plasmd("submit", str(example("env_args")), "--wait", "--json", *socket_args(daemon),
                 "--", "--wait", "-x")
    assert run.returncode == 0, run.stderr
    assert orjson.loads(run.stdout)["stdout_text"] == "env_args.wasm\n--wait\n-x\n"


def test_submit_wait_passes_args_env_and_limits(daemon) -> None:
    run = plasmd("submit", str(example("env_args")), "--arg", "one", "--env", "A=1",
                 "--fuel", "1000000", "--memory", "2MiB", "--timeout", "5",
                 "--max-output", "4KiB", "--wait", "--json", *socket_args(daemon))
    assert run.returncode == 0, run.stderr
    result = orjson.loads(run.stdout)
    receipt = checked_result(result)
    assert result["stdout_text"] == "env_args.wasm\none\nA=1\n"
    assert (receipt.limits.fuel, receipt.limits.memory_bytes, receipt.limits.timeout_ms,
            receipt.limits.max_output_bytes) == (1_000_000, 2 * 2**20, 5000, 4096)


def test_submit_wait_reports_a_non_ok_outcome_on_stderr(daemon) -> None:
    run = plasmd("submit", str(example("exit3")), "--wait", *socket_args(daemon))
    assert run.returncode == 3  # the guest's exit code, passed through
    assert b"ended with exit (exit code 3)" in run.stderr


def test_submit_without_wait_prints_the_job_id_then_job_shows_it(daemon) -> None:
    run = plasmd("submit", str(example("hello")), *socket_args(daemon))
    assert run.returncode == 0, run.stderr
    job_id, status = run.stdout.decode().split()
    assert status == "queued"
    with daemon.client() as client:
        wait_for_status(client, job_id)
    shown = plasmd("job", job_id[:8], *socket_args(daemon))  # a prefix does
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert f"job       {job_id}\nstatus    done\n" in text
    for line in ("outcome   ok", "stdout:\n  Hello, World!", "stderr    (empty)", "created   ",
                 "finished  "):
        assert line in text, text
    assert "'Hello" not in text  # text, not a Python repr
    raw = plasmd("job", job_id, "--stdout", *socket_args(daemon))
    assert raw.stdout == b"Hello, World!\n"
    as_json = orjson.loads(plasmd("job", job_id, "--json", *socket_args(daemon)).stdout)
    checked_result(as_json["result"])
    waited = plasmd("wait", job_id[:6], *socket_args(daemon))
    assert waited.returncode == 0 and "outcome   ok" in waited.stdout.decode()


def test_wait_exits_with_the_jobs_status_and_a_header_heads_the_jobs_table(daemon) -> None:
    run = plasmd("submit", str(example("exit3")), *socket_args(daemon))
    job_id = run.stdout.decode().split()[0]
    waited = plasmd("wait", job_id, *socket_args(daemon))
    assert waited.returncode == 3, waited.stderr
    listed = plasmd("jobs", *socket_args(daemon)).stdout.decode().splitlines()
    assert listed[0].split() == ["job", "id", "status", "outcome", "created", "module"]
    assert any(line.startswith(job_id) for line in listed[1:])
    plasmd("submit", str(example("hello")), *socket_args(daemon))  # a second job
    ambiguous = plasmd("job", "0", *socket_args(daemon))  # every id starts with 0 (ms time)
    assert ambiguous.returncode == 2 and b"type more of it" in ambiguous.stderr


def test_jobs_lists_jobs_and_filters_by_status(daemon) -> None:
    with daemon.client() as client:
        done = client.submit(module=example_bytes("hello"), wait=30)["job_id"]
    listed = plasmd("jobs", *socket_args(daemon))
    assert listed.returncode == 0, listed.stderr
    assert done in listed.stdout.decode()
    as_json = orjson.loads(plasmd("jobs", "--status", "done", "--json",
                                  *socket_args(daemon)).stdout)
    assert [job["job_id"] for job in as_json["jobs"]] == [done]
    none = plasmd("jobs", "--status", "cancelled", *socket_args(daemon))
    assert (none.returncode, none.stdout) == (0, b"")


def test_cancel_stops_a_running_job(daemon) -> None:
    with daemon.client() as client:
        job_id = client.submit(module=example_bytes("loop"), limits=SPIN_LIMITS)["job_id"]
        wait_for_status(client, job_id, frozenset({"running"}))
        run = plasmd("cancel", job_id, *socket_args(daemon))
        job = wait_for_status(client, job_id)
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().split() == [job_id, "cancelling"]
    assert job["status"] == "cancelled"


def test_cancel_of_a_finished_job_is_a_one_line_error(daemon) -> None:
    with daemon.client() as client:
        job_id = client.submit(module=example_bytes("hello"), wait=30)["job_id"]
    run = plasmd("cancel", job_id, *socket_args(daemon))
    assert run.returncode == 2
    assert b"already done" in run.stderr
    assert b"Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_client_commands_without_a_daemon_say_so_in_one_line(tmp_path: Path) -> None:
    for command in (("jobs",), ("job", "0" * 32), ("cancel", "0" * 32),
                    ("submit", str(example("hello")))):
        run = plasmd(*command, "--socket", str(tmp_path / "none.sock"))
        assert run.returncode == (125 if command[0] == "submit" else 2)  # 125: plasmd's own
        assert b"is the daemon running?" in run.stderr
        assert b"Traceback" not in run.stderr


def test_submit_reuse_local_answers_the_second_run_with_the_first_receipt(daemon) -> None:
    job = ("submit", str(example("hello")), "--stdin", "again", "--reuse", "local", "--wait",
           *socket_args(daemon))
    first = plasmd(*job, "--json")
    second = plasmd(*job)
    third = plasmd(*job, "--json")
    assert first.returncode == second.returncode == third.returncode == 0, first.stderr
    original, reused = orjson.loads(first.stdout), orjson.loads(third.stdout)
    assert "reused" not in original
    assert reused["reused"]["job_id"] == original["job_id"]
    assert reused["receipt"]["cose"] == original["receipt"]["cose"]
    assert second.stdout == b"niaga\n"
    assert f"it reused the verified result of job {original['job_id']}" in second.stderr.decode()
    # plasmd verify accepts the reused result as saved
    verified = plasmd("verify", "-", stdin=third.stdout)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    bad = plasmd("submit", str(example("hello")), "--reuse", "always", *socket_args(daemon))
    assert bad.returncode == 2 and b"--reuse" in bad.stderr


def test_submit_wait_takes_its_seconds_only_with_an_equals_sign(daemon) -> None:
    # `--wait MODULE` is the module, not seconds; `--wait=N` and `--wait-timeout N` bound it
    for wait in (("--wait",), ("--wait=30",), ("--wait-timeout", "30")):
        run = plasmd("submit", *wait, str(example("hello")), "--stdin", "ab",
                     *socket_args(daemon))
        assert (run.returncode, run.stdout) == (0, b"ba\n"), (wait, run.stderr)


def test_a_wait_that_runs_out_says_so_and_exits_128(daemon) -> None:
    run = plasmd("submit", "--wait=0.5", str(example("loop")), "--fuel", str(10**11),
                 "--timeout", "60", "--json", *socket_args(daemon))
    assert run.returncode == 128, run.stderr
    job = orjson.loads(run.stdout)
    assert job["status"] in ("queued", "running")
    assert f"job {job['job_id']} is still" in run.stderr.decode()
    assert f"plasmd cancel {job['job_id']}" in run.stderr.decode()
    with daemon.client() as client:
        client.cancel(job["job_id"])


def test_ctrl_c_while_waiting_names_the_job_and_leaves_it_running(daemon) -> None:
    import signal
    import subprocess
    import time

    from tests.conftest import plasmd_command
    from tests.integration.daemon_checks import wait_for_status

    proc = subprocess.Popen(
        plasmd_command("submit", "--wait", str(example("loop")), "--fuel", str(10**11),
                       "--timeout", "60", *map(str, socket_args(daemon))),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with daemon.client() as client:
        deadline = time.monotonic() + 30
        while not client.jobs(status="running"):
            assert time.monotonic() < deadline, "the job never ran"
            time.sleep(0.05)
        job_id = client.jobs(status="running")[0]["job_id"]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert f"job {job_id} goes on" in err.decode() and "plasmd cancel" in err.decode()
        assert client.job(job_id)["status"] == "running"  # Ctrl-C stopped the wait only
        client.cancel(job_id)
        assert wait_for_status(client, job_id)["status"] == "cancelled"


def test_submit_wait_exits_with_the_jobs_status(daemon) -> None:
    trap = plasmd("submit", "--wait", str(example("trap")), *socket_args(daemon))
    assert trap.returncode == 134, trap.stderr
    fuel = plasmd("submit", "--wait", str(example("loop")), "--fuel", "100000",
                  *socket_args(daemon))
    assert fuel.returncode == 152, fuel.stderr
    bad = plasmd("submit", "--wait", str(example("hello").with_suffix(".wat")),
                 *socket_args(daemon))
    assert bad.returncode == 126, bad.stderr


def test_json_errors_are_one_object_and_jobs_json_is_an_object(daemon, tmp_path: Path) -> None:
    gone = str(tmp_path / "none.sock")
    for command in (("jobs",), ("job", "0" * 32), ("peers",), ("submit", str(example("hello")))):
        run = plasmd(*command, "--json", "--socket", gone)
        error = orjson.loads(run.stdout)["error"]
        assert error["code"] == "daemon_unavailable" and "is the daemon running" in error["message"]
    unknown = plasmd("job", "0" * 32, "--json", *socket_args(daemon))
    error = orjson.loads(unknown.stdout)["error"]
    assert error["code"] == "unknown_job" and "0" * 32 in error["message"]
    listed = orjson.loads(plasmd("jobs", "--json", *socket_args(daemon)).stdout)
    assert set(listed) == {"jobs"}



def test_status_shows_the_running_daemon(daemon) -> None:
    with daemon.client() as client:
        client.submit(module=example_bytes("hello"), wait=30)
    run = plasmd("status", *socket_args(daemon))
    assert run.returncode == 0, run.stderr
    text = run.stdout.decode()
    with daemon.client() as client:
        node = client.node()
    assert f"peer id     {node['peer_id']}" in text
    assert "executors   0 busy of" in text and "jobs        0 running, 0 queued" in text
    assert "journal     1 jobs" in text and "up " in text
    assert "network     off" in text  # this test daemon runs without the network
    as_json = orjson.loads(plasmd("status", "--json", *socket_args(daemon)).stdout)
    assert as_json["status"]["journal"]["jobs"] == 1
    assert as_json["status"]["executors"]["total"] >= 1
