"""The manifest: canonical bytes, strict parsing, one representation."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dhi_offline.bundle import layout
from dhi_offline.bundle.manifest import BundleManifest, ImageEntry, Member, PlatformImage
from dhi_offline.errors import BundleFormatError
from tests.bundle.helpers import CREATED, EXPIRES, IMAGE

KEY_ID = "9" * 64
DATA = b"hello"
BLOB = layout.blob_path(hashlib.sha256(DATA).hexdigest())


def _manifest(**overrides: Any) -> BundleManifest:
    fields: dict[str, Any] = {
        "format_version": 1,
        "tool_version": "0.1.0",
        "created": CREATED,
        "expires": EXPIRES,
        "sequence": 3,
        "exporter_key_id": KEY_ID,
        "images": (IMAGE,),
        "members": (
            Member(BLOB, 5, hashlib.sha256(DATA).hexdigest()),
            Member(layout.EVIDENCE, 2, "0" * 64),
        ),
        "flags": ("allow-unverified",),
    }
    fields.update(overrides)
    return BundleManifest(**fields)


def _obj() -> dict[str, Any]:
    return json.loads(_manifest().to_json())  # type: ignore[no-any-return]


def _bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def test_round_trip_is_byte_identical() -> None:
    m = _manifest()
    data = m.to_json()
    assert BundleManifest.from_json(data) == m
    assert BundleManifest.from_json(data).to_json() == data
    assert data.startswith(b'{"created":"2026-03-01T12:00:00Z","expires":')
    assert m.total_size == 7 and m.member(layout.EVIDENCE) is not None


def test_times_are_normalized_to_utc_seconds() -> None:
    plus2 = timezone(timedelta(hours=2))
    m = _manifest(created=datetime(2026, 3, 1, 14, 0, 0, 999_999, tzinfo=plus2))
    assert m.created == CREATED and m.created.tzinfo == UTC


def test_unknown_format_version_is_named() -> None:
    obj = _obj()
    obj["format_version"] = 3
    obj["new_field_of_v3"] = True
    with pytest.raises(BundleFormatError, match="unsupported format version 3"):
        BundleManifest.from_json(_bytes(obj))
    with pytest.raises(BundleFormatError, match="unsupported format version"):
        _manifest(format_version=3)


def test_version_2_exactly_when_tuf_members_are_listed() -> None:
    tuf = Member(layout.TUF_TIMESTAMP, 2, "0" * 64)
    with pytest.raises(BundleFormatError, match=r"version 1 with tuf/ members \(expected 2\)"):
        _manifest(members=(tuf,))
    with pytest.raises(BundleFormatError, match=r"version 2 without tuf/ members"):
        _manifest(format_version=2)
    assert _manifest(format_version=2, members=(tuf,)).format_version == 2


def _set(path: str, value: Any) -> dict[str, Any]:
    obj = _obj()
    target: Any = obj
    keys = path.split(".")
    for k in keys[:-1]:
        target = target[int(k)] if k.isdigit() else target[k]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return obj


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("format_version", True, "format version"),
        ("format_version", 1.0, "format version"),
        ("sequence", 0, "sequence"),
        ("sequence", True, "sequence"),
        ("sequence", 2**53, "sequence"),
        ("sequence", "4", "sequence"),
        ("created", "2026-03-01T12:00:00+00:00", "created"),
        ("created", "2026-02-30T12:00:00Z", "created"),
        ("expires", "2026-03-01T12:00:00Z", "later than created"),
        ("exporter_key_id", "AB" * 32, "exporter_key_id"),
        ("tool_version", "", "tool_version"),
        ("tool_version", "1 2", "tool_version"),
        ("members.0.size", -1, "size"),
        ("members.0.size", 2**60, "size"),
        ("members.0.sha256", "z" * 64, "sha256"),
        ("members.0.sha256", "0" * 64, "blob name differs"),
        ("members.0.path", "../escape", "traversal"),
        ("members.0.path", layout.MANIFEST, "cannot list themselves"),
        ("members.0.extra", 1, "unknown field"),
        ("members.0.size", _DELETE, "missing field"),
        ("images.0.digest", "sha256:short", "digest"),
        ("images.0.media_type", "not a media type", "media_type"),
        ("images.0.platforms.0.platform", "", "platform"),
        ("images", {}, "expected an array"),
        ("flags", ["b", "a"], "sorted"),
        ("flags", ["a", "a"], "sorted"),
        ("flags", ["Allow"], "flag"),
        ("surprise", 1, "unknown field"),
        ("members", _DELETE, "missing field"),
    ],
)
def test_strict_parsing(path: str, value: Any, match: str) -> None:
    with pytest.raises(BundleFormatError, match=match):
        BundleManifest.from_json(_bytes(_set(path, value)))


def test_member_listed_twice() -> None:
    obj = _obj()
    obj["members"].append(dict(obj["members"][1]))
    with pytest.raises(BundleFormatError, match="listed twice"):
        BundleManifest.from_json(_bytes(obj))


def test_members_must_be_sorted() -> None:
    obj = _obj()
    obj["members"].reverse()
    with pytest.raises(BundleFormatError, match="not sorted"):
        BundleManifest.from_json(_bytes(obj))


def test_file_and_directory_conflict() -> None:
    with pytest.raises(BundleFormatError, match="file and a directory"):
        _manifest(
            members=(
                Member("evidence/a", 1, "0" * 64),
                Member("evidence/a/b", 1, "0" * 64),
            )
        )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"\xff",
        b'{"a":1,"a":2}',
        b'{"x":NaN}',
        b"[" * 100 + b"]" * 100,
    ],
)
def test_not_a_manifest(data: bytes) -> None:
    with pytest.raises(BundleFormatError):
        BundleManifest.from_json(data)


def test_non_canonical_encoding_is_refused() -> None:
    data = _manifest().to_json()
    pretty = json.dumps(json.loads(data), indent=1, sort_keys=True).encode()
    with pytest.raises(BundleFormatError, match="canonical"):
        BundleManifest.from_json(pretty)
    unsorted = json.dumps(dict(reversed(list(json.loads(data).items())))).encode()
    with pytest.raises(BundleFormatError, match="canonical"):
        BundleManifest.from_json(unsorted.replace(b", ", b",").replace(b": ", b":"))


def test_naive_datetime_refused() -> None:
    with pytest.raises(BundleFormatError, match="time zone"):
        _manifest(created=datetime(2026, 1, 1))


def test_image_entry_validation() -> None:
    with pytest.raises(BundleFormatError):
        ImageEntry("r", "sha256:" + "0" * 64, "application/json", ("x",))  # type: ignore[arg-type]
    with pytest.raises(BundleFormatError):
        PlatformImage("linux/amd64", "md5:00")
