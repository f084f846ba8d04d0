"""The bundle manifest: what the exporter signed about the archive.

``manifest.json`` names every other member with its size and SHA-256, so one signature
covers the whole archive (Zarf's signed ``zarf.yaml`` + checksums, in one file). It is
RFC 8785 canonical JSON: :meth:`BundleManifest.to_json` is deterministic, and
:meth:`BundleManifest.from_json` accepts only bytes that re-encode identically, so a
manifest has exactly one byte representation.

Field validation happens in the dataclasses themselves, so a manifest built by the
writer and one parsed from an archive obey the same rules; every violation is a
:class:`~dhi_offline.errors.BundleFormatError`.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from dhi_offline.bundle import layout
from dhi_offline.encoding import loads_json
from dhi_offline.errors import BundleFormatError, MalformedEvidenceError

MAX_JSON_INT = 2**53 - 1
"""Largest integer RFC 8785 (I-JSON) represents exactly; every count and size is below."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)
_FLAG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_MAX_TEXT = 1024
_MAX_ITEMS = 1_000_000


def _is_version(value: object) -> bool:
    # type() rather than isinstance(): neither True nor 1.0 is the integer 1 here.
    return type(value) is int and value in layout.FORMAT_VERSIONS


_READS = " and ".join(str(v) for v in sorted(layout.FORMAT_VERSIONS))


def _fail(what: str, problem: str) -> BundleFormatError:
    return BundleFormatError(f"manifest {what}: {problem}")


def _text(value: object, what: str, *, max_len: int = _MAX_TEXT) -> str:
    # Printable, no whitespace: these strings end up in one-line messages and reports.
    if not isinstance(value, str):
        raise _fail(what, "expected a string")
    if not value or len(value) > max_len:
        raise _fail(what, f"must be 1 to {max_len} characters")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise _fail(what, f"{value!r} contains whitespace or unprintable characters")
    return value


