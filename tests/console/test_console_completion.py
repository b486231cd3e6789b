"""Tab completion of commands, module files and job ids, as typed in a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import example

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_tab_completes_ru_to_run(console) -> None:
    console.send("ru\t")
    console.expect("run ")
    console.send("\n")
    console.expect("run needs the module to run")
    console.expect_prompt()


def test_tab_completes_a_module_path_for_run(console_factory, daemon, tmp_path: Path) -> None:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "hello.wasm").write_bytes(b"")
    (folder / "notes.txt").write_text("not a module")
    terminal = console_factory("--socket", str(daemon.socket), cwd=tmp_path)
    terminal.expect_prompt()
    terminal.send("run mo\t")
    terminal.expect("run mods/")
    terminal.send("\t")
    terminal.expect("hello.wasm")  # the only .wasm there: notes.txt is not offered
    terminal.send("\x15\n")  # Ctrl-U drops the line; an empty line asks again
    terminal.expect_prompt()


def test_tab_completes_a_job_id_from_its_first_characters(console, daemon) -> None:
    with daemon.client() as client:
        job_id = client.submit(module=example("hello").read_bytes(), wait=30)["job_id"]
    console.send(f"receipt {job_id[:20]}\t")
    console.expect(job_id)
    console.send("\n")
    console.expect("verified")
    console.expect_prompt()
