"""The network's error classes can be caught without paying for trio and libp2p."""

from __future__ import annotations

import pytest

from tests.test_layers import loaded_modules


@pytest.mark.timeout(60)
def test_network_errors_import_no_trio_or_libp2p() -> None:
    roots = {name.split(".")[0] for name in loaded_modules("plasm.actors._p2p_errors")}
    assert not roots & {"trio", "libp2p"}


@pytest.mark.timeout(60)
def test_network_module_brings_libp2p() -> None:
    # the counterpart: the check above would pass vacuously if the probe loaded nothing
    roots = {name.split(".")[0] for name in loaded_modules("plasm.actors.network")}
    assert {"trio", "libp2p"} <= roots
