"""The member header check: only the canonical encoding passes, byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dhi_offline.bundle import tarformat
from dhi_offline.errors import BundleFormatError

PATHS = [
    "evidence/index.json",
    "blobs/sha256/" + "ab" * 32,
    "tlog/" + "c" * 64 + "/entries/123.json",
    "evidence/" + "d" * 60 + "/" + "e" * 90,  # long enough to need the prefix field
]


@pytest.mark.parametrize("path", PATHS)
def test_canonical_headers_parse(path: str) -> None:
    header = tarformat.parse_header(tarformat.encode_header(path, 12345, 1_767_225_600), 0)
    assert (header.path, header.size, header.mtime) == (path, 12345, 1_767_225_600)


@settings(max_examples=400, deadline=None)
@given(
    path=st.sampled_from(PATHS),
    size=st.integers(0, 8**11 - 1),
    position=st.integers(0, 511),
    value=st.integers(0, 255),
    listed=st.booleans(),
)
def test_every_single_byte_change_is_refused(
    path: str, size: int, position: int, value: int, listed: bool
) -> None:
    block = tarformat.encode_header(path, size, 0)
    if block[position] == value:
        return
    changed = block[:position] + bytes([value]) + block[position + 1 :]
    # Whether or not the path is already known to be valid, the encoding is checked.
    with pytest.raises(BundleFormatError):
        tarformat.parse_header(changed, 0, valid_path=(lambda _p: True) if listed else None)
