"""The ``tuf/`` member paths of format version 2 (docs/format.md section 4a)."""

from __future__ import annotations

import pytest

from dhi_offline.bundle import layout


@pytest.mark.parametrize(
    "path",
    [
        "tuf/root/1.root.json",
        "tuf/root/16.root.json",
        "tuf/timestamp.json",
        "tuf/snapshot.json",
        "tuf/targets.json",
        "tuf/targets/trusted_root.json",
        "tuf/targets/signing_config.v0.2.json",
        "tuf/targets/signing_config.json",
    ],
)
def test_tuf_paths_are_members(path: str) -> None:
    assert layout.member_path_problem(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "tuf/root/0.root.json",
        "tuf/root/01.root.json",
        "tuf/root/x.root.json",
        "tuf/root.json",
        "tuf/1.snapshot.json",
        "tuf/targets/other.json",
        "tuf/targets/abc.trusted_root.json",
        "tuf/extra/timestamp.json",
    ],
)
def test_other_tuf_paths_are_refused(path: str) -> None:
    assert layout.member_path_problem(path) is not None


def test_helpers() -> None:
    assert layout.tuf_root_path(3) == "tuf/root/3.root.json"
    assert layout.tuf_root_version_of("tuf/root/3.root.json") == 3
    assert layout.tuf_root_version_of("tuf/timestamp.json") is None
    assert layout.tuf_target_path("trusted_root.json") == "tuf/targets/trusted_root.json"
    with pytest.raises(ValueError, match="starts at 1"):
        layout.tuf_root_path(0)
    with pytest.raises(ValueError, match="not a TUF target"):
        layout.tuf_target_path("x.json")
    assert layout.format_version_for(["evidence/index.json"]) == 1
    assert layout.format_version_for(["evidence/index.json", "tuf/targets.json"]) == 2
