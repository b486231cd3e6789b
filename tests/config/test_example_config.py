"""The example config is the documentation of every key: keep it complete and true."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest

import plasm
from plasm.config import KEYS, Config, load_config

EXAMPLE = Path(plasm.__file__).with_name("plasmd.example.toml")
COMMENTED_KEY = re.compile(r"^# ([a-z_]+ = .*)$")


def config_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted key paths of the Config dataclasses, found by walking their fields."""
    keys = []
    for name, hint in typing.get_type_hints(cls).items():
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys.extend(config_keys(hint, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def uncommented(text: str) -> str:
    """The example with every commented default turned into an active line."""
    return "\n".join(
        match[1] if (match := COMMENTED_KEY.match(line)) else line for line in text.splitlines()
    )


def flatten(table: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in table.items():
        if isinstance(value, dict):
            keys |= flatten(value, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PLASM_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_the_key_table_matches_the_config_dataclasses() -> None:
    assert sorted(config_keys(Config)) == sorted(KEYS)


def test_the_example_loads_with_the_packaged_paths() -> None:
    config = load_config(EXAMPLE, {})

    assert config.state_dir == Path("/var/lib/plasmd")
    assert config.api.socket == Path("/run/plasmd/plasmd.sock")


def test_the_example_sets_only_the_packaged_paths() -> None:
    active = flatten(tomllib.loads(EXAMPLE.read_text()))

    assert active == {"state_dir", "api.socket"}


def test_the_example_documents_every_key() -> None:
    documented = flatten(tomllib.loads(uncommented(EXAMPLE.read_text())))

    assert sorted(documented) == sorted(config_keys(Config))


def test_the_commented_values_in_the_example_are_the_defaults(tmp_path: Path) -> None:
    everything = tmp_path / "uncommented.toml"
    everything.write_text(uncommented(EXAMPLE.read_text()))

    assert load_config(everything, {}) == load_config(EXAMPLE, {})
