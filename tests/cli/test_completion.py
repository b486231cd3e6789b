"""Shell completion: the scripts the .deb installs are what `plasmd completion` makes from
the parser now, and bash completes commands and a command's options with them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from plasm.commands.completion import script

COMPLETION = Path(__file__).resolve().parents[2] / "debian" / "completion"


@pytest.mark.parametrize(("shell", "name"), [("bash", "plasmd"), ("zsh", "_plasmd")])
def test_the_packaged_scripts_are_the_generated_ones(shell: str, name: str) -> None:
    assert (COMPLETION / name).read_text() == script(shell), (
        f"regenerate: plasmd completion {shell} > debian/completion/{name}")


def complete(*words: str) -> list[str]:
    line = " ".join(f"'{w}'" for w in ("plasmd", *words))
    program = (f"source {COMPLETION / 'plasmd'}; COMP_WORDS=({line}); "
               f"COMP_CWORD={len(words)}; _plasmd; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30,
                          check=True)
    return done.stdout.split()


def test_bash_completes_commands_and_options() -> None:
    assert complete("su") == ["submit"]
    assert {"--wait", "--wait-timeout"} <= set(complete("submit", "--wa"))
    assert complete("status", "--j") == ["--json"]
