"""hello.wasm takes its text from argv[1] when given one, and from stdin otherwise."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from plasm.runtime.job import Outcome, OutcomeKind

RunExample = Callable[..., Outcome]  # the run_example fixture of conftest.py


@pytest.mark.parametrize(("args", "stdin", "stdout"), [
    ((), b"", b"Hello, World!\n"),
    ((), b"Hello, World\n", b"dlroW ,olleH\n"),
    (("Hello, World",), b"", b"dlroW ,olleH\n"),
    (("Hello, World",), b"stdin is not read", b"dlroW ,olleH\n"),
    (("ab\n", "ignored"), b"", b"ba\n"),
    (("",), b"stdin", b"Hello, World!\n"),
    (("\u00e9",), b"", b"\xa9\xc3\n"),
], ids=["no-text", "stdin", "arg", "arg-over-stdin", "arg-trailing-newline", "empty-arg",
        "bytewise"])
def test_hello_reverses_its_argument_or_its_stdin(
    run_example: RunExample, args: tuple[str, ...], stdin: bytes, stdout: bytes
) -> None:
    outcome = run_example("hello", args=args, stdin=stdin)
    assert (outcome.kind, outcome.stdout, outcome.stderr) == (OutcomeKind.OK, stdout, b"")


def test_hello_grows_memory_for_a_long_argument(run_example: RunExample) -> None:
    text = "ab" * 100_000  # longer than the one free page above the input buffer's base
    outcome = run_example("hello", args=(text,))
    assert (outcome.kind, outcome.stdout) == (OutcomeKind.OK, b"ba" * 100_000 + b"\n")
