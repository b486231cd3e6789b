"""The optional TCP listener on loopback, guarded by a bearer token."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest
from daemon_checks import checked_result, example_bytes, write_config

from plasm.client import ApiRequestError, Client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TOKEN = "s3cret-token-" + "x" * 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tcp_address(daemon_factory: Callable[..., object], tmp_path) -> str:
    token_file = tmp_path / "api.token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    address = f"127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path, f'[api]\ntcp_listen = "{address}"\ntoken_file = "{token_file}"\n'
    )
    daemon_factory(None, config=config)
    return address


def test_the_right_token_is_served(tcp_address: str) -> None:
    with Client(tcp=tcp_address, token=TOKEN) as client:
        result = client.submit(module=example_bytes("hello"), wait=30)
    checked_result(result)


@pytest.mark.parametrize("token", [None, "wrong-token-" + "y" * 20, TOKEN + "x"])
def test_a_missing_or_wrong_token_is_401(tcp_address: str, token: str | None) -> None:
    with Client(tcp=tcp_address, token=token) as client:
        for call in (client.health, client.node):
            with pytest.raises(ApiRequestError) as caught:
                call()
            assert (caught.value.status, caught.value.code) == (401, "unauthorized")


def test_a_non_loopback_tcp_address_stops_start_up(daemon_factory, tmp_path) -> None:
    token_file = tmp_path / "api.token"
    token_file.write_text(TOKEN)
    config = write_config(
        tmp_path, f'[api]\ntcp_listen = "0.0.0.0:{free_port()}"\ntoken_file = "{token_file}"\n'
    )
    daemon = daemon_factory(None, config=config, start=False)
    with pytest.raises(AssertionError, match="exited with 2") as caught:
        daemon.start()
    assert "api.tcp_listen" in str(caught.value)


def test_a_short_token_stops_start_up_with_an_error_naming_the_key(daemon_factory, tmp_path
                                                                   ) -> None:
    token_file = tmp_path / "short.token"
    token_file.write_text("abc\n")
    os.chmod(token_file, 0o600)  # private, so the length is what is refused
    config = write_config(
        tmp_path,
        f'[api]\ntcp_listen = "127.0.0.1:{free_port()}"\ntoken_file = "{token_file}"\n',
    )
    daemon = daemon_factory(None, config=config, start=False)
    with pytest.raises(AssertionError, match="exited with 2") as caught:
        daemon.start()
    assert "api.token_file" in str(caught.value)
    assert "Traceback" not in daemon.log()
