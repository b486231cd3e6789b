"""The exit statuses of the commands that run a job (`execute-job`, `submit --wait`).

As `wasmtime run` and `docker run` do, a job that ran passes its own exit code through
(0 for `ok`, N for `exit` with code N); the other ways a job ends, and plasmd's own
failures, have statuses of their own, after docker's 125/126 and the shell's 128+signal.
A guest may exit with any of these numbers too: `--json` says which it was.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2  # bad arguments or options, an unreadable file (argparse's status too)
EXIT_TIMEOUT = 124  # the job ran past its time limit (as timeout(1) exits)
EXIT_PLASMD = 125  # plasmd's own failure: the daemon unreachable, the job refused or not run
EXIT_NOT_RUNNABLE = 126  # invalid_module, compile_limit: the module cannot run
EXIT_WAIT_RAN_OUT = 128  # --wait ran out: the job is still queued or running
EXIT_INTERRUPTED = 130  # Ctrl-C while waiting (the job goes on)
EXIT_TRAP = 134  # a trap (128 + SIGABRT, as a crashed native program)
EXIT_MEMORY = 137  # memory_limit (128 + SIGKILL, as the OOM killer)
EXIT_CANCELLED = 143  # cancelled (128 + SIGTERM)
EXIT_OUT_OF_FUEL = 152  # out_of_fuel (128 + SIGXCPU: the CPU budget ran out)

_BY_OUTCOME = {
    "ok": EXIT_OK,
    "timeout": EXIT_TIMEOUT,
    "invalid_module": EXIT_NOT_RUNNABLE,
    "compile_limit": EXIT_NOT_RUNNABLE,
    "trap": EXIT_TRAP,
    "memory_limit": EXIT_MEMORY,
    "cancelled": EXIT_CANCELLED,
    "out_of_fuel": EXIT_OUT_OF_FUEL,
}

TABLE = (
    "exit status: the job's own exit code when it ran to its end (0 for ok, N when it "
    "called exit(N)); 124 timeout, 126 invalid_module or compile_limit, 134 trap, 137 "
    "memory_limit, 143 cancelled, 152 out_of_fuel; 2 bad usage; 125 plasmd's own failure "
    "(daemon unreachable, job refused or not run); 128 --wait ran out (the job goes on); "
    "130 Ctrl-C while waiting (the job goes on)"
)


def exit_status(outcome_kind: str, exit_code: int | None) -> int:
    """The status for a job that ended with ``outcome_kind`` (and, for ``exit``, code)."""
    if outcome_kind == "exit":  # a shell sees 8 bits; a non-zero code never reads as 0
        return ((exit_code or 0) & 0xFF) or 1
    return _BY_OUTCOME.get(outcome_kind, EXIT_PLASMD)
