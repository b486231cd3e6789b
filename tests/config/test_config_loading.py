from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plasm.config import KEYS, ConfigError, default_state_dir, load_config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test depends on the PLASM_STATE_DIR or XDG_DATA_HOME of whoever runs it."""
    monkeypatch.delenv("PLASM_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plasmd.toml"
    path.write_text(text)
    return path


def error_of(path: Path | None, overrides: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides or {})
    return str(info.value)


# -- defaults --------------------------------------------------------------------------------


def test_defaults_need_no_file(tmp_path: Path) -> None:
    config = load_config(None, {})

    assert config.state_dir == tmp_path / "home" / ".local" / "share" / "plasmd"
    assert config.api.socket == config.state_dir / "plasmd.sock"
    assert config.api.socket_mode == 0o660
    assert config.api.tcp_listen == ""
    assert config.api.tcp_address is None
    assert config.api.token_file is None
    assert config.api.max_body_bytes == 32 * 2**20
    assert config.executor.queue_length == 1024
    assert config.journal.synchronous == "normal"
    assert (config.log.format, config.log.level) == ("auto", "info")
    assert config.shutdown.grace_ms == 10_000


def test_default_limits_are_the_documented_ones() -> None:
    limits = load_config(None, {}).limits

    assert (limits.default.fuel, limits.max.fuel) == (1_000_000_000, 100_000_000_000)
    assert (limits.default.memory_bytes, limits.max.memory_bytes) == (64 * 2**20, 2**30)
    assert (limits.default.timeout_ms, limits.max.timeout_ms) == (10_000, 300_000)
    assert (limits.default.max_output_bytes, limits.max.max_output_bytes) == (2**20, 16 * 2**20)


def test_default_network_listens_on_tcp_and_quic_and_allows_everyone() -> None:
    network = load_config(None, {}).network

    assert network.enabled is True
    assert network.listen == ("/ip4/0.0.0.0/tcp/7601", "/ip4/0.0.0.0/udp/7601/quic-v1")
    assert (network.bootstrap, network.allow, network.deny) == ((), (), ())
    assert network.mdns is False
    assert (network.max_jobs_per_peer, network.rate_limit_per_minute) == (4, 120)


def test_default_limits_are_accepted_by_the_runtime_limits_type() -> None:
    from dataclasses import asdict

    from plasm.runtime.job import Limits

    default = load_config(None, {}).limits.default
    assert Limits(**asdict(default)) == Limits()


def test_executor_count_zero_means_one_per_cpu() -> None:
    assert load_config(None, {}).executor.count == len(os.sched_getaffinity(0))


def test_executor_count_set_is_kept() -> None:
    assert load_config(None, {"executor.count": 3}).executor.count == 3


def test_cpu_affinity_is_auto_by_default_and_takes_off_or_an_allowed_cpu() -> None:
    assert load_config(None, {}).executor.cpu_affinity == "auto"
    assert load_config(None, {"executor.cpu_affinity": "off"}).executor.cpu_affinity == "off"
    cpu = min(os.sched_getaffinity(0))
    assert load_config(None, {"executor.cpu_affinity": cpu}).executor.cpu_affinity == cpu


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (10_000, "may only use CPUs"),
        ("on", 'must be "auto", "off" or a CPU number'),
        (True, 'expected "auto", "off" or a CPU number'),
        (1.5, 'expected "auto", "off" or a CPU number'),
    ],
)
def test_a_bad_cpu_affinity_is_refused_naming_the_key(value: object, says: str) -> None:
    with pytest.raises(ConfigError, match=r"executor\.cpu_affinity") as raised:
        load_config(None, {"executor.cpu_affinity": value})
    assert says in str(raised.value)


# -- state_dir and paths ---------------------------------------------------------------------


def test_state_dir_comes_from_plasm_state_dir_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLASM_STATE_DIR", str(tmp_path / "env-state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    assert load_config(None, {}).state_dir == tmp_path / "env-state"


def test_state_dir_falls_back_to_xdg_data_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    assert load_config(None, {}).state_dir == tmp_path / "xdg" / "plasmd"


def test_a_relative_xdg_data_home_is_ignored_as_the_spec_says(tmp_path: Path) -> None:
    assert default_state_dir({"XDG_DATA_HOME": "relative", "HOME": str(tmp_path)}) == (
        Path.home() / ".local" / "share" / "plasmd"
    )


def test_the_file_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLASM_STATE_DIR", str(tmp_path / "env-state"))
    path = write(tmp_path, f'state_dir = "{tmp_path / "file-state"}"\n')

    assert load_config(path, {}).state_dir == tmp_path / "file-state"


def test_an_override_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, f'state_dir = "{tmp_path / "file-state"}"\n')

    config = load_config(path, {"state_dir": tmp_path / "cli-state"})

    assert config.state_dir == tmp_path / "cli-state"
    assert config.api.socket == tmp_path / "cli-state" / "plasmd.sock"


def test_an_override_of_none_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "[executor]\nqueue_length = 7\n")

    assert load_config(path, {"executor.queue_length": None}).executor.queue_length == 7


def test_a_relative_state_dir_is_taken_from_the_current_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    assert load_config(None, {"state_dir": "here"}).state_dir == tmp_path / "here"


def test_relative_socket_and_token_file_are_taken_inside_state_dir(tmp_path: Path) -> None:
    config = load_config(
        None,
        {
            "state_dir": str(tmp_path),
            "api.socket": "api.sock",
            "api.tcp_listen": "127.0.0.1:7600",
            "api.token_file": "api.token",
        },
    )

    assert config.api.socket == tmp_path / "api.sock"
    assert config.api.token_file == tmp_path / "api.token"
    assert config.api.tcp_address == ("127.0.0.1", 7600)


def test_an_absolute_socket_is_kept(tmp_path: Path) -> None:
    config = load_config(None, {"state_dir": str(tmp_path), "api.socket": "/run/x/plasmd.sock"})

    assert config.api.socket == Path("/run/x/plasmd.sock")


def test_a_socket_path_too_long_for_unix_sockets_is_refused(tmp_path: Path) -> None:
    message = error_of(None, {"state_dir": str(tmp_path / ("d" * 120))})

    assert message.startswith("api.socket: ")
    assert "set a shorter api.socket" in message


# -- values with units -----------------------------------------------------------------------


def test_sizes_and_durations_accept_units_or_plain_ints(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[limits.default]\nmemory_bytes = "128MiB"\ntimeout_ms = "2s"\n'
        "max_output_bytes = 4096\n[shutdown]\ngrace_ms = 1500\n",
    )

    config = load_config(path, {})

    assert config.limits.default.memory_bytes == 128 * 2**20
    assert config.limits.default.timeout_ms == 2000
    assert config.limits.default.max_output_bytes == 4096
    assert config.shutdown.grace_ms == 1500


def test_a_bad_size_names_the_key_and_the_accepted_forms() -> None:
    assert error_of(None, {"api.max_body_bytes": "lots"}) == (
        'api.max_body_bytes: expected a size like "64MiB", "512KiB" or a number of bytes, '
        'got "lots"'
    )


def test_a_bad_duration_names_the_key() -> None:
    assert error_of(None, {"shutdown.grace_ms": "10 parsecs"}).startswith(
        'shutdown.grace_ms: unknown unit "parsecs"'
    )


def test_a_zero_size_is_refused() -> None:
    assert error_of(None, {"limits.max.memory_bytes": 0}).startswith(
        "limits.max.memory_bytes: expected a size above zero"
    )


# -- bad values, one class each --------------------------------------------------------------


def test_socket_mode_as_a_bare_number_is_refused_with_the_expected_form(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nsocket_mode = 777\n")

    assert error_of(path) == 'api.socket_mode: expected an octal string like "0660", got 777'


def test_socket_mode_with_a_non_octal_digit_is_refused() -> None:
    assert error_of(None, {"api.socket_mode": "0690"}).startswith("api.socket_mode: ")


def test_socket_mode_string_is_read_as_octal() -> None:
    assert load_config(None, {"api.socket_mode": "0600"}).api.socket_mode == 0o600


def test_tcp_listen_on_a_public_address_is_refused() -> None:
    message = error_of(None, {"api.tcp_listen": "0.0.0.0:7600", "api.token_file": "t"})

    assert message.startswith("api.tcp_listen: 0.0.0.0 is not a loopback address")


def test_tcp_listen_with_a_hostname_is_refused() -> None:
    assert error_of(None, {"api.tcp_listen": "localhost:7600"}).startswith(
        'api.tcp_listen: expected "127.0.0.1:PORT"'
    )


def test_tcp_listen_on_ipv6_loopback_is_accepted(tmp_path: Path) -> None:
    config = load_config(None, {"api.tcp_listen": "[::1]:7600", "api.token_file": "t"})

    assert config.api.tcp_address == ("::1", 7600)


def test_tcp_listen_with_a_port_out_of_range_is_refused() -> None:
    assert "out of range" in error_of(
        None, {"api.tcp_listen": "127.0.0.1:70000", "api.token_file": "t"}
    )


def test_tcp_listen_without_a_token_file_is_refused() -> None:
    assert error_of(None, {"api.tcp_listen": "127.0.0.1:7600"}).startswith(
        "api.token_file: required when api.tcp_listen is set"
    )


def test_a_string_where_an_integer_belongs_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[executor]\nqueue_length = "many"\n')

    assert error_of(path) == 'executor.queue_length: expected an integer, got "many"'


def test_a_bool_where_an_integer_belongs_is_refused() -> None:
    assert error_of(None, {"network.max_jobs_per_peer": True}) == (
        "network.max_jobs_per_peer: expected an integer, got true"
    )


def test_an_integer_below_its_minimum_is_refused() -> None:
    assert error_of(None, {"executor.queue_length": 0}) == (
        "executor.queue_length: expected an integer >= 1, got 0"
    )


def test_a_value_outside_its_choices_is_refused() -> None:
    assert error_of(None, {"journal.synchronous": "off"}) == (
        'journal.synchronous: expected one of "normal", "full"; got "off"'
    )


def test_a_non_bool_switch_is_refused() -> None:
    assert error_of(None, {"network.mdns": "yes"}) == (
        'network.mdns: expected true or false, got "yes"'
    )


def test_a_default_limit_above_its_max_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[limits.default]\nmemory_bytes = "2GiB"\n')

    assert error_of(path).startswith(
        "limits.default.memory_bytes: 2147483648 is above limits.max.memory_bytes"
    )


def test_a_bad_list_item_is_named_by_its_index() -> None:
    message = error_of(None, {"network.listen": ["/ip4/0.0.0.0/tcp/7601", "0.0.0.0:7601"]})

    assert message.startswith('network.listen[1]: expected a multiaddr like "/ip4/')


def test_a_bootstrap_address_without_a_peer_id_is_refused() -> None:
    assert "has no /p2p/<peer id> part" in error_of(
        None, {"network.bootstrap": ["/ip4/192.0.2.1/tcp/7601"]}
    )


def test_a_malformed_peer_id_in_allow_is_refused() -> None:
    assert error_of(None, {"network.allow": ["not-a-peer-id"]}).startswith(
        'network.allow[0]: expected a peer ID like "12D3KooW..."'
    )


def test_a_peer_in_both_allow_and_deny_is_refused() -> None:
    peer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

    assert error_of(None, {"network.allow": [peer], "network.deny": [peer]}) == (
        f"network.deny: {peer} is also in network.allow; keep it in one list"
    )


def test_an_enabled_network_with_nothing_to_listen_on_is_refused() -> None:
    assert error_of(None, {"network.listen": []}).startswith("network.listen: is empty")


def test_a_disabled_network_may_listen_on_nothing() -> None:
    config = load_config(None, {"network.listen": [], "network.enabled": False})

    assert config.network.listen == ()


def test_a_value_where_a_table_belongs_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "api = 3\n")

    assert error_of(path) == "api: expected a table [api], got 3"


def test_a_table_where_a_value_belongs_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[state_dir]\npath = 1\n")

    assert error_of(path) == "state_dir: expected a path string, got a table"


# -- unknown keys ----------------------------------------------------------------------------


def test_an_unknown_top_level_key_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, 'statedir = "/tmp"\n')

    message = error_of(path)

    assert message.startswith("statedir: unknown key; known keys at the top level: ")
    assert "state_dir" in message


def test_an_unknown_nested_key_is_refused_with_its_siblings(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits.max]\nmemory = 1\n")

    assert error_of(path) == (
        "limits.max.memory: unknown key; known keys in [limits.max]: "
        "fuel, max_input_files_bytes, max_output_bytes, max_output_file_bytes, max_output_files, "
        "max_output_files_bytes, memory_bytes, timeout_ms"
    )


def test_an_unknown_table_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits.min]\nfuel = 1\n")

    assert error_of(path).startswith("limits.min: unknown key; known keys in [limits]: default")


def test_an_unknown_override_key_is_refused() -> None:
    assert error_of(None, {"api.sockets": "/tmp/x"}).startswith(
        "api.sockets: unknown key; known keys in [api]: idle_timeout_ms, max_body_bytes, "
    )


def test_an_override_naming_a_table_is_refused() -> None:
    assert error_of(None, {"api": {}}).startswith("api: unknown key")


# -- the file itself -------------------------------------------------------------------------


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    assert "does not exist" in error_of(tmp_path / "nope.toml")


def test_invalid_toml_is_reported_with_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "[api\nsocket = \n")

    assert error_of(path).startswith(f"{path} is not valid TOML: ")


def test_every_key_is_listed_once() -> None:
    assert len(KEYS) == len(set(KEYS))


def test_api_connection_limits_have_defaults_and_take_durations() -> None:
    config = load_config(None, {})
    assert (config.api.max_connections, config.api.idle_timeout_ms) == (4096, 5000)
    assert config.api.request_timeout_ms == 10_000
    config = load_config(None, {"api.idle_timeout_ms": "2s", "api.max_connections": 10})
    assert (config.api.max_connections, config.api.idle_timeout_ms) == (10, 2000)


def test_api_max_connections_below_one_is_refused() -> None:
    assert error_of(None, {"api.max_connections": 0}).startswith("api.max_connections: ")
