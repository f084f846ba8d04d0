"""Member paths: the helpers build valid names, and the validator refuses the rest."""

from __future__ import annotations

import pytest

from dhi_offline.bundle import layout

HEX = "ab" * 32


def test_path_helpers() -> None:
    assert layout.blob_path(f"sha256:{HEX}") == f"blobs/sha256/{HEX}"
    assert layout.blob_path(HEX) == f"blobs/sha256/{HEX}"
    assert layout.tlog_entry_path(HEX, 7) == f"tlog/{HEX}/entries/7.json"
    assert layout.checkpoint_path(HEX) == f"tlog/{HEX}/checkpoint.txt"
    assert layout.consistency_path(HEX, 3, 9) == f"tlog/{HEX}/consistency/3-9.json"
    biggest = layout.tlog_entry_path(HEX, 2**64 - 1)
    assert layout.is_valid_member_path(biggest)


@pytest.mark.parametrize(
    "call",
    [
        lambda: layout.blob_path("sha256:" + "AB" * 32),
        lambda: layout.blob_path("sha512:" + "ab" * 64),
        lambda: layout.blob_path("../x"),
        lambda: layout.tlog_entry_path("../../etc", 1),
        lambda: layout.tlog_entry_path(HEX, -1),
        lambda: layout.tlog_entry_path(HEX, True),
        lambda: layout.consistency_path(HEX, 9, 3),
    ],
)
def test_path_helpers_refuse_bad_input(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    "path",
    [
        layout.MANIFEST,
        layout.MANIFEST_SIGNATURE,
        layout.KEYRING,
        layout.TRUSTED_ROOT,
        layout.EVIDENCE,
        "evidence/images/python_3.13.json",
        f"blobs/sha256/{HEX}",
        "tlog/x/anything-1.json",
    ],
)
def test_valid_paths(path: str) -> None:
    assert layout.is_valid_member_path(path), layout.member_path_problem(path)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("evidence/../../etc/passwd", ".."),
        ("..", ".."),
        ("evidence//x", "empty or '.'"),
        ("evidence/./x", "empty or '.'"),
        ("evidence/x/", "empty or '.'"),
        ("evidence\\x", "backslash"),
        ("evidence/x\x00y", "NUL"),
        ("evidence/x\ny", "control"),
        ("evidence/x\x7fy", "control"),
        ("evidence/caf\u00e9", "non-ASCII"),
        ("evidence/.hidden", "segment"),
        ("evidence/-rf", "segment"),
        ("evidence/a b", "segment"),
        ("evidence/" + "a" * 250, "longer than 255"),
        ("evidence/" + "a" * 120, "USTAR"),
        ("blobs/sha256/" + "AB" * 32, "blob"),
        ("blobs/sha256/abc", "blob"),
        (f"blobs/sha256/{HEX}/x", "blob"),
        ("keys/other.json", "not a known"),
        ("etc/passwd", "not a known"),
        ("Manifest.json", "not a known"),
    ],
)
def test_invalid_paths(path: str, why: str) -> None:
    problem = layout.member_path_problem(path)
    assert problem is not None and why in problem
    assert not layout.is_valid_member_path(path)
