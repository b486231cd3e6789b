"""The daemon's configuration: a TOML file, command-line overrides, and defaults for the rest.

``load_config(path, overrides)`` reads the file (optional: every key has a default), applies
the overrides (dotted keys such as ``"api.socket"``, checked exactly like file values), checks
each value and the rules between values, and returns a frozen ``Config`` holding the
*effective* values: paths resolved, ``executor.count = 0`` turned into the number of CPUs,
sizes and durations turned into ints. Any unknown key or bad value raises ``ConfigError``
whose message starts with the key path, e.g. ``api.socket_mode: expected an octal string
like "0660", got 777``.

Precedence: override > file > environment (``PLASM_STATE_DIR``, ``XDG_DATA_HOME``, only for
``state_dir``) > built-in default. Relative ``api.socket`` and ``api.token_file`` are taken
inside ``state_dir``; a relative ``state_dir`` is taken from the current directory.
``plasm/plasmd.example.toml`` documents every key; a test keeps it in step with ``KEYS``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plasm.errors import PlasmError
from plasm.runtime.cpus import check_affinity
from plasm.runtime.job import DEFAULT_MAX_LIMITS, Limits
from plasm.units import UnitError, parse_duration_ms, parse_size

__all__ = [
    "KEYS",
    "ApiConfig",
    "Config",
    "ConfigError",
    "ExecutorConfig",
    "JournalConfig",
    "LimitValues",
    "LimitsConfig",
    "LogConfig",
    "NetworkConfig",
    "ShutdownConfig",
    "default_state_dir",
    "load_config",
]


class ConfigError(PlasmError):
    """The configuration file or an override holds an unknown key or a bad value."""


# -- the effective configuration ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiConfig:
    socket: Path  # Unix socket of the local HTTP API
    socket_mode: int  # permission bits of the socket file, e.g. 0o660
    tcp_listen: str  # "" = no TCP listener, else "127.0.0.1:PORT" / "[::1]:PORT"
    token_file: Path | None  # bearer token for TCP clients; set iff tcp_listen is
    max_body_bytes: int
    # Connections served at once (Unix socket and TCP together); one more is answered 503.
    max_connections: int = 4096
    # A connection with no request under way (new, or kept alive between requests) is
    # closed after this long.
    idle_timeout_ms: int = 5000
    # A request's head and body must arrive within this long of its first byte (slowloris).
    request_timeout_ms: int = 10000

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """``(host, port)`` to bind, or ``None`` when TCP is off."""
        return None if not self.tcp_listen else _split_host_port(self.tcp_listen)


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    count: int  # executors (sandboxes run at once); 0 in the file means one per CPU
    queue_length: int  # jobs waiting for an executor before new ones are refused
    cpu_affinity: str | int  # "auto", "off" or a CPU number (plasm.runtime.cpus)
    pool_slots: int  # the pooling allocator's instance slots; 0: at least 16, two per CPU
    # Compiling (plasm.runtime.sandbox.CompileSettings): worker processes and their limits,
    # and the byte budgets of the compiled-code caches.
    compile_workers: int
    max_compile_ms: int
    max_compile_memory_bytes: int
    module_cache_memory_bytes: int
    module_cache_disk_bytes: int


@dataclass(frozen=True, slots=True)
class LimitValues:
    """One set of job limits; field names match ``plasm.runtime.job.Limits``."""

    fuel: int
    memory_bytes: int
    timeout_ms: int
    max_output_bytes: int
    max_output_files_bytes: int
    max_output_file_bytes: int
    max_output_files: int
    max_input_files_bytes: int


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    default: LimitValues  # applied to a job that does not set a limit
    max: LimitValues  # a job asking for more is rejected


@dataclass(frozen=True, slots=True)
class JournalConfig:
    synchronous: str  # "normal" or "full"


@dataclass(frozen=True, slots=True)
class LogConfig:
    format: str  # "auto", "json" or "rich"
    level: str  # "debug", "info", "warning" or "error"


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    enabled: bool
    listen: tuple[str, ...]  # multiaddrs
    bootstrap: tuple[str, ...]  # multiaddrs ending in /p2p/<peer id>
    mdns: bool
    allow: tuple[str, ...]  # peer IDs allowed to send jobs; () = everyone
    deny: tuple[str, ...]  # peer IDs never served
    max_jobs_per_peer: int
    rate_limit_per_minute: int
    offer_hold_ms: int  # how long an accepted offer holds a slot for its job to arrive
    max_connections: int  # libp2p connections at most, inbound and outbound together
    forget_peers_after_ms: int  # a peer not connected this long leaves the peer table
    dispute_threshold: int  # receipts disputed by a quorum before a peer is cooled down
    dispute_cooldown_ms: int  # how long such a peer is offered no jobs


@dataclass(frozen=True, slots=True)
class BlobsConfig:
    max_bytes: int  # all blobs together (<state_dir>/blobs)
    max_blob_bytes: int  # one blob: an input file, stdin, an output file
    max_module_bytes: int  # one module, uploaded, inline or fetched from a peer


@dataclass(frozen=True, slots=True)
class ShutdownConfig:
    grace_ms: int  # how long running jobs may finish after SIGTERM


@dataclass(frozen=True, slots=True)
class Config:
    state_dir: Path
    api: ApiConfig
    executor: ExecutorConfig
    limits: LimitsConfig
    journal: JournalConfig
    log: LogConfig
    network: NetworkConfig
    shutdown: ShutdownConfig
    blobs: BlobsConfig


# -- value checkers: (key path, raw value) -> effective value --------------------------------

_Parse = Callable[[str, Any], Any]


def _show(value: Any) -> str:
    """A value the way it looks in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"{key}: {message}")


