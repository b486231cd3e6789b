"""Fixtures of the sandbox tests: a real Sandbox and the committed example modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plasm.runtime.job import JobInput, Limits, Outcome
from plasm.runtime.sandbox import CancelToken, Sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "wasm-examples"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(epoch_tick_ms=2)
    yield box
    box.close()


@pytest.fixture(scope="session")
def example() -> Callable[[str], bytes]:
    """The committed bytes of ``wasm-examples/<name>.wasm``."""

    def read(name: str) -> bytes:
        return (EXAMPLES / f"{name}.wasm").read_bytes()

    return read


RunExample = Callable[..., Outcome]


@pytest.fixture
def run_example(sandbox: Sandbox, example: Callable[[str], bytes]) -> RunExample:
    """Run an example by name: ``run_example("hello", stdin=b"x", limits=Limits(...))``."""

    def run(
        name: str,
        *,
        limits: Limits | None = None,
        cancel: CancelToken | None = None,
        **job_fields: object,
    ) -> Outcome:
        job_fields.setdefault("module_name", f"{name}.wasm")
        job_input = JobInput(**job_fields)
        module = sandbox.compile(example(name))
        return sandbox.run(module, job_input, limits or Limits(), cancel)

    return run
