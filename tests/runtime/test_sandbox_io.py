"""What the guest sees (argv, env, stdin, no filesystem) and what it gives back (output)."""

from __future__ import annotations

from collections.abc import Callable

from plasm.runtime.job import Limits, Outcome, OutcomeKind

RunExample = Callable[..., Outcome]


def test_stdin_reaches_the_guest(run_example: RunExample) -> None:
    outcome = run_example("hello", stdin=b"Hello, World")
    assert outcome.stdout == b"dlroW ,olleH\n"


def test_one_trailing_newline_of_stdin_is_dropped(run_example: RunExample) -> None:
    outcome = run_example("hello", stdin=b"ab\n\n")
    assert outcome.stdout == b"\nba\n"


def test_stdin_larger_than_one_read_arrives_whole(run_example: RunExample) -> None:
    data = bytes(range(256)) * 1000  # 256 000 bytes, many fd_read calls
    outcome = run_example("hello", stdin=data)
    assert outcome.kind is OutcomeKind.OK
    assert outcome.stdout == data[::-1] + b"\n"


def test_argv0_is_the_module_name(run_example: RunExample) -> None:
    outcome = run_example("env_args", module_name="tool.wasm")
    assert outcome.stdout.split(b"\n")[0] == b"tool.wasm"


def test_args_and_env_are_visible(run_example: RunExample) -> None:
    outcome = run_example(
        "env_args",
        module_name="env_args.wasm",
        args=("first", "with space"),
        env=(("ALPHA", "1"), ("BETA", "x=y")),
    )
    assert outcome.stdout == b"env_args.wasm\nfirst\nwith space\nALPHA=1\nBETA=x=y\n"


def test_host_environment_is_not_inherited(run_example: RunExample) -> None:
    outcome = run_example("env_args", module_name="m.wasm")
    assert outcome.stdout == b"m.wasm\n"


def test_stderr_is_captured_apart_from_stdout(run_example: RunExample) -> None:
    outcome = run_example("stderr")
    assert outcome.stdout == b"fine\n"
    assert outcome.stderr == b"oops\n"


def test_stdout_is_cut_at_exactly_the_cap_and_flagged(run_example: RunExample) -> None:
    outcome = run_example("flood", limits=Limits(max_output_bytes=100_000))
    assert outcome.stdout == b"x" * 100_000
    assert outcome.stdout_truncated
    assert not outcome.stderr_truncated


def test_guest_sees_a_failed_write_past_the_cap(run_example: RunExample) -> None:
    # flood.wasm exits 1 as soon as a write fails; without the error it would spin forever
    outcome = run_example("flood", limits=Limits(max_output_bytes=1000))
    assert outcome.kind is OutcomeKind.EXIT
    assert outcome.exit_code == 1


def test_output_of_exactly_the_cap_is_not_truncated(run_example: RunExample) -> None:
    outcome = run_example("hello", stdin=b"a" * 99, limits=Limits(max_output_bytes=100))
    assert outcome.stdout == b"a" * 99 + b"\n"
    assert not outcome.stdout_truncated


def test_stderr_cap_is_separate_from_stdout(run_example: RunExample) -> None:
    outcome = run_example("stderr", limits=Limits(max_output_bytes=3))
    assert outcome.stdout == b"fin"
    assert outcome.stderr == b"oop"
    assert outcome.stdout_truncated
    assert outcome.stderr_truncated


def test_guest_cannot_reach_the_host_filesystem(run_example: RunExample) -> None:
    outcome = run_example("escape")
    assert outcome.kind is OutcomeKind.OK
    lines = dict(line.split(b" ") for line in outcome.stdout.splitlines())
    # fd 3 is the virtual root; ../../etc/passwd stays inside it and is not there.
    assert lines[b"path_open"] == b"44"  # ENOENT
    assert lines[b"fd_prestat_get"] == b"0"
