"""Property: a damaged bundle is refused with a typed error, or yields the same members."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dhi_offline.bundle.reader import open_bundle
from dhi_offline.bundle.signing import public_key_of
from dhi_offline.errors import BundleFormatError, InputError
from tests.bundle.helpers import read_tree, trusted, write_sample

_KEY = ec.generate_private_key(ec.SECP256R1())
_TRUST = trusted(public_key_of(_KEY))


@pytest.fixture(scope="module")
def original() -> tuple[bytes, dict[str, bytes]]:
    with tempfile.TemporaryDirectory() as d:
        bundle = write_sample(Path(d) / "b.dhi.tar.zst", _KEY).path
        dest = Path(d) / "dest"
        dest.mkdir()
        open_bundle(bundle, trusted_exporters=_TRUST, dest=dest)
        return bundle.read_bytes(), read_tree(dest)


def _outcome(data: bytes) -> dict[str, bytes] | None:
    """The extracted tree, or None when refused with one of the two allowed types."""
    with tempfile.TemporaryDirectory() as d:
        bundle = Path(d) / "b.dhi.tar.zst"
        bundle.write_bytes(data)
        dest = Path(d) / "dest"
        dest.mkdir()
        try:
            open_bundle(bundle, trusted_exporters=_TRUST, dest=dest)
        except (BundleFormatError, InputError):
            return None
        return read_tree(dest)


_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(position=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_one_flipped_byte(
    original: tuple[bytes, dict[str, bytes]], position: int, mask: int
) -> None:
    data, tree = original
    i = position % len(data)
    mutated = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
    got = _outcome(mutated)
    assert got is None or got == tree


@_SETTINGS
@given(cut=st.integers(min_value=0), tail=st.binary(max_size=64))
def test_truncated_or_extended(
    original: tuple[bytes, dict[str, bytes]], cut: int, tail: bytes
) -> None:
    data, _ = original
    mutated = data[: cut % len(data)] + tail
    assert _outcome(mutated) is None or mutated == data


@pytest.mark.parametrize("position", range(0, 2000, 7))
def test_flip_sweep(original: tuple[bytes, dict[str, bytes]], position: int) -> None:
    # A deterministic sweep over the start of the file: frame header, first blocks.
    data, tree = original
    if position >= len(data):
        pytest.skip("bundle shorter than the sweep")
    mutated = data[:position] + bytes([data[position] ^ 0x80]) + data[position + 1 :]
    got = _outcome(mutated)
    assert got is None or got == tree
