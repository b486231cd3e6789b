"""Read the [Service] settings of a unit file that say how systemd starts the daemon.

The packaging test starts the installed daemon outside systemd "as the unit would":
same user and group, same ExecStart, same Environment= and UMask=, with the runtime
directory prepared as RuntimeDirectory= would. Reading those from the installed unit,
rather than repeating them in the test, keeps the test honest when the unit changes.
Only the subset of unit syntax the plasmd unit uses is understood; anything else that
would change how the process starts (ExecStart prefixes, EnvironmentFile=) is refused.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


class UnitFileError(Exception):
    """The unit uses a setting this reader cannot reproduce outside systemd."""


@dataclass(frozen=True, slots=True)
class ServiceStart:
    user: str
    group: str
    exec_start: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    umask: int = 0o022
    runtime_directory: str | None = None
    runtime_directory_mode: int = 0o755
    service_type: str = "simple"


def read_sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Every ``Key=Value`` line per section, in file order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            raise UnitFileError(f"{path}: cannot read line {raw!r}")
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def read_service_start(path: Path) -> ServiceStart:
    """How the [Service] section of ``path`` starts its main process."""
    settings = read_sections(path).get("Service", [])
    values: dict[str, str] = {}
    environment: dict[str, str] = {}
    for key, value in settings:
        if key == "Environment":
            for assignment in shlex.split(value):
                name, _, env_value = assignment.partition("=")
                environment[name] = env_value
        elif key in {"EnvironmentFile", "ExecStartPre", "RootDirectory", "WorkingDirectory"}:
            raise UnitFileError(f"{path}: {key}= is not reproduced by this test; extend it")
        else:
            values[key] = value
    exec_start = values.get("ExecStart", "")
    if not exec_start or exec_start[0] in "-@+!:":
        raise UnitFileError(f"{path}: ExecStart={exec_start!r} needs a plain absolute command")
    return ServiceStart(
        user=values["User"],
        group=values.get("Group", values["User"]),
        exec_start=tuple(shlex.split(exec_start)),
        environment=environment,
        umask=int(values.get("UMask", "0022"), 8),
        runtime_directory=values.get("RuntimeDirectory"),
        runtime_directory_mode=int(values.get("RuntimeDirectoryMode", "0755"), 8),
        service_type=values.get("Type", "simple"),
    )
