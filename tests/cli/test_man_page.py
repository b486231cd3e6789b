"""The man page (debian/plasmd.1, installed by the .deb) names every command `plasmd --help`
lists in its synopsis, and every option of `submit --help` it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

from plasm.cli import COMMANDS, build_parser

MAN = Path(__file__).resolve().parents[2] / "debian" / "plasmd.1"


def synopsis() -> str:
    text = MAN.read_text()
    section = text.split(".SH SYNOPSIS", 1)[1].split(".SH ", 1)[0]
    return section.replace("\\-", "-")


def test_the_synopsis_names_every_command() -> None:
    shown = synopsis()
    missing = [name for name in COMMANDS if not re.search(rf"\b{re.escape(name)}\b", shown)]
    assert missing == [], f"plasmd.1 SYNOPSIS misses {missing}"


def test_the_options_in_the_synopsis_exist() -> None:
    parser = build_parser()
    known = set()
    for action in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        for sub_action in action._actions:
            known.update(sub_action.option_strings)
    shown = set(re.findall(r"--[a-z][a-z-]*", synopsis()))
    assert shown - known == set()


def test_the_exit_status_section_matches_the_table() -> None:
    from plasm.commands import _exit

    text = MAN.read_text().replace("\\-", "-")
    section = text.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
    for value in (_exit.EXIT_TIMEOUT, _exit.EXIT_PLASMD, _exit.EXIT_NOT_RUNNABLE,
                  _exit.EXIT_WAIT_RAN_OUT, _exit.EXIT_INTERRUPTED, _exit.EXIT_TRAP,
                  _exit.EXIT_MEMORY, _exit.EXIT_CANCELLED, _exit.EXIT_OUT_OF_FUEL):
        assert str(value) in section
