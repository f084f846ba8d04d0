"""DirectoryBlobStore: reads are hashed unless the writer already checked every blob."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence.records import DirectoryBlobStore


def _store(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    hexpart = hashlib.sha256(data).hexdigest()
    (tmp_path / "sha256").mkdir()
    path = tmp_path / "sha256" / hexpart
    path.write_bytes(data)
    return path, f"sha256:{hexpart}"


def test_a_changed_file_is_refused_when_reads_are_hashed(tmp_path: Path) -> None:
    path, digest = _store(tmp_path, b"statement")
    assert DirectoryBlobStore(tmp_path).get(digest) == b"statement"
    path.write_bytes(b"something else")
    with pytest.raises(MalformedEvidenceError, match="different digest"):
        DirectoryBlobStore(tmp_path).get(digest)


def test_memory_is_consulted_first_and_hashed_unless_checked(tmp_path: Path) -> None:
    _, digest = _store(tmp_path, b"statement")
    hexpart = digest.removeprefix("sha256:")
    wrong = DirectoryBlobStore(tmp_path, memory={hexpart: b"other"})
    with pytest.raises(MalformedEvidenceError, match="different digest"):
        wrong.get(digest)
    # checked: the writer (open_bundle) hashed every blob against its name already.
    assert DirectoryBlobStore(tmp_path, memory={hexpart: b"other"}, checked=True).get(digest) == (
        b"other"
    )


def test_checked_reads_are_not_hashed_again(tmp_path: Path) -> None:
    path, digest = _store(tmp_path, b"statement")
    path.write_bytes(b"changed after the writer checked it")
    assert DirectoryBlobStore(tmp_path, checked=True).get(digest).startswith(b"changed")


@pytest.mark.parametrize("digest", ["sha512:" + "a" * 128, "sha256:" + "A" * 64, "sha256:../x"])
def test_only_sha256_names_are_read(tmp_path: Path, digest: str) -> None:
    with pytest.raises(MalformedEvidenceError, match="unsupported digest"):
        DirectoryBlobStore(tmp_path, checked=True).get(digest)


def test_a_missing_blob_is_named(tmp_path: Path) -> None:
    with pytest.raises(MalformedEvidenceError, match="not in the evidence"):
        DirectoryBlobStore(tmp_path, checked=True).get("sha256:" + "0" * 64)
