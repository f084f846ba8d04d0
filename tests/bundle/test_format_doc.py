"""docs/format.md stays in step with dhi_offline/bundle/layout.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dhi_offline.bundle import layout
from dhi_offline.bundle.reader import Limits

DOC = (Path(__file__).parents[2] / "docs" / "format.md").read_text(encoding="utf-8")


def _constants() -> dict[str, object]:
    return {k: v for k, v in vars(layout).items() if k.isupper() and not k.startswith("_")}


@pytest.mark.parametrize(
    ("name", "value"),
    sorted((k, v) for k, v in _constants().items() if isinstance(v, str)),
)
def test_every_string_constant_is_in_the_spec(name: str, value: str) -> None:
    assert f"`{value}`" in DOC or value in DOC, f"layout.{name} = {value!r} missing"
    assert name in DOC, f"constant name {name} missing from docs/format.md"


def test_every_fixed_member_is_in_the_spec() -> None:
    for path in layout.FIXED_MEMBERS:
        assert f"`{path}`" in DOC


def test_path_helpers_are_in_the_spec() -> None:
    for helper in (
        "blob_path",
        "tlog_entry_path",
        "checkpoint_path",
        "consistency_path",
        "sigstore_bundle_path",
    ):
        assert helper in DOC


def test_numbers_are_in_the_spec() -> None:
    assert f"format version | `{layout.FORMAT_VERSION}` (`FORMAT_VERSION`" in DOC
    assert f"level {layout.ZSTD_LEVEL}" in DOC
    assert f"2^{layout.ZSTD_MAX_WINDOW.bit_length() - 1}" in DOC
    assert f"{layout.TAR_RECORD} bytes" in DOC
    assert f"{layout.MAX_PATH_LENGTH} bytes" in DOC
    assert f"0o{layout.MEMBER_MODE:o}" in DOC


def test_limits_are_in_the_spec() -> None:
    for f in dataclasses.fields(Limits):
        assert f"`{f.name}`" in DOC, f"Limits.{f.name} missing"
    defaults = Limits()
    assert f"`max_members` | {defaults.max_members}" in DOC
    assert f"`max_ratio` | {defaults.max_ratio}" in DOC
