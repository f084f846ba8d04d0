"""Where an exported image lives in the internal registry: ``--to`` and ``--map``."""

from __future__ import annotations

import pytest

from dhi_offline.deliver.site import unsafe_levels
from dhi_offline.deliver.verdict import Destination
from dhi_offline.errors import UsageError


def test_default_is_the_repository_path_under_to() -> None:
    dest = Destination.parse("registry.site/dhi", [])
    ref = dest.name_for("dhi.io/python:3.13")
    assert (ref.registry, ref.repository, ref.tag) == ("registry.site", "dhi/python", "3.13")


def test_longest_map_prefix_wins() -> None:
    dest = Destination.parse(
        "registry.site", ["dhi.io/=registry.site/mirror/", "dhi.io/python=registry.site/py/main"]
    )
    assert dest.name_for("dhi.io/python:3.13").name == "registry.site/py/main"
    assert dest.name_for("dhi.io/node:22").name == "registry.site/mirror/node"


def test_docker_hub_names_keep_their_namespace() -> None:
    dest = Destination.parse("127.0.0.1:5000", [])
    assert dest.name_for("python:3.13").name == "127.0.0.1:5000/library/python"


@pytest.mark.parametrize("to", ["", "registry.site/dhi:tag", "Bad Host/x", "registry.site/UPPER"])
def test_bad_to_is_a_usage_error(to: str) -> None:
    with pytest.raises(UsageError):
        Destination.parse(to, []).name_for("dhi.io/python:3.13")


def test_map_needs_an_equals_sign() -> None:
    with pytest.raises(UsageError, match="SRC=DST"):
        Destination.parse("registry.site", ["dhi.io/"])


def test_layout_names_need_a_map() -> None:
    with pytest.raises(UsageError, match="no registry name"):
        Destination.parse("registry.site", []).name_for("oci-layout:/tmp/x:3.13")


def test_unsafe_switches_become_levels() -> None:
    assert unsafe_levels(["--at 2020-01-01T00:00:00Z", "--trust-bundle-keys: in force"]) == [
        "DHI_OFFLINE_UNSAFE_AT",
        "DHI_OFFLINE_UNSAFE_TRUST_BUNDLE_KEYS",
    ]