def _int(value: object, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(what, "expected an integer")
    if not minimum <= value <= MAX_JSON_INT:
        raise _fail(what, f"{value} is outside [{minimum}, 2^53-1]")
    return value


def _time(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise _fail(what, "expected a datetime")
    if value.tzinfo is None:
        raise _fail(what, "datetime has no time zone")
    # One representation: UTC, whole seconds (the JSON form has no fraction).
    return value.astimezone(UTC).replace(microsecond=0)


def _format_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object, what: str) -> datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise _fail(what, "expected an RFC 3339 UTC time YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise _fail(what, f"{value!r} is not a valid time") from e


def _tuple(value: object, what: str, *, max_items: int = _MAX_ITEMS) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _fail(what, "expected an array")
    if len(value) > max_items:
        raise _fail(what, f"more than {max_items} items")
    return tuple(value)


def _object(value: object, what: str, keys: frozenset[str]) -> dict[str, Any]:
    # Exactly the known keys: an unknown key means a newer format this reader would
    # silently misread, so it must come with a new format_version instead.
    if not isinstance(value, dict):
        raise _fail(what, "expected a JSON object")
    missing = sorted(keys - value.keys())
    extra = sorted(value.keys() - keys)
    if missing:
        raise _fail(what, f"missing field(s) {', '.join(missing)}")
    if extra:
        raise _fail(what, f"unknown field(s) {', '.join(extra)}")
    return value


@dataclass(frozen=True)
class Member:
    """One archive member other than the manifest and its signature."""

    path: str
    """Member name, valid per :func:`layout.is_valid_member_path`."""
    size: int
    """Exact size in bytes."""
    sha256: str
    """Lowercase hex SHA-256 of the content."""

    def __post_init__(self) -> None:
        what = f"member {self.path!r}"
        if not isinstance(self.path, str):
            raise _fail("member path", "expected a string")
        problem = layout.member_path_problem(self.path)
        if problem is not None:
            raise _fail(what, problem)
        if self.path in (layout.MANIFEST, layout.MANIFEST_SIGNATURE):
            raise _fail(what, "the manifest and its signature cannot list themselves")
        _int(self.size, f"{what} size")
        if not isinstance(self.sha256, str) or not _HEX64.fullmatch(self.sha256):
            raise _fail(f"{what} sha256", "expected 64 lowercase hex characters")
        blob = layout.blob_digest_of(self.path)
        if blob is not None and blob != self.sha256:
            # Content addressing: a blob's name IS its digest.
            raise _fail(what, f"blob name differs from its sha256 {self.sha256}")

    def to_obj(self) -> dict[str, Any]:
        """The JSON object form."""
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_obj(cls, obj: object, index: int) -> Member:
        """Parse one ``members[]`` item."""
        d = _object(obj, f"members[{index}]", frozenset({"path", "sha256", "size"}))
        if not isinstance(d["path"], str):
            raise _fail(f"members[{index}].path", "expected a string")
        return cls(path=d["path"], size=d["size"], sha256=d["sha256"])


@dataclass(frozen=True)
class PlatformImage:
    """One platform manifest of a multi-platform image (attestations attach here)."""

    platform: str
    """``os/arch[/variant]``, for example ``linux/arm64/v8``."""
    digest: str
    """``sha256:<hex>`` of the platform manifest."""

    def __post_init__(self) -> None:
        _text(self.platform, "platform", max_len=128)
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise _fail(f"platform {self.platform} digest", "expected sha256:<hex>")

    def to_obj(self) -> dict[str, Any]:
        """The JSON object form."""
        return {"digest": self.digest, "platform": self.platform}

    @classmethod
    def from_obj(cls, obj: object, what: str) -> PlatformImage:
        """Parse one ``platforms[]`` item."""
        d = _object(obj, what, frozenset({"digest", "platform"}))
        return cls(platform=d["platform"], digest=d["digest"])


@dataclass(frozen=True)
class ImageEntry:
    """One image the bundle carries evidence for."""

    reference: str
    """The reference the operator asked for, e.g. ``dhi.io/python:3.13``."""
    digest: str
    """``sha256:<hex>`` of the image index or manifest the reference resolved to."""
    media_type: str
    """Media type of that index or manifest."""
    platforms: tuple[PlatformImage, ...] = ()
    """Platform manifests of an index (empty for a single-platform manifest)."""

    def __post_init__(self) -> None:
        _text(self.reference, "image reference")
        what = f"image {self.reference}"
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise _fail(f"{what} digest", "expected sha256:<hex>")
        if not isinstance(self.media_type, str) or not _MEDIA_TYPE.fullmatch(self.media_type):
            raise _fail(f"{what} media_type", "expected a media type type/subtype")
        plats = _tuple(self.platforms, f"{what} platforms", max_items=1024)
        if not all(isinstance(p, PlatformImage) for p in plats):
            raise _fail(f"{what} platforms", "expected PlatformImage items")
        object.__setattr__(self, "platforms", plats)

    def to_obj(self) -> dict[str, Any]:
        """The JSON object form."""
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "platforms": [p.to_obj() for p in self.platforms],
            "reference": self.reference,
        }

    @classmethod
    def from_obj(cls, obj: object, index: int) -> ImageEntry:
        """Parse one ``images[]`` item."""
        what = f"images[{index}]"
        d = _object(obj, what, frozenset({"digest", "media_type", "platforms", "reference"}))
        plats = _tuple(d["platforms"], f"{what}.platforms", max_items=1024)
        return cls(
            reference=d["reference"],
            digest=d["digest"],
            media_type=d["media_type"],
            platforms=tuple(
                PlatformImage.from_obj(p, f"{what}.platforms[{i}]") for i, p in enumerate(plats)
            ),
        )


_MANIFEST_KEYS = frozenset(
    {
        "created",
        "expires",
        "exporter_key_id",
        "flags",
        "format_version",
        "images",
        "members",
        "sequence",
        "tool_version",
    }
)


def _is_canonical(obj: dict[str, Any], data: bytes) -> bool:
    """Whether ``data`` is the RFC 8785 encoding of ``obj``, a validated manifest's object.

    Such an object holds only objects with fixed ASCII keys, printable strings and
    integers within +-(2^53-1); for those, the C encoder's sorted, compact output (same
    escapes, UTF-8 kept) is byte for byte RFC 8785, and ~10 times faster than
    ``rfc8785`` on a manifest of thousands of members. Anything else is left to
    ``rfc8785``.
    """
    fast = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        if fast.encode("utf-8") == data:
            return True
    except UnicodeEncodeError:
        pass
    return bytes(rfc8785.dumps(obj)) == data


@dataclass(frozen=True)
class BundleManifest:
    """The signed description of a bundle (``manifest.json``)."""

    format_version: int
    """:data:`layout.FORMAT_VERSION`, or :data:`layout.FORMAT_VERSION_TUF` exactly when a
    member is under ``tuf/``; any other value is refused."""
    tool_version: str
    """dhi-offline version that wrote the bundle (informational)."""
    created: datetime
    """When the bundle was written (UTC, whole seconds)."""
    expires: datetime
    """After this time the importer refuses the bundle as stale."""
    sequence: int
    """Per-exporter-key counter (>= 1) that only grows; lets importers refuse rollback."""
    exporter_key_id: str
    """Hex SHA-256 of the signing exporter key's DER SubjectPublicKeyInfo."""
    images: tuple[ImageEntry, ...]
    """The images the bundle carries evidence for."""
    members: tuple[Member, ...]
    """Every member except the manifest and its signature, sorted by path, unique."""
    flags: tuple[str, ...] = ()
    """Unsafe switches the export ran with (e.g. ``allow-unverified``), sorted, unique."""

    def __post_init__(self) -> None:
        if not _is_version(self.format_version):
            raise _fail(
                "format_version",
                f"unsupported format version {self.format_version!r} "
                f"(this dhi-offline reads versions {_READS})",
            )
        _text(self.tool_version, "tool_version", max_len=128)
        created = _time(self.created, "created")
        expires = _time(self.expires, "expires")
        if expires <= created:
            raise _fail("expires", "must be later than created")
        object.__setattr__(self, "created", created)
        object.__setattr__(self, "expires", expires)
        _int(self.sequence, "sequence", minimum=1)
        if not isinstance(self.exporter_key_id, str) or not _HEX64.fullmatch(self.exporter_key_id):
            raise _fail("exporter_key_id", "expected 64 lowercase hex characters")
        images = _tuple(self.images, "images", max_items=100_000)
        if not all(isinstance(i, ImageEntry) for i in images):
            raise _fail("images", "expected ImageEntry items")
        members = _tuple(self.members, "members")
        if not all(isinstance(m, Member) for m in members):
            raise _fail("members", "expected Member items")
        for prev, cur in itertools.pairwise(members):
            # Sorted and unique gives one canonical order and makes duplicates obvious.
            if cur.path == prev.path:
                raise _fail("members", f"{cur.path!r} is listed twice")
            if cur.path < prev.path:
                raise _fail("members", f"not sorted by path ({cur.path!r} after {prev.path!r})")
        paths = {m.path for m in members}
        # One version per content: tuf/ members exist only in version 2, and version 2
        # only with them, so a version-1 reader never meets a member it does not know.
        expected = layout.format_version_for(paths)
        if self.format_version != expected:
            raise _fail(
                "format_version",
                f"version {self.format_version} with"
                + ("" if expected == layout.FORMAT_VERSION_TUF else "out")
                + f" {layout.TUF_PREFIX} members (expected {expected})",
            )
        for m in members:
            # "a" and "a/b" cannot both be extracted: one would need to be a directory.
            parts = m.path.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in paths:
                    raise _fail("members", f"{'/'.join(parts[:i])!r} is a file and a directory")
        flags = _tuple(self.flags, "flags", max_items=64)
        for f in flags:
            if not isinstance(f, str) or not _FLAG.fullmatch(f):
                raise _fail("flags", f"{f!r} is not a lowercase flag name")
        if list(flags) != sorted(set(flags)):
            raise _fail("flags", "must be sorted and unique")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "flags", flags)
        # A path index: member() is called per evidence item, a scan would be quadratic.
        object.__setattr__(self, "_by_path", {m.path: m for m in members})

    @property
    def total_size(self) -> int:
        """Sum of the listed members' sizes."""
        return sum(m.size for m in self.members)

    def member(self, path: str) -> Member | None:
        """The listed member named ``path``, if any."""
        by_path: dict[str, Member] = self.__dict__["_by_path"]
        return by_path.get(path)

    def to_obj(self) -> dict[str, Any]:
        """The JSON object form."""
        return {
            "created": _format_time(self.created),
            "expires": _format_time(self.expires),
            "exporter_key_id": self.exporter_key_id,
            "flags": list(self.flags),
            "format_version": self.format_version,
            "images": [i.to_obj() for i in self.images],
            "members": [m.to_obj() for m in self.members],
            "sequence": self.sequence,
            "tool_version": self.tool_version,
        }

    def to_json(self) -> bytes:
        """RFC 8785 canonical JSON: the exact bytes stored as ``manifest.json``."""
        return bytes(rfc8785.dumps(self.to_obj()))

    @classmethod
    def from_json(cls, data: bytes) -> BundleManifest:
        """Parse ``manifest.json`` strictly.

        Raises:
            BundleFormatError: not strict JSON, unknown ``format_version``, a missing or
                unknown field, a bad value, a duplicated or unsorted member path, or
                bytes that are not the canonical encoding of what they hold.
        """
        try:
            obj = loads_json(data, what="manifest.json")
        except MalformedEvidenceError as e:
            raise BundleFormatError(e.message) from e
        if isinstance(obj, dict) and "format_version" in obj:
            # Report an unknown version before complaining about fields it may define.
            version = obj["format_version"]
            if not _is_version(version):
                raise _fail(
                    "format_version",
                    f"unsupported format version {version!r} "
                    f"(this dhi-offline reads versions {_READS})",
                )
        d = _object(obj, "object", _MANIFEST_KEYS)
        members = _tuple(d["members"], "members")
        images = _tuple(d["images"], "images", max_items=100_000)
        flags = _tuple(d["flags"], "flags", max_items=64)
        manifest = cls(
            format_version=d["format_version"],
            tool_version=d["tool_version"],
            created=_parse_time(d["created"], "created"),
            expires=_parse_time(d["expires"], "expires"),
            sequence=d["sequence"],
            exporter_key_id=d["exporter_key_id"],
            images=tuple(ImageEntry.from_obj(i, n) for n, i in enumerate(images)),
            members=tuple(Member.from_obj(m, n) for n, m in enumerate(members)),
            flags=flags,
        )
        if not _is_canonical(manifest.to_obj(), data):
            raise _fail("encoding", "not RFC 8785 canonical JSON")
        return manifest
