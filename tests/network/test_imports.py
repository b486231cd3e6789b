"""The network package can be imported without paying for trio and libp2p; starting it pays."""

from __future__ import annotations

import pytest

from tests.test_layers import loaded_modules


@pytest.mark.timeout(60)
def test_the_network_package_imports_no_trio_or_libp2p() -> None:
    roots = {name.split(".")[0] for name in loaded_modules("plasm.actors.network")}
    assert "plasm" in roots
    assert not roots & {"trio", "libp2p"}


@pytest.mark.timeout(60)
def test_the_network_actor_module_brings_libp2p() -> None:
    # the counterpart: the check above would pass vacuously if the probe loaded nothing
    roots = {name.split(".")[0] for name in loaded_modules("plasm.actors.network._actor")}
    assert {"trio", "libp2p"} <= roots
