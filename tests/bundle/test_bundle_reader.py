"""The reader refuses every hostile archive with the right typed error, and early."""

from __future__ import annotations

import hashlib
import io
import os
import resource
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle import layout, reader, tarformat
from dhi_offline.bundle.reader import Limits, inspect_bundle, open_bundle
from dhi_offline.bundle.signing import public_key_of, sign_manifest
from dhi_offline.errors import (
    BundleFormatError,
    BundleLimitError,
    InputError,
    ManifestSignatureError,
    MemberIntegrityError,
    UsageError,
)
from tests.bundle.helpers import (
    LOG_ID,
    Raw,
    compress,
    crafted_bundle,
    manifest_for,
    sample_members,
    sample_tar,
    signed_head,
    tar_bytes,
    trusted,
    write_sample,
)

Key = ec.EllipticCurvePrivateKey
MEMBERS: list[tuple[str, bytes]] = sorted(
    (p, s) for p, s in sample_members() if isinstance(s, bytes)
)
EXTRA = "evidence/zzz.json"


def _info(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in attrs.items():
        setattr(info, k, v)
    return info


def _with_field(header: bytes, start: int, value: bytes) -> bytes:
    """``header`` with bytes replaced at ``start`` and a correct checksum again."""
    h = bytearray(header)
    h[start : start + len(value)] = value
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


def _write(path: Path, raws: list[Raw], **kw: bool) -> Path:
    path.write_bytes(compress(tar_bytes(raws), **kw))
    return path


def _extra(key: Key, out: Path, raw: Raw) -> Path:
    """A properly signed bundle followed by one hostile member."""
    return crafted_bundle(out, key, MEMBERS, extra=[raw])


def _first(key: Key, out: Path, raw: Raw) -> Path:
    """A hostile member placed before the manifest."""
    manifest = manifest_for(key, MEMBERS).to_json()
    return _write(out, [raw, *signed_head(key, manifest)])


@dataclass
class Case:
    build: Callable[[Key, Key, Path], Path]
    error: type[Exception]
    match: str
    limits: Limits = field(default_factory=Limits)


def _dup_manifest(key: Key, _o: Key, out: Path) -> Path:
    good = manifest_for(key, MEMBERS).to_json()
    first = good.index(b'{"path"')
    end = good.index(b"}", first) + 1
    doubled = good[:end] + b"," + good[first:]  # the first member listed twice
    return _write(out, signed_head(key, doubled) + [Raw.regular(p, d) for p, d in MEMBERS])


def _changed_member(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    tampered = [(p, d.replace(b"42", b"43")) for p, d in MEMBERS]
    return _write(out, signed_head(key, manifest) + [Raw.regular(p, d) for p, d in tampered])


def _resized_member(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    resized = [(p, d + b" ") for p, d in MEMBERS]
    return _write(out, signed_head(key, manifest) + [Raw.regular(p, d) for p, d in resized])


def _changed_manifest(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    head = signed_head(key, manifest)
    head[0] = Raw.regular(layout.MANIFEST, manifest.replace(b'"sequence":1', b'"sequence":2'))
    return _write(out, head + [Raw.regular(p, d) for p, d in MEMBERS])


def _signed_by(which: str) -> Callable[[Key, Key, Path], Path]:
    def build(key: Key, other: Key, out: Path) -> Path:
        manifest = manifest_for(key, MEMBERS).to_json()
        signer = other if which == "other" else key
        head = [
            Raw.regular(layout.MANIFEST, manifest),
            Raw.regular(layout.MANIFEST_SIGNATURE, sign_manifest(manifest, signer)),
        ]
        return _write(out, head + [Raw.regular(p, d) for p, d in MEMBERS])

    return build


def _names_other_key(key: Key, other: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS, exporter_key_id=public_key_of(other).key_id).to_json()
    return _write(out, signed_head(key, manifest) + [Raw.regular(p, d) for p, d in MEMBERS])


def _reordered(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    body = [Raw.regular(p, d) for p, d in reversed(MEMBERS)]
    return _write(out, signed_head(key, manifest) + body)


def _missing(key: Key, _o: Key, out: Path) -> Path:
    return crafted_bundle(out, key, MEMBERS[:-1], listed=MEMBERS)


def _manifest_not_first(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    head = signed_head(key, manifest)
    return _write(out, [head[1], head[0]] + [Raw.regular(p, d) for p, d in MEMBERS])


def _no_signature(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    return _write(out, signed_head(key, manifest)[:1] + [Raw.regular(p, d) for p, d in MEMBERS])


def _tar_then(suffix: bytes, *, pad: bool = True) -> Callable[[Key, Key, Path], Path]:
    def build(key: Key, _o: Key, out: Path) -> Path:
        out.write_bytes(compress(sample_tar(key) + suffix))
        return out

    return build


def _tar_end(end: bytes) -> Callable[[Key, Key, Path], Path]:
    def build(key: Key, _o: Key, out: Path) -> Path:
        manifest = manifest_for(key, MEMBERS).to_json()
        raws = signed_head(key, manifest) + [Raw.regular(p, d) for p, d in MEMBERS]
        out.write_bytes(compress(tar_bytes(raws, end=end)))
        return out

    return build


def _frame(transform: Callable[[bytes], bytes], **kw: bool) -> Callable[[Key, Key, Path], Path]:
    def build(key: Key, _o: Key, out: Path) -> Path:
        out.write_bytes(transform(compress(sample_tar(key), **kw)))
        return out

    return build


def _header_mutation(start: int, value: bytes) -> Callable[[Key, Key, Path], Path]:
    def build(key: Key, _o: Key, out: Path) -> Path:
        manifest = manifest_for(key, MEMBERS).to_json()
        body = [Raw.regular(p, d) for p, d in MEMBERS]
        body[0] = Raw(_with_field(body[0].header, start, value), body[0].data)
        return _write(out, signed_head(key, manifest) + body)

    return build


def _bad_checksum(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    body = [Raw.regular(p, d) for p, d in MEMBERS]
    h = bytearray(body[0].header)
    h[0] ^= 0x01  # name changed, checksum not updated
    body[0] = Raw(bytes(h), body[0].data)
    return _write(out, signed_head(key, manifest) + body)


def _bad_padding(key: Key, _o: Key, out: Path) -> Path:
    manifest = manifest_for(key, MEMBERS).to_json()
    raws = signed_head(key, manifest) + [Raw.regular(p, d) for p, d in MEMBERS]
    tar = bytearray(tar_bytes(raws))
    # the byte right after the manifest's data is tar padding
    tar[512 + len(manifest)] = 0x41
    out.write_bytes(compress(bytes(tar)))
    return out


def _huge_header(path_is_manifest: bool) -> Callable[[Key, Key, Path], Path]:
    def build(key: Key, _o: Key, out: Path) -> Path:
        huge = 8**11 - 1  # 8 GiB: only the header says so, the data is never there
        manifest = manifest_for(key, MEMBERS).to_json()
        if path_is_manifest:
            raws = [Raw.regular(layout.MANIFEST, b"{}", size=huge)]
        else:
            p, d = MEMBERS[0]
            raws = [*signed_head(key, manifest), Raw.regular(p, d, size=huge)]
        # The body is shorter than the header claims: Raw.encode pads the real data.
        return _write(out, raws)

    return build


def _many_members(key: Key, _o: Key, out: Path) -> Path:
    members = [(f"evidence/m{i:03}.json", b"{}") for i in range(11)]
    return crafted_bundle(out, key, members)


def _pax(key: Key, out: Path) -> Path:
    p, d = MEMBERS[0]
    info = _info(p, size=len(d), pax_headers={"path": "evidence/renamed.json"})
    manifest = manifest_for(key, MEMBERS).to_json()
    raws = [*signed_head(key, manifest), Raw.from_tarinfo(info, d, tarfile.PAX_FORMAT)]
    return _write(out, raws)


CASES: dict[str, Case] = {
    # (2) header checks, after a valid signed head and before it
    "traversal": Case(
        lambda k, _o, out: _extra(k, out, Raw.from_tarinfo(_info("../evil", size=1), b"x")),
        BundleFormatError,
        "traversal",
    ),
    "nested traversal": Case(
        lambda k, _o, out: _extra(k, out, Raw.from_tarinfo(_info("evidence/../../x"), b"")),
        BundleFormatError,
        "traversal",
    ),
    "absolute": Case(
        lambda k, _o, out: _extra(k, out, Raw.from_tarinfo(_info("/etc/evil"))),
        BundleFormatError,
        "absolute",
    ),
    "traversal first": Case(
        lambda k, _o, out: _first(k, out, Raw.from_tarinfo(_info("../evil", size=1), b"x")),
        BundleFormatError,
        "traversal",
    ),
    "symlink": Case(
        lambda k, _o, out: _extra(
            k, out, Raw.from_tarinfo(_info(EXTRA, tarfile.SYMTYPE, linkname="/etc/passwd"))
        ),
        BundleFormatError,
        "symbolic link",
    ),
    "symlink first": Case(
        lambda k, _o, out: _first(
            k, out, Raw.from_tarinfo(_info(layout.MANIFEST, tarfile.SYMTYPE, linkname="/x"))
        ),
        BundleFormatError,
        "symbolic link",
    ),
    "hardlink": Case(
        lambda k, _o, out: _extra(
            k, out, Raw.from_tarinfo(_info(EXTRA, tarfile.LNKTYPE, linkname=layout.EVIDENCE))
        ),
        BundleFormatError,
        "hard link",
    ),
    "char device": Case(
        lambda k, _o, out: _extra(k, out, Raw.from_tarinfo(_info(EXTRA, tarfile.CHRTYPE))),
        BundleFormatError,
        "character device",
    ),
    "block device": Case(
        lambda k, _o, out: _extra(k, out, Raw.from_tarinfo(_info(EXTRA, tarfile.BLKTYPE))),
        BundleFormatError,
        "block device",
    ),
    "fifo": Case(
        lambda k, _o, out: _extra(k, out, Raw.from_tarinfo(_info(EXTRA, tarfile.FIFOTYPE))),
        BundleFormatError,
        "FIFO",
    ),
    "directory": Case(
        lambda k, _o, out: _extra(k, out, Raw.from_tarinfo(_info("evidence", tarfile.DIRTYPE))),
        BundleFormatError,
        "directory",
    ),
    "pax rename": Case(lambda k, _o, out: _pax(k, out), BundleFormatError, "pax extended"),
    "gnu long name": Case(
        lambda k, _o, out: _extra(
            k,
            out,
            Raw.from_tarinfo(_info("evidence/" + "a" * 120), b"", tarfile.GNU_FORMAT),
        ),
        BundleFormatError,
        "not a POSIX ustar header",
    ),
    "non-canonical header": Case(
        _header_mutation(108, b"0001750\x00"), BundleFormatError, "not the canonical"
    ),
    "user name": Case(_header_mutation(265, b"root"), BundleFormatError, "not the canonical"),
    "base-256 size": Case(
        _header_mutation(124, b"\x80" + b"\x00" * 11), BundleFormatError, "not octal"
    ),
    "bad checksum": Case(_bad_checksum, BundleFormatError, "bad checksum"),
    "non-zero padding": Case(_bad_padding, BundleFormatError, "non-zero tar padding"),
    # (3) manifest and signature first
    "manifest not first": Case(
        _manifest_not_first, BundleFormatError, "first member must be manifest.json"
    ),
    "signature missing": Case(
        _no_signature, BundleFormatError, "second member must be manifest.sig.json"
    ),
    "empty archive": Case(
        lambda _k, _o, out: _write(out, []), BundleFormatError, "ends before its first member"
    ),
    "huge manifest header": Case(_huge_header(True), BundleLimitError, "manifest.json declares"),
    "manifest over limit": Case(
        _signed_by("trusted"), BundleLimitError, "over the limit", Limits(max_manifest_size=100)
    ),
    # (4) signature
    "changed manifest byte": Case(_changed_manifest, ManifestSignatureError, "other bytes"),
    "signed by another key": Case(
        _signed_by("other"), ManifestSignatureError, "not signed by a trusted exporter key"
    ),
    "manifest names another key": Case(
        _names_other_key, ManifestSignatureError, "names exporter key"
    ),
    # (5) manifest
    "member listed twice": Case(_dup_manifest, BundleFormatError, "listed twice"),
    "too many members": Case(
        _many_members, BundleLimitError, "lists 11 members", Limits(max_members=10)
    ),
    "member over limit": Case(
        _signed_by("trusted"), BundleLimitError, "over the limit", Limits(max_member_size=10)
    ),
    "inflated size over limit": Case(
        _signed_by("trusted"), BundleLimitError, "inflates to", Limits(max_total_size=20_000)
    ),
    "listed total over limit": Case(
        lambda k, _o, out: crafted_bundle(
            out, k, MEMBERS, listed=[*MEMBERS, ("evidence/big.json", b"x" * 200_000)]
        ),
        BundleLimitError,
        "members total",
        Limits(max_total_size=100_000),
    ),
    # (6) members
    "changed member bytes": Case(_changed_member, MemberIntegrityError, "sha256"),
    "changed member size": Case(_resized_member, MemberIntegrityError, "the manifest says"),
    "huge member header": Case(_huge_header(False), BundleLimitError, "declares"),
    "unlisted member": Case(
        lambda k, _o, out: _extra(k, out, Raw.regular(EXTRA, b"{}")),
        MemberIntegrityError,
        "not listed",
    ),
    "duplicate member": Case(
        lambda k, _o, out: _extra(k, out, Raw.regular(*MEMBERS[-1])),
        MemberIntegrityError,
        "appears twice",
    ),
    "duplicate manifest": Case(
        lambda k, _o, out: _extra(k, out, Raw.regular(layout.MANIFEST, b"{}")),
        MemberIntegrityError,
        "appears twice",
    ),
    "out of order": Case(_reordered, BundleFormatError, "out of order"),
    # (7) end
    "missing member": Case(_missing, MemberIntegrityError, "listed but not in the bundle"),
    "data after end marker": Case(
        _tar_then(b"\x00" * 1024 + b"x" + b"\x00" * 10239),
        BundleFormatError,
        "after the tar end-of-archive",
    ),
    "one end block only": Case(_tar_end(b"\x00" * 512), BundleFormatError, "end-of-archive marker"),
    "end not padded to a record": Case(_tar_end(b"\x00" * 1024), BundleFormatError, "not padded"),
    # (0)/(1) compressed stream
    "trailing bytes": Case(_frame(lambda b: b + b"junk"), BundleFormatError, "follow the zstd"),
    "two frames": Case(
        _frame(lambda b: b + compress(b"\x00" * 512)), BundleFormatError, "follow the zstd"
    ),
    "truncated mid-stream": Case(
        _frame(lambda b: b[: len(b) // 2]), BundleFormatError, "truncated"
    ),
    "truncated checksum": Case(_frame(lambda b: b[:-2]), BundleFormatError, "ends early"),
    "corrupt checksum": Case(
        _frame(lambda b: b[:-1] + bytes([b[-1] ^ 1])), BundleFormatError, "corrupt"
    ),
    "no content size": Case(
        _frame(lambda b: b, content_size=False), BundleFormatError, "content size"
    ),
    "no checksum": Case(_frame(lambda b: b, checksum=False), BundleFormatError, "checksum"),
    "not zstd": Case(_frame(lambda b: b"PK\x03\x04" + b), InputError, "not a zstd"),
    "gzip": Case(_frame(lambda _b: b"\x1f\x8b\x08\x00" + b"\x00" * 100), InputError, "zstd"),
    "empty file": Case(_frame(lambda _b: b""), InputError, "not a zstd"),
    "truncated header": Case(_frame(lambda b: b[:5]), InputError, "zstd frame header"),
}


# Where members go: (memory_budget, pack).
WHERE = {"files": (0, False), "memory": (64 * 1024 * 1024, False), "pack": (0, True)}


@pytest.mark.parametrize("where", sorted(WHERE))
@pytest.mark.parametrize("name", sorted(CASES))
def test_refused(tmp_path: Path, exporter_key: Key, other_key: Key, name: str, where: str) -> None:
    # Every refusal holds whether members are written out, kept in memory or packed.
    case = CASES[name]
    bundle = case.build(exporter_key, other_key, tmp_path / "b.dhi.tar.zst")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(case.error, match=case.match) as info:
        open_bundle(
            bundle,
            trusted_exporters=trusted(public_key_of(exporter_key)),
            dest=dest,
            limits=case.limits,
            memory_budget=WHERE[where][0],
            pack=WHERE[where][1],
        )
    if case.error is BundleFormatError:
        # Structural refusals are not mislabelled as a member or signature problem.
        assert type(info.value) is BundleFormatError
    # Nothing outside dest, and nothing at all before the signature verified.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.dhi.tar.zst", "dest"]
    if case.error in (ManifestSignatureError, InputError):
        assert list(dest.iterdir()) == []


def test_memory_budget_keeps_small_members_in_memory(tmp_path: Path, exporter_key: Key) -> None:
    big = os.urandom(3000)
    members = [*sample_members(), (layout.blob_path(hashlib.sha256(big).hexdigest()), big)]
    bundle = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key, members=members).path
    trust = trusted(public_key_of(exporter_key))
    small = [(p, d) for p, d in members if isinstance(d, bytes) and len(d) <= 100]
    budget = sum(len(d) for _, d in small)
    dest = tmp_path / "dest"
    dest.mkdir()
    opened = open_bundle(
        bundle, trusted_exporters=trust, dest=dest, memory_budget=budget, memory_member_max=100
    )
    # Members over the per-member cap are written; those under it kept while it lasts.
    assert sorted(opened.memory) == sorted(p for p, _ in small)
    on_disk = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert on_disk == sorted(
        [
            layout.MANIFEST,
            layout.MANIFEST_SIGNATURE,
            layout.blob_path(hashlib.sha256(big).hexdigest()),
        ]
    )
    for path, data in members:
        assert opened.has(path)
        assert opened.read_bytes(path) == data
    assert not opened.has("blobs/sha256/" + "0" * 64)
    with pytest.raises(FileNotFoundError):
        opened.read_bytes("blobs/sha256/" + "0" * 64)


def test_small_members_past_the_budget_are_packed_into_one_file(
    tmp_path: Path, exporter_key: Key
) -> None:
    big = os.urandom(3000)
    members = [*sample_members(), (layout.blob_path(hashlib.sha256(big).hexdigest()), big)]
    bundle = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key, members=members).path
    small = sorted(p for p, d in members if isinstance(d, bytes) and len(d) <= 100)
    first = min(len(d) for p, d in members if p == small[0] and isinstance(d, bytes))
    dest = tmp_path / "dest"
    dest.mkdir()
    extracted: list[str] = []
    opened = open_bundle(
        bundle,
        trusted_exporters=trusted(public_key_of(exporter_key)),
        dest=dest,
        memory_budget=first,  # the first small member in path order, no more
        memory_member_max=100,
        pack=True,
        on_extracted=lambda path, _size: extracted.append(path),
    )
    assert sorted(opened.memory) == [small[0]]
    assert sorted(opened.packed) == small[1:]
    # One file for all the packed members; the big one is a file of its own, and the
    # only one the extraction hook hears of (prefetch reads it by path).
    on_disk = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    big_path = layout.blob_path(hashlib.sha256(big).hexdigest())
    assert on_disk == sorted([layout.MANIFEST, layout.MANIFEST_SIGNATURE, big_path, reader.PACK])
    assert extracted == [big_path]
    assert (dest / reader.PACK).stat().st_size == sum(size for _, size in opened.packed.values())
    for path, data in members:
        assert opened.read_bytes(path) == data
    blobs = opened.unfiled(layout.BLOBS_PREFIX)
    unfiled = {p.removeprefix(layout.BLOBS_PREFIX) for p in small if p.startswith("blobs/")}
    assert set(blobs) == unfiled and len(blobs) == len(unfiled)
    for key in unfiled:
        assert hashlib.sha256(blobs[key]).hexdigest() == key
    with pytest.raises(KeyError):
        blobs[hashlib.sha256(big).hexdigest()]  # a file of its own, not in the view
    # No member can be named like the pack: a segment never starts with a dot.
    assert not layout.is_valid_member_path(reader.PACK)


def test_memory_budget_is_a_total(tmp_path: Path, exporter_key: Key) -> None:
    bundle = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key).path
    dest = tmp_path / "dest"
    dest.mkdir()
    sizes = {p: len(d) for p, d in sample_members() if isinstance(d, bytes)}
    opened = open_bundle(
        bundle,
        trusted_exporters=trusted(public_key_of(exporter_key)),
        dest=dest,
        memory_budget=min(sizes.values()) + 1,
    )
    # Path order: once the budget cannot take a member, it goes to disk.
    assert sum(len(d) for d in opened.memory.values()) <= min(sizes.values()) + 1
    assert len(opened.memory) == 1
    for path, data in sample_members():
        assert opened.read_bytes(path) == data


def test_unknown_exporter(tmp_path: Path, exporter_key: Key) -> None:
    bundle = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key).path
    dest = tmp_path / "dest"
    dest.mkdir()
    key_id = public_key_of(exporter_key).key_id
    with pytest.raises(ManifestSignatureError, match=f"trusted exporter key {key_id}"):
        open_bundle(bundle, trusted_exporters=lambda _k: None, dest=dest)
    assert list(dest.iterdir()) == []


def test_every_truncation_is_refused(tmp_path: Path, exporter_key: Key) -> None:
    data = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key).path.read_bytes()
    trust = trusted(public_key_of(exporter_key))
    for n, cut in enumerate(range(0, len(data), max(1, len(data) // 60))):
        bundle = tmp_path / f"t{n}.dhi.tar.zst"
        bundle.write_bytes(data[:cut])
        dest = tmp_path / f"d{n}"
        dest.mkdir()
        with pytest.raises((BundleFormatError, InputError)):
            open_bundle(bundle, trusted_exporters=trust, dest=dest)


# -- zstd bombs -------------------------------------------------------------------------

TWO_GB = 2 * 1024**3


def _bomb(path: Path, *, declare_size: bool, prefix: bytes = b"") -> Path:
    """2 GiB (+ prefix) of zeros in a few tens of KB, generated without holding it."""
    total = len(prefix) + TWO_GB
    c = zstandard.ZstdCompressor(
        level=1, write_checksum=True, write_content_size=declare_size, threads=0
    )
    with path.open("wb") as fh:
        w = c.stream_writer(fh, size=total if declare_size else -1, closefd=False)
        w.write(prefix)
        chunk = bytes(1 << 20)
        for _ in range(TWO_GB >> 20):
            w.write(chunk)
        w.flush(zstandard.FLUSH_FRAME)
    return path


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    head = tarformat.encode_header(layout.MANIFEST, TWO_GB, 0)
    return {
        "declared": _bomb(d / "declared.dhi.tar.zst", declare_size=True),
        "undeclared": _bomb(d / "undeclared.dhi.tar.zst", declare_size=False),
        "manifest": _bomb(d / "manifest.dhi.tar.zst", declare_size=False, prefix=head),
    }


def test_bomb_with_declared_size_refused_before_inflating(
    tmp_path: Path, exporter_key: Key, bombs: dict[str, Path]
) -> None:
    assert bombs["declared"].stat().st_size < 200_000
    start = time.monotonic()
    with pytest.raises(BundleLimitError, match=r"zstd bomb|over the limit"):
        open_bundle(
            bombs["declared"],
            trusted_exporters=trusted(public_key_of(exporter_key)),
            dest=tmp_path,
        )
    assert time.monotonic() - start < 1
    with pytest.raises(BundleLimitError):
        inspect_bundle(bombs["declared"])


def test_bomb_without_declared_size(
    tmp_path: Path, exporter_key: Key, bombs: dict[str, Path]
) -> None:
    # Format v1 requires the declared size...
    with pytest.raises(BundleFormatError, match="content size"):
        open_bundle(
            bombs["undeclared"],
            trusted_exporters=trusted(public_key_of(exporter_key)),
            dest=tmp_path,
        )
    # ...and the streaming caps stop it anyway, early and in little memory.
    before = _maxrss_mb()
    with bombs["undeclared"].open("rb") as fh:
        inflater = reader._Inflater(
            fh,
            file_size=bombs["undeclared"].stat().st_size,
            limits=Limits(),
            require_content_size=False,
        )
        with pytest.raises(BundleLimitError, match="zstd bomb"):
            while inflater.read(1 << 20):
                pass
    assert inflater.produced < 64 * 1024**2
    assert _maxrss_mb() - before < 100
    # With the ratio cap out of the way, the size cap stops it.
    with bombs["undeclared"].open("rb") as fh:
        inflater = reader._Inflater(
            fh,
            file_size=bombs["undeclared"].stat().st_size,
            limits=Limits(max_ratio=10**9, max_total_size=32 * 1024**2),
            require_content_size=False,
        )
        with pytest.raises(BundleLimitError, match="size limit"):
            while inflater.read(1 << 20):
                pass
    assert inflater.produced <= 33 * 1024**2


def test_bomb_behind_a_huge_manifest_header(tmp_path: Path, bombs: dict[str, Path]) -> None:
    with bombs["manifest"].open("rb") as fh:
        inflater = reader._Inflater(
            fh,
            file_size=bombs["manifest"].stat().st_size,
            limits=Limits(),
            require_content_size=False,
        )
        tar = reader._TarStream(inflater)
        with pytest.raises(BundleLimitError, match=r"manifest\.json declares"):
            reader._read_fixed_member(tar, layout.MANIFEST, Limits(), "first")
        assert inflater.produced < 1024**2


def test_window_over_limit(tmp_path: Path, exporter_key: Key) -> None:
    params = zstandard.ZstdCompressionParameters(
        window_log=27, write_checksum=True, write_content_size=False
    )
    data = zstandard.ZstdCompressor(compression_params=params).compressobj()
    frame = data.compress(sample_tar(exporter_key)) + data.flush()
    bundle = tmp_path / "b.dhi.tar.zst"
    bundle.write_bytes(frame)
    (tmp_path / "d").mkdir()
    with pytest.raises(BundleLimitError, match="window"):
        open_bundle(
            bundle, trusted_exporters=trusted(public_key_of(exporter_key)), dest=tmp_path / "d"
        )


# -- destination ------------------------------------------------------------------------


def test_destination_must_be_an_empty_owned_directory(tmp_path: Path, exporter_key: Key) -> None:
    bundle = write_sample(tmp_path / "b.dhi.tar.zst", exporter_key).path
    trust = trusted(public_key_of(exporter_key))
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_bytes(b"")
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    for dest, match in [
        (tmp_path / "missing", "does not exist"),
        (bundle, "not a directory"),
        (full, "empty"),
        (link, "symlink"),
    ]:
        with pytest.raises(UsageError, match=match):
            open_bundle(bundle, trusted_exporters=trust, dest=dest)
    assert list(real.iterdir()) == []


def test_limits_must_be_positive() -> None:
    with pytest.raises(UsageError):
        Limits(max_members=0)


def test_inspect_reads_only_the_manifest(tmp_path: Path, exporter_key: Key) -> None:
    # A bundle whose later members are corrupt can still be inspected (unverified).
    bundle = _changed_member(exporter_key, exporter_key, tmp_path / "b.dhi.tar.zst")
    manifest = inspect_bundle(bundle)
    assert [m.path for m in manifest.members] == [p for p, _ in MEMBERS]
    assert manifest.members[0].sha256 == hashlib.sha256(MEMBERS[0][1]).hexdigest()
    with pytest.raises(BundleFormatError, match="first member"):
        inspect_bundle(_manifest_not_first(exporter_key, exporter_key, tmp_path / "c.tar.zst"))


def test_python_tarfile_agrees_on_our_archives(tmp_path: Path, exporter_key: Key) -> None:
    raw = sample_tar(exporter_key)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        names = tf.getnames()
    assert names[:2] == [layout.MANIFEST, layout.MANIFEST_SIGNATURE]
    assert layout.checkpoint_path(LOG_ID) in names


def test_unreadable_bundle_paths(tmp_path: Path, exporter_key: Key) -> None:
    trust = trusted(public_key_of(exporter_key))
    dest = tmp_path / "dest"
    dest.mkdir()
    fifo = tmp_path / "fifo.dhi.tar.zst"
    os.mkfifo(fifo)  # refused at once, never blocks waiting for a writer
    for path, match in [
        (tmp_path / "missing.dhi.tar.zst", "cannot open"),
        (tmp_path, "cannot open|not a regular file"),
        (fifo, "not a regular file"),
    ]:
        with pytest.raises(InputError, match=match):
            open_bundle(path, trusted_exporters=trust, dest=dest)
        with pytest.raises(InputError, match=match):
            inspect_bundle(path)
