"""Helpers to write real bundles and to craft hostile ones byte by byte."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import zstandard
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle import layout, tarformat
from dhi_offline.bundle.manifest import BundleManifest, ImageEntry, Member, PlatformImage
from dhi_offline.bundle.signing import public_key_of, sign_manifest
from dhi_offline.bundle.writer import MemberSource, WrittenBundle, write_bundle
from dhi_offline.trust.keys import PublicKey

CREATED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
EXPIRES = CREATED + timedelta(days=30)
EPOCH = 1_767_225_600
IMAGE = ImageEntry(
    reference="dhi.io/python:3.13",
    digest="sha256:" + "1" * 64,
    media_type="application/vnd.oci.image.index.v1+json",
    platforms=(
        PlatformImage("linux/amd64", "sha256:" + "2" * 64),
        PlatformImage("linux/arm64", "sha256:" + "3" * 64),
    ),
)
BLOB = b'{"payloadType":"application/vnd.in-toto+json"}'
LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"


def sample_members() -> list[tuple[str, MemberSource]]:
    """A small but representative member set (every kind of path)."""
    return [
        (layout.EVIDENCE, b'{"images":[]}'),
        (layout.blob_path(hashlib.sha256(BLOB).hexdigest()), BLOB),
        (layout.KEYRING, b'{"keys":[]}'),
        (layout.tlog_entry_path(LOG_ID, 42), b'{"logIndex":42}'),
        (layout.checkpoint_path(LOG_ID), b"rekor.sigstore.dev - 123\n7\nabc=\n"),
    ]


def trusted(*keys: PublicKey) -> Callable[[str], PublicKey | None]:
    """A trusted-exporter lookup over ``keys``."""
    by_id = {k.key_id: k for k in keys}
    return by_id.get


def write_sample(
    out: Path,
    key: ec.EllipticCurvePrivateKey,
    *,
    members: Iterable[tuple[str, MemberSource]] | None = None,
    epoch: int | None = EPOCH,
    sequence: int = 1,
) -> WrittenBundle:
    """``write_bundle`` with fixed sample manifest fields."""
    return write_bundle(
        out,
        tool_version="0.1.0",
        created=CREATED,
        expires=EXPIRES,
        sequence=sequence,
        images=[IMAGE],
        members=sample_members() if members is None else members,
        private_key=key,
        source_date_epoch=epoch,
    )


# -- crafting ---------------------------------------------------------------------------


@dataclass
class Raw:
    """One tar member as raw bytes: a 512-byte header (possibly hostile) and data."""

    header: bytes
    data: bytes

    @classmethod
    def regular(cls, path: str, data: bytes, *, size: int | None = None) -> Raw:
        """A canonical regular-file member; ``size`` may lie about ``data``."""
        return cls(tarformat.encode_header(path, len(data) if size is None else size, EPOCH), data)

    @classmethod
    def from_tarinfo(
        cls, info: tarfile.TarInfo, data: bytes = b"", fmt: Literal[0, 1, 2] = tarfile.USTAR_FORMAT
    ) -> Raw:
        """A member encoded by Python's tarfile (links, devices, pax headers...)."""
        return cls(info.tobuf(fmt, "utf-8", "surrogateescape"), data)

    def encode(self) -> bytes:
        pad = tarformat.round_up(len(self.data), 512) - len(self.data)
        return self.header + self.data + b"\0" * pad


def tar_bytes(members: Iterable[Raw], *, end: bytes | None = None) -> bytes:
    """A tar stream: the members, then the end marker padded to a record."""
    body = b"".join(m.encode() for m in members)
    if end is None:
        end = b"\0" * (tarformat.round_up(len(body) + 1024, layout.TAR_RECORD) - len(body))
    return body + end


def compress(data: bytes, *, content_size: bool = True, checksum: bool = True) -> bytes:
    """One zstd frame of ``data`` with the writer's settings."""
    c = zstandard.ZstdCompressor(
        level=3, write_checksum=checksum, write_content_size=content_size, threads=0
    )
    return c.compress(data)


def manifest_for(
    key: ec.EllipticCurvePrivateKey,
    members: Iterable[tuple[str, bytes]],
    **overrides: object,
) -> BundleManifest:
    """A valid manifest listing ``members`` (sorted), signed-by ``key``'s id."""
    fields: dict[str, object] = {
        "format_version": layout.FORMAT_VERSION,
        "tool_version": "0.1.0",
        "created": CREATED,
        "expires": EXPIRES,
        "sequence": 1,
        "exporter_key_id": public_key_of(key).key_id,
        "images": (IMAGE,),
        "members": tuple(
            sorted(
                (Member(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in members),
                key=lambda m: m.path,
            )
        ),
    }
    fields.update(overrides)
    return BundleManifest(**fields)  # type: ignore[arg-type]


def signed_head(
    key: ec.EllipticCurvePrivateKey, manifest_bytes: bytes, *, sig_key: object = None
) -> list[Raw]:
    """The first two members: the manifest and its signature (by ``sig_key`` or ``key``)."""
    signer = sig_key if isinstance(sig_key, ec.EllipticCurvePrivateKey) else key
    return [
        Raw.regular(layout.MANIFEST, manifest_bytes),
        Raw.regular(layout.MANIFEST_SIGNATURE, sign_manifest(manifest_bytes, signer)),
    ]


def crafted_bundle(
    path: Path,
    key: ec.EllipticCurvePrivateKey,
    members: list[tuple[str, bytes]],
    *,
    extra: Iterable[Raw] = (),
    listed: list[tuple[str, bytes]] | None = None,
) -> Path:
    """A signed bundle whose manifest lists ``listed`` (default ``members``), whose tar
    holds ``members`` in the given order and then ``extra``."""
    manifest = manifest_for(key, members if listed is None else listed)
    raws = signed_head(key, manifest.to_json())
    raws += [Raw.regular(p, d) for p, d in members]
    raws += list(extra)
    path.write_bytes(compress(tar_bytes(raws)))
    return path


def sample_tar(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The inflated tar of a valid crafted bundle of the sample members (bytes only)."""
    members = sorted((p, s) for p, s in sample_members() if isinstance(s, bytes))
    manifest = manifest_for(key, members)
    return tar_bytes(signed_head(key, manifest.to_json()) + [Raw.regular(p, d) for p, d in members])


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, by relative POSIX path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def tar_listing(bundle: Path) -> list[str]:
    """Member names in archive order, read with Python's own tarfile."""
    raw = zstandard.ZstdDecompressor().decompress(bundle.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        return tf.getnames()
