"""The writer: round trip, determinism, member order, atomicity."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle import layout, tarformat, writer
from dhi_offline.bundle.reader import inspect_bundle, open_bundle
from dhi_offline.bundle.signing import (
    DETERMINISTIC_SIGNATURES,
    public_key_of,
    verify_manifest_signature,
)
from dhi_offline.errors import InputError, UsageError
from tests.bundle.helpers import (
    CREATED,
    EPOCH,
    read_tree,
    sample_members,
    tar_listing,
    trusted,
    write_sample,
)


def test_round_trip(tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20_000)  # 5 MB, streamed from disk
    big_path = layout.blob_path(hashlib.sha256(big.read_bytes()).hexdigest())
    members = [*sample_members(), (big_path, big)]
    written = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key, members=members)
    assert written.size == written.path.stat().st_size
    assert written.sha256 == hashlib.sha256(written.path.read_bytes()).hexdigest()
    assert stat.S_IMODE(written.path.stat().st_mode) == 0o644

    dest = tmp_path / "dest"
    dest.mkdir()
    trust = trusted(public_key_of(exporter_key))
    opened = open_bundle(written.path, trusted_exporters=trust, dest=dest)
    expected = {p: (s.read_bytes() if isinstance(s, Path) else s) for p, s in members}
    tree = read_tree(dest)
    assert tree.pop(layout.MANIFEST) == opened.manifest_bytes
    signature = tree.pop(layout.MANIFEST_SIGNATURE)
    assert verify_manifest_signature(signature, opened.manifest_bytes, trust) == opened.signer
    assert tree == expected
    assert opened.signer.key_id == opened.manifest.exporter_key_id
    assert opened.root == dest
    assert [m.path for m in opened.manifest.members] == sorted(expected)
    assert inspect_bundle(written.path) == opened.manifest


def test_manifest_and_signature_come_first_then_sorted(
    tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey
) -> None:
    written = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key)
    names = tar_listing(written.path)
    assert names[:2] == [layout.MANIFEST, layout.MANIFEST_SIGNATURE]
    assert names[2:] == sorted(p for p, _ in sample_members())


def test_archive_encoding_is_canonical(
    tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey
) -> None:
    written = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key)
    data = written.path.read_bytes()
    params = zstandard.get_frame_parameters(data)
    raw = zstandard.ZstdDecompressor().decompress(data)
    assert params.content_size == len(raw) and params.has_checksum and params.dict_id == 0
    assert len(raw) % layout.TAR_RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        for info in tf:
            assert info.isreg() and info.mode == 0o644 and info.mtime == EPOCH
            assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
            assert info.pax_headers == {}


def test_byte_identical_with_same_epoch(
    tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey
) -> None:
    a = write_sample(tmp_path / "a.dhi.tar.zst", exporter_key)
    b = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key, members=reversed(sample_members()))
    c = write_sample(tmp_path / "c.dhi.tar.zst", exporter_key, epoch=EPOCH + 1)
    if DETERMINISTIC_SIGNATURES:
        assert a.path.read_bytes() == b.path.read_bytes()
        assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256


def test_default_mtime_is_created(tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey) -> None:
    written = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key, epoch=None)
    raw = zstandard.ZstdDecompressor().decompress(written.path.read_bytes())
    header = tarformat.parse_header(raw[:512], 0)
    assert header.mtime == int(CREATED.timestamp())


def test_source_date_epoch_from_env() -> None:
    assert writer.source_date_epoch_from_env({}) is None
    assert writer.source_date_epoch_from_env({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    for bad in ("-1", "1e9", " 1", "99999999999999"):
        with pytest.raises(UsageError):
            writer.source_date_epoch_from_env({"SOURCE_DATE_EPOCH": bad})


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ([("../x", b"")], "refused"),
        ([(layout.MANIFEST, b"")], "written by the bundle writer"),
        ([(layout.EVIDENCE, b""), (layout.EVIDENCE, b"x")], "given twice"),
        ([(layout.EVIDENCE, "text")], "bytes or a Path"),
    ],
)
def test_bad_members_are_usage_errors(
    tmp_path: Path,
    exporter_key: ec.EllipticCurvePrivateKey,
    members: list[tuple[str, object]],
    match: str,
) -> None:
    with pytest.raises(UsageError, match=match):
        write_sample(tmp_path / "b.dhi.tar.zst", exporter_key, members=members)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# -- atomicity --------------------------------------------------------------------------


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [False, True])
def test_failure_mid_write_leaves_nothing(
    tmp_path: Path,
    exporter_key: ec.EllipticCurvePrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    exc: BaseException,
    existing: bool,
) -> None:
    out = tmp_path / "b.dhi.tar.zst"
    if existing:
        out.write_bytes(b"previous bundle")
    real = tarformat.encode_header
    calls = {"n": 0}

    def failing(path: str, size: int, mtime: int) -> bytes:
        calls["n"] += 1
        if calls["n"] == 4:  # after the manifest, its signature and one member
            raise exc
        return real(path, size, mtime)

    monkeypatch.setattr(tarformat, "encode_header", failing)
    with pytest.raises(type(exc)):
        write_sample(out, exporter_key)
    assert calls["n"] == 4
    if existing:
        assert out.read_bytes() == b"previous bundle"
    else:
        assert not out.exists()
    assert _leftovers(tmp_path, {out.name}) == []


def test_source_changed_between_passes(
    tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src" / "evidence.json"
    src.parent.mkdir()
    src.write_bytes(b"original")
    real = writer._measure

    def measure_then_change(source: writer.MemberSource, path: str) -> tuple[int, str]:
        result = real(source, path)
        if isinstance(source, Path):
            source.write_bytes(b"tampered")  # same size, other bytes
        return result

    monkeypatch.setattr(writer, "_measure", measure_then_change)
    out = tmp_path / "b.dhi.tar.zst"
    with pytest.raises(InputError, match="changed while the bundle was written"):
        write_sample(out, exporter_key, members=[(layout.EVIDENCE, src)])
    assert _leftovers(tmp_path, {"src"}) == []


def test_unreadable_source(tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(InputError, match="cannot read"):
        write_sample(
            tmp_path / "b.dhi.tar.zst", exporter_key, members=[(layout.EVIDENCE, tmp_path / "no")]
        )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # must be refused, not block waiting for a writer
    with pytest.raises(InputError, match="not a regular file"):
        write_sample(tmp_path / "b.dhi.tar.zst", exporter_key, members=[(layout.EVIDENCE, fifo)])
    assert list(tmp_path.iterdir()) == [fifo]


def test_output_directory_missing(tmp_path: Path, exporter_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(InputError, match="cannot create"):
        write_sample(tmp_path / "missing" / "b.dhi.tar.zst", exporter_key)


@pytest.mark.parametrize(
    ("limits", "needle"),
    [
        ({"max_members": 2}, "members, more than 2"),
        ({"max_manifest_size": 64}, "-byte manifest, more than 64"),
        ({"max_member_size": 10}, "bytes, more than 10"),
    ],
)
def test_a_bundle_a_reader_would_refuse_is_not_written(
    tmp_path: Path,
    exporter_key: ec.EllipticCurvePrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    limits: dict[str, int],
    needle: str,
) -> None:
    # Found at 40,000 attestations (benchmarks/bench_scale.py): export wrote a bundle
    # whose manifest was over the reader's limit; verify then refused it.
    from dhi_offline.bundle.reader import Limits

    monkeypatch.setattr(writer, "READER_LIMITS", Limits(**limits))
    out = tmp_path / "b.dhi.tar.zst"
    with pytest.raises(UsageError, match=needle):
        write_sample(out, exporter_key)
    assert not out.exists() and list(tmp_path.iterdir()) == []
