"""The network package's public face is its ``__all__``, and its private modules stay private.

In the manner of trio's ``_tests/test_exports.py``: the names a user can import are exactly
the ones ``__all__`` lists, and no code outside ``actors/network/`` (and its own tests in
``tests/network/``) imports a ``plasm.actors.network._*`` module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import plasm.actors.network as network

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("plasm", "actors", "protocol", "runtime", "tests", "bench")
INSIDE = (ROOT / "actors" / "network", ROOT / "tests" / "network")
PACKAGE = "plasm.actors.network"


def private_imports(source: str) -> list[str]:
    """Every import in ``source`` that reaches into one of the package's private modules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(f"{PACKAGE}._")]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith(f"{PACKAGE}._"):
                found.append(node.module)
            elif node.module == PACKAGE:
                found += [f"{PACKAGE}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def source_files() -> list[Path]:
    files = [path for folder in SOURCE_DIRS for path in (ROOT / folder).rglob("*.py")]
    return [path for path in files if not any(path.is_relative_to(inside) for inside in INSIDE)]


def test_the_public_names_are_exactly_all() -> None:
    public = {name for name in vars(network) if not name.startswith("_")}
    assert public == set(network.__all__)


def test_every_name_in_all_exists() -> None:
    missing = [name for name in network.__all__ if not hasattr(network, name)]
    assert missing == []
    assert len(set(network.__all__)) == len(network.__all__)


def test_nothing_outside_the_package_imports_its_private_modules() -> None:
    files = source_files()
    assert any(path.name == "node.py" for path in files)  # the scan sees the tree
    offending = {
        str(path.relative_to(ROOT)): names
        for path in files
        if (names := private_imports(path.read_text(encoding="utf-8")))
    }
    assert offending == {}


def test_the_scan_finds_a_private_import() -> None:
    # guards the test above against a scan that can never find anything
    source = (
        "import plasm.actors.network._node\n"
        "from plasm.actors.network._host import build_host\n"
        "from plasm.actors.network import _dht, start_network\n"
        "from plasm.actors.network import NetworkError\n"
    )
    assert private_imports(source) == [
        "plasm.actors.network._node",
        "plasm.actors.network._host",
        "plasm.actors.network._dht",
    ]