def _path(allow_empty: bool) -> _Parse:
    def parse(key: str, value: Any) -> Path | None:
        if not isinstance(value, str | os.PathLike):
            raise _fail(key, f"expected a path string, got {_show(value)}")
        text = os.fspath(value)
        if not text:
            if allow_empty:
                return None
            raise _fail(key, "expected a path, got an empty string")
        if "\x00" in text:
            raise _fail(key, "a path cannot contain a NUL character")
        return Path(text).expanduser()

    return parse


def _octal_mode(key: str, value: Any) -> int:
    if isinstance(value, str) and 3 <= len(value) <= 4 and set(value) <= set("01234567"):
        mode = int(value, 8)
        if mode <= 0o777:
            return mode
    raise _fail(key, f'expected an octal string like "0660", got {_show(value)}')


def _split_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("no port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _tcp_listen(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(key, f'expected "" or "127.0.0.1:PORT", got {_show(value)}')
    if not value:
        return value
    try:
        host, port = _split_host_port(value)
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _fail(key, f'expected "127.0.0.1:PORT" or "[::1]:PORT", got {_show(value)}') from None
    if not address.is_loopback:
        raise _fail(
            key,
            f"{host} is not a loopback address; the TCP API only listens on 127.0.0.1 or ::1 "
            "(reach it from elsewhere through an SSH tunnel or a reverse proxy)",
        )
    if not 0 <= port <= 65535:
        raise _fail(key, f"port {port} is out of range 0-65535")
    return value


def _int(minimum: int) -> _Parse:
    def parse(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, f"expected an integer, got {_show(value)}")
        if value < minimum:
            raise _fail(key, f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _size(key: str, value: Any) -> int:
    try:
        size = parse_size(value)
    except UnitError as exc:
        raise _fail(key, str(exc)) from None
    if size < 1:
        raise _fail(key, f"expected a size above zero, got {_show(value)}")
    return size


def _duration(minimum: int) -> _Parse:
    def parse(key: str, value: Any) -> int:
        try:
            ms = parse_duration_ms(value)
        except UnitError as exc:
            raise _fail(key, str(exc)) from None
        if ms < minimum:
            raise _fail(key, f"expected at least {minimum} ms, got {_show(value)}")
        return ms

    return parse


def _choice(*options: str) -> _Parse:
    def parse(key: str, value: Any) -> str:
        if value not in options or not isinstance(value, str):
            raise _fail(
                key, f"expected one of {', '.join(map(_show, options))}; got {_show(value)}"
            )
        return value

    return parse


def _cpu_affinity(key: str, value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(key, f'expected "auto", "off" or a CPU number, got {_show(value)}')
    try:
        check_affinity(value)
    except ValueError as exc:
        raise _fail(key, str(exc).removeprefix("cpu_affinity").lstrip(" =:")) from None
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"expected true or false, got {_show(value)}")
    return value


def _multiaddr(key: str, item: str) -> str:
    if not item.startswith("/") or any(c.isspace() for c in item) or "//" in item:
        raise _fail(key, f'expected a multiaddr like "/ip4/0.0.0.0/tcp/7601", got {_show(item)}')
    return item


def _bootstrap_addr(key: str, item: str) -> str:
    _multiaddr(key, item)
    if "/p2p/" not in item:
        raise _fail(key, f"{_show(item)} has no /p2p/<peer id> part; a bootstrap peer needs one")
    return item


_BASE58 = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


def _peer_id(key: str, item: str) -> str:
    if not 40 <= len(item) <= 64 or not set(item) <= _BASE58:
        raise _fail(key, f'expected a peer ID like "12D3KooW...", got {_show(item)}')
    return item


def _list_of(check: Callable[[str, str], str]) -> _Parse:
    def parse(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise _fail(key, f"expected a list of strings, got {_show(value)}")
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _fail(f"{key}[{i}]", f"expected a string, got {_show(item)}")
            items.append(check(f"{key}[{i}]", item))
        if len(set(items)) != len(items):
            raise _fail(key, "lists an entry twice")
        return tuple(items)

    return parse


# -- the key table ----------------------------------------------------------------------------

# Defaults are values the file could hold and go through the same checks; the limits are
# the job layer's (plasm.runtime.job), so they are defined once.
_DEFAULT_LIMITS = Limits()

# state_dir and api.socket have computed defaults (see load_config).
_KEYS: dict[str, tuple[_Parse, Any]] = {
    "state_dir": (_path(allow_empty=False), None),
    "api.socket": (_path(allow_empty=True), ""),
    "api.socket_mode": (_octal_mode, "0660"),
    "api.tcp_listen": (_tcp_listen, ""),
    "api.token_file": (_path(allow_empty=True), ""),
    "api.max_body_bytes": (_size, "32MiB"),
    "api.max_connections": (_int(1), 4096),
    "api.idle_timeout_ms": (_duration(1), 5000),
    "api.request_timeout_ms": (_duration(1), 10000),
    "executor.count": (_int(0), 0),
    "executor.queue_length": (_int(1), 1024),
    "executor.cpu_affinity": (_cpu_affinity, "auto"),
    "executor.pool_slots": (_int(0), 0),
    "executor.compile_workers": (_int(1), 2),
    "executor.max_compile_ms": (_duration(1), "5s"),
    "executor.max_compile_memory_bytes": (_size, "1GiB"),
    "executor.module_cache_memory_bytes": (_size, "256MiB"),
    "executor.module_cache_disk_bytes": (_size, "1GiB"),
    "limits.default.fuel": (_int(1), _DEFAULT_LIMITS.fuel),
    "limits.default.memory_bytes": (_size, _DEFAULT_LIMITS.memory_bytes),
    "limits.default.timeout_ms": (_duration(1), _DEFAULT_LIMITS.timeout_ms),
    "limits.default.max_output_bytes": (_size, _DEFAULT_LIMITS.max_output_bytes),
    "limits.default.max_output_files_bytes": (_size, _DEFAULT_LIMITS.max_output_files_bytes),
    "limits.default.max_output_file_bytes": (_size, _DEFAULT_LIMITS.max_output_file_bytes),
    "limits.default.max_output_files": (_int(1), _DEFAULT_LIMITS.max_output_files),
    "limits.default.max_input_files_bytes": (_size, _DEFAULT_LIMITS.max_input_files_bytes),
    "limits.max.fuel": (_int(1), DEFAULT_MAX_LIMITS.fuel),
    "limits.max.memory_bytes": (_size, DEFAULT_MAX_LIMITS.memory_bytes),
    "limits.max.timeout_ms": (_duration(1), DEFAULT_MAX_LIMITS.timeout_ms),
    "limits.max.max_output_bytes": (_size, DEFAULT_MAX_LIMITS.max_output_bytes),
    "limits.max.max_output_files_bytes": (_size, DEFAULT_MAX_LIMITS.max_output_files_bytes),
    "limits.max.max_output_file_bytes": (_size, DEFAULT_MAX_LIMITS.max_output_file_bytes),
    "limits.max.max_output_files": (_int(1), DEFAULT_MAX_LIMITS.max_output_files),
    "limits.max.max_input_files_bytes": (_size, DEFAULT_MAX_LIMITS.max_input_files_bytes),
    "journal.synchronous": (_choice("normal", "full"), "normal"),
    "log.format": (_choice("auto", "json", "rich"), "auto"),
    "log.level": (_choice("debug", "info", "warning", "error"), "info"),
    "network.enabled": (_bool, True),
    "network.listen": (
        _list_of(_multiaddr),
        ["/ip4/0.0.0.0/tcp/7601", "/ip4/0.0.0.0/udp/7601/quic-v1"],
    ),
    "network.bootstrap": (_list_of(_bootstrap_addr), []),
    "network.mdns": (_bool, False),
    "network.allow": (_list_of(_peer_id), []),
    "network.deny": (_list_of(_peer_id), []),
    "network.max_jobs_per_peer": (_int(1), 4),
    "network.rate_limit_per_minute": (_int(1), 120),
    "network.offer_hold_ms": (_duration(100), 2000),
    "network.max_connections": (_int(4), 64),
    "network.forget_peers_after_ms": (_duration(1000), "10min"),
    "network.dispute_threshold": (_int(1), 3),
    "network.dispute_cooldown_ms": (_duration(0), "1h"),
    "shutdown.grace_ms": (_duration(0), "10s"),
    "blobs.max_bytes": (_size, "8GiB"),
    "blobs.max_blob_bytes": (_size, "256MiB"),
    "blobs.max_module_bytes": (_size, "256MiB"),
}

KEYS: tuple[str, ...] = tuple(_KEYS)
_TABLES = frozenset(key.rsplit(".", i)[0] for key in KEYS for i in range(1, key.count(".") + 1))

# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH = 107


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$PLASM_STATE_DIR``, else ``$XDG_DATA_HOME/plasmd``, else ``~/.local/share/plasmd``."""
    env = os.environ if environ is None else environ
    if env.get("PLASM_STATE_DIR"):
        return Path(env["PLASM_STATE_DIR"]).expanduser()
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative value
        return Path(xdg) / "plasmd"
    return Path.home() / ".local" / "share" / "plasmd"


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read ``path`` (``None``: no file), apply ``overrides``, return the effective config.

    ``overrides`` maps dotted keys (``"state_dir"``, ``"api.socket"``) to values as they would
    appear in the file; a ``None`` value is skipped, so unset command-line options can be
    passed straight through.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        _flatten(_read_toml(path), "", raw)
    for key, value in (overrides or {}).items():
        if key not in _KEYS:
            raise _unknown(key)
        if value is not None:
            raw[key] = value

    values: dict[str, Any] = {}
    for key, (parse, default) in _KEYS.items():
        if key in raw:
            values[key] = parse(key, raw[key])
        elif default is not None:
            values[key] = parse(key, default)
    return _build(values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; create it from plasmd.example.toml "
            "or run without --config to use the defaults"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _flatten(table: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if key in _TABLES:
            if not isinstance(value, dict):
                raise _fail(key, f"expected a table [{key}], got {_show(value)}")
            _flatten(value, f"{key}.", out)
        elif key in _KEYS:
            out[key] = value
        else:
            raise _unknown(key)


def _unknown(key: str) -> ConfigError:
    section = key.rpartition(".")[0]
    while section and section not in _TABLES:
        section = section.rpartition(".")[0]
    siblings = sorted(
        k.removeprefix(f"{section}.").split(".")[0]
        for k in KEYS
        if (k.startswith(f"{section}.") if section else True)
    )
    known = ", ".join(dict.fromkeys(siblings))
    where = f"in [{section}]" if section else "at the top level"
    return _fail(key, f"unknown key; known keys {where}: {known}")


def _build(v: dict[str, Any]) -> Config:
    state_dir = (v["state_dir"] if "state_dir" in v else default_state_dir()).absolute()
    socket = state_dir / (v["api.socket"] or "plasmd.sock")
    if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
        raise _fail(
            "api.socket",
            f"{socket} is {len(os.fsencode(socket))} bytes long, more than the "
            f"{_MAX_SOCKET_PATH} a Unix socket path allows; set a shorter api.socket",
        )
    token_file = v["api.token_file"]
    if v["api.tcp_listen"] and token_file is None:
        raise _fail(
            "api.token_file",
            "required when api.tcp_listen is set: TCP clients must present a token "
            '(for example token_file = "api.token", a file in state_dir that holds the token)',
        )
    limits = LimitsConfig(default=_limit_values(v, "default"), max=_limit_values(v, "max"))
    for field in LimitValues.__slots__:
        default, maximum = getattr(limits.default, field), getattr(limits.max, field)
        if default > maximum:
            raise _fail(
                f"limits.default.{field}",
                f"{default} is above limits.max.{field} ({maximum}); lower it or raise the max",
            )
    network = _network(v)
    return Config(
        state_dir=state_dir,
        api=ApiConfig(
            socket=socket,
            socket_mode=v["api.socket_mode"],
            tcp_listen=v["api.tcp_listen"],
            token_file=None if token_file is None else state_dir / token_file,
            max_body_bytes=v["api.max_body_bytes"],
            max_connections=v["api.max_connections"],
            idle_timeout_ms=v["api.idle_timeout_ms"],
            request_timeout_ms=v["api.request_timeout_ms"],
        ),
        executor=ExecutorConfig(
            count=v["executor.count"] or _cpu_count(),
            queue_length=v["executor.queue_length"],
            cpu_affinity=v["executor.cpu_affinity"],
            pool_slots=v["executor.pool_slots"],
            compile_workers=v["executor.compile_workers"],
            max_compile_ms=v["executor.max_compile_ms"],
            max_compile_memory_bytes=v["executor.max_compile_memory_bytes"],
            module_cache_memory_bytes=v["executor.module_cache_memory_bytes"],
            module_cache_disk_bytes=v["executor.module_cache_disk_bytes"],
        ),
        limits=limits,
        journal=JournalConfig(synchronous=v["journal.synchronous"]),
        log=LogConfig(format=v["log.format"], level=v["log.level"]),
        network=network,
        shutdown=ShutdownConfig(grace_ms=v["shutdown.grace_ms"]),
        blobs=BlobsConfig(
            max_bytes=v["blobs.max_bytes"],
            max_blob_bytes=v["blobs.max_blob_bytes"],
            max_module_bytes=v["blobs.max_module_bytes"],
        ),
    )


def _limit_values(v: dict[str, Any], which: str) -> LimitValues:
    return LimitValues(
        fuel=v[f"limits.{which}.fuel"],
        memory_bytes=v[f"limits.{which}.memory_bytes"],
        timeout_ms=v[f"limits.{which}.timeout_ms"],
        max_output_bytes=v[f"limits.{which}.max_output_bytes"],
        max_output_files_bytes=v[f"limits.{which}.max_output_files_bytes"],
        max_output_file_bytes=v[f"limits.{which}.max_output_file_bytes"],
        max_output_files=v[f"limits.{which}.max_output_files"],
        max_input_files_bytes=v[f"limits.{which}.max_input_files_bytes"],
    )


def _network(v: dict[str, Any]) -> NetworkConfig:
    if v["network.enabled"] and not v["network.listen"]:
        raise _fail(
            "network.listen",
            "is empty but network.enabled is true; give at least one address, "
            "or set network.enabled = false",
        )
    both = sorted(set(v["network.allow"]) & set(v["network.deny"]))
    if both:
        raise _fail("network.deny", f"{both[0]} is also in network.allow; keep it in one list")
    return NetworkConfig(
        enabled=v["network.enabled"],
        listen=v["network.listen"],
        bootstrap=v["network.bootstrap"],
        mdns=v["network.mdns"],
        allow=v["network.allow"],
        deny=v["network.deny"],
        max_jobs_per_peer=v["network.max_jobs_per_peer"],
        rate_limit_per_minute=v["network.rate_limit_per_minute"],
        offer_hold_ms=v["network.offer_hold_ms"],
        max_connections=v["network.max_connections"],
        forget_peers_after_ms=v["network.forget_peers_after_ms"],
        dispute_threshold=v["network.dispute_threshold"],
        dispute_cooldown_ms=v["network.dispute_cooldown_ms"],
    )


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
