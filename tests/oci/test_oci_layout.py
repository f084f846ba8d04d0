"""OCI layouts: write/read round trip, referrers scan, and refusal of unsafe layouts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dhi_offline.errors import (
    DigestMismatchError,
    InputError,
    MalformedEvidenceError,
    RegistryError,
    RegistryNotFoundError,
    SizeLimitError,
)
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.layout import OciLayout, OciLayoutWriter, canonical_json
from dhi_offline.oci.mediatypes import Descriptor, Platform
from dhi_offline.oci.reference import parse_reference
from dhi_offline.oci.source import LayoutSource, open_source
from tests.support.registry import ImageFixture, build_image, skopeo_binary, walk


def test_round_trip(layout_image: ImageFixture) -> None:
    layout = OciLayout(layout_image.layout)
    assert layout.tags() == {"v1": layout.entries[0]}
    top = layout.resolve("v1")
    assert top.digest == layout_image.index.digest
    assert top.media_type == mt.OCI_INDEX
    assert top.data == layout_image.index_bytes
    assert layout.resolve(top.digest) == top
    for p in layout_image.platforms:
        fetched = layout.manifest(p.manifest.digest)
        assert fetched.data == p.manifest_bytes
        assert fetched.media_type == mt.OCI_MANIFEST
        for digest, data in p.blobs.items():
            assert layout.blob(digest, len(data)) == data
    # Everything written is reachable, byte for byte, through the Source protocol.
    everything = walk(LayoutSource(layout_image.layout), "v1")
    expected = {d: data for d, (_, data) in layout_image.manifests.items()}
    expected.update(layout_image.blobs)
    assert everything == expected


def test_index_json_is_deterministic(tmp_path: Path) -> None:
    a = build_image(tmp_path / "a", "v1")
    b = build_image(tmp_path / "b", "v1")
    assert (a.layout / "index.json").read_bytes() == (b.layout / "index.json").read_bytes()
    index = json.loads((a.layout / "index.json").read_bytes())
    assert canonical_json(index) == (a.layout / "index.json").read_bytes()
    assert json.loads((a.layout / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    # The tagged index plus 2 attestations, 2 signatures and 1 SBOM referrer.
    assert len(index["manifests"]) == 6
    tagged = [m for m in index["manifests"] if m.get("annotations", {}).get(mt.ANNOTATION_REF_NAME)]
    assert [m["digest"] for m in tagged] == [a.index.digest]


def test_referrers_scan(layout_image: ImageFixture) -> None:
    source = LayoutSource(layout_image.layout)
    assert layout_image.referrers  # the fixture has referrers for 5 subjects
    for subject, expected in layout_image.referrers.items():
        result = source.referrers(subject)
        assert result.via == "layout"
        assert result.raw is None
        assert list(result.descriptors) == expected
    platform = layout_image.platforms[0].manifest.digest
    (attestation,) = source.referrers(platform, mt.IN_TOTO).descriptors
    assert attestation.artifact_type == mt.IN_TOTO
    assert attestation.annotations["in-toto.io/predicate-type"].startswith("https://scout")
    assert source.referrers(platform, mt.COSIGN_ARTIFACT_SIG).descriptors == ()
    # The signature is a referrer of the attestation manifest, not of the image.
    (signature,) = source.referrers(attestation.digest).descriptors
    assert signature.artifact_type == mt.COSIGN_ARTIFACT_SIG
    assert source.referrers("sha256:" + "0" * 64).descriptors == ()


def test_referrers_found_inside_nested_indexes(tmp_path: Path) -> None:
    """A referrer reachable only through a (non-index.json) index is still found."""
    writer = OciLayoutWriter(tmp_path)
    subject = writer.add_blob(b"subject", mt.OCI_MANIFEST)
    empty = writer.add_blob(mt.EMPTY_JSON, mt.OCI_EMPTY)
    referrer = writer.add_manifest(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {**empty.to_json(), "mediaType": "application/x-custom"},
            "layers": [],
            "subject": subject.to_json(),
        },
        mt.OCI_MANIFEST,
        in_index=False,
    )
    writer.add_manifest(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [referrer.to_json()]},
        mt.OCI_INDEX,
        tag="holder",
    )
    writer.close()
    (found,) = OciLayout(tmp_path).referrers(subject.digest).descriptors
    assert found.digest == referrer.digest
    # No artifactType on the manifest: the config media type stands in (referrers API rule).
    assert found.artifact_type == "application/x-custom"


def test_writer_moves_tags_and_keeps_exact_bytes(tmp_path: Path) -> None:
    writer = OciLayoutWriter(tmp_path)
    empty = writer.add_blob(mt.EMPTY_JSON, mt.OCI_EMPTY)
    raw = (
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
        b' "config": ' + json.dumps(empty.to_json()).encode() + b', "layers": []}'
    )
    first = writer.add_manifest(raw, mt.OCI_MANIFEST, tag="t")
    second = writer.add_manifest(
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": empty.to_json(), "layers": []},
        mt.OCI_MANIFEST,
        tag="t",
        platform=Platform.parse("linux/arm64/v8"),
    )
    writer.close()
    layout = OciLayout(tmp_path)
    assert layout.blob(first.digest) == raw  # exact bytes, spaces and all
    assert layout.tag("t") is not None
    assert layout.resolve("t").digest == second.digest != first.digest
    assert layout.entries[0].platform == Platform("linux", "arm64", "v8")
    # Re-opening a layout keeps its entries.
    again = OciLayoutWriter(tmp_path)
    again.add_manifest(raw, mt.OCI_MANIFEST, tag="u")
    again.close()
    assert set(OciLayout(tmp_path).tags()) == {"t", "u"}


def test_open_source_defaults(layout_image: ImageFixture, tmp_path: Path) -> None:
    source, ref = open_source(parse_reference(f"oci-layout:{layout_image.layout}"))
    assert ref == "v1"
    assert source.resolve(ref).digest == layout_image.index.digest
    source, ref = open_source(
        parse_reference(f"oci-layout:{layout_image.layout}@{layout_image.index.digest}")
    )
    assert ref == layout_image.index.digest
    # Two tags and no tag given: the caller must choose.
    writer = OciLayoutWriter(layout_image.layout)
    writer.add_manifest(layout_image.index_bytes, mt.OCI_INDEX, tag="v2")
    writer.close()
    with pytest.raises(RegistryError, match="name one with"):
        open_source(parse_reference(f"oci-layout:{layout_image.layout}"))
    with pytest.raises(RegistryNotFoundError, match=r"tag 'nope' not found \(tags: v1, v2\)"):
        LayoutSource(layout_image.layout).resolve("nope")
    assert LayoutSource(layout_image.layout).tag("nope") is None


# ------------------------------------------------------------------ refusals


def _blob_file(image: ImageFixture, digest: str) -> Path:
    return image.layout / "blobs" / "sha256" / digest.split(":")[1]


def test_tampered_blob_is_refused(layout_image: ImageFixture) -> None:
    digest, data = next(iter(layout_image.platforms[0].blobs.items()))
    _blob_file(layout_image, digest).write_bytes(data[:-1] + b"X")
    with pytest.raises(DigestMismatchError) as info:
        OciLayout(layout_image.layout).blob(digest, len(data))
    assert digest in info.value.one_line()
    assert info.value.exit_code == 1


def test_tampered_manifest_is_refused(layout_image: ImageFixture) -> None:
    target = layout_image.platforms[1].manifest.digest
    path = _blob_file(layout_image, target)
    path.write_bytes(path.read_bytes().replace(b'"layers"', b'"layerz"'))
    source = LayoutSource(layout_image.layout)
    with pytest.raises(DigestMismatchError, match=target):
        source.manifest(target)


def test_size_mismatch_and_limit(layout_image: ImageFixture) -> None:
    digest, data = next(iter(layout_image.platforms[0].blobs.items()))
    layout = OciLayout(layout_image.layout)
    with pytest.raises(DigestMismatchError, match="declares"):
        layout.blob(digest, len(data) + 1)
    with pytest.raises(DigestMismatchError, match="more than"):
        layout.blob(digest, len(data) - 1)
    with pytest.raises(SizeLimitError):
        layout.blob(digest, limit=len(data) - 1)


def test_missing_blob(layout_image: ImageFixture) -> None:
    digest = next(iter(layout_image.platforms[0].blobs))
    _blob_file(layout_image, digest).unlink()
    with pytest.raises(RegistryNotFoundError, match=f"blob {digest}: not found"):
        OciLayout(layout_image.layout).blob(digest)


def test_symlink_outside_is_refused(layout_image: ImageFixture, tmp_path: Path) -> None:
    digest, data = next(iter(layout_image.platforms[0].blobs.items()))
    outside = tmp_path / "outside"
    outside.write_bytes(data)  # even the right bytes: the link itself is refused
    blob = _blob_file(layout_image, digest)
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(InputError, match="outside the layout"):
        OciLayout(layout_image.layout).blob(digest)


def test_symlink_inside_is_allowed(layout_image: ImageFixture) -> None:
    digest, data = next(iter(layout_image.platforms[0].blobs.items()))
    blob = _blob_file(layout_image, digest)
    copy = layout_image.layout / "copy"
    copy.write_bytes(data)
    blob.unlink()
    blob.symlink_to(copy)
    assert OciLayout(layout_image.layout).blob(digest) == data


def test_blobs_dir_symlinked_outside_is_refused(layout_image: ImageFixture, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    (layout_image.layout / "blobs").rename(moved)
    (layout_image.layout / "blobs").symlink_to(moved)
    with pytest.raises(InputError, match="outside the layout"):
        LayoutSource(layout_image.layout).resolve("v1")


def test_index_json_symlinked_outside_is_refused(
    layout_image: ImageFixture, tmp_path: Path
) -> None:
    outside = tmp_path / "index.json"
    outside.write_bytes((layout_image.layout / "index.json").read_bytes())
    (layout_image.layout / "index.json").unlink()
    (layout_image.layout / "index.json").symlink_to(outside)
    with pytest.raises(InputError, match="outside the layout"):
        OciLayout(layout_image.layout)


def test_digest_traversal_is_refused(layout_image: ImageFixture) -> None:
    from dhi_offline.errors import UsageError

    layout = OciLayout(layout_image.layout)
    with pytest.raises(UsageError):
        layout.blob("sha256:../../../../etc/passwd")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "not an OCI layout"),
        ({"oci-layout": b'{"imageLayoutVersion":"2.0.0"}'}, "imageLayoutVersion"),
        ({"oci-layout": b"not json"}, "not valid JSON"),
        ({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}, "index.json not found"),
        (
            {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": b'{"schemaVersion":1}'},
            "schemaVersion must be 2",
        ),
        (
            {
                "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                "index.json": b'{"schemaVersion":2,"manifests":[{"digest":"sha256:x"}]}',
            },
            "not a sha256/sha512 digest",
        ),
    ],
)
def test_not_a_layout(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises((InputError, RegistryNotFoundError), match=message):
        OciLayout(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        OciLayout(tmp_path / "nope")


# ------------------------------------------------------------------ descriptors


def test_descriptor_round_trip() -> None:
    obj = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": "sha256:" + "a" * 64,
        "size": 12,
        "artifactType": mt.IN_TOTO,
        "annotations": {"k": "v"},
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    }
    desc = Descriptor.from_json(obj)
    assert desc.to_json() == obj
    assert desc.platform is not None and str(desc.platform) == "linux/arm64/v8"
    assert hash(desc) == hash(Descriptor.from_json(obj))


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"digest": "sha256:" + "a" * 64, "size": 1}, "mediaType"),
        ({"mediaType": "x", "digest": "md5:00", "size": 1}, "digest"),
        ({"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": -1}, "size"),
        ({"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": "1"}, "size"),
        ({"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": True}, "size"),
        (
            {"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": 1, "annotations": {"k": 1}},
            "annotations",
        ),
    ],
)
def test_descriptor_rejects(obj: dict[str, object], message: str) -> None:
    with pytest.raises(MalformedEvidenceError, match=message):
        Descriptor.from_json(obj)


def test_platform() -> None:
    assert str(Platform.parse("linux/amd64")) == "linux/amd64"
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert Platform.parse("linux/arm64").matches(Platform("linux", "arm64", "v8"))
    assert Platform.parse("linux/arm64/v8").matches(Platform("linux", "arm64", None))
    assert not Platform.parse("linux/arm/v7").matches(Platform("linux", "arm", "v6"))
    assert not Platform.parse("linux/amd64").matches(Platform("windows", "amd64"))
    from dhi_offline.errors import UsageError

    for bad in ("linux", "linux/", "a/b/c/d", "/amd64"):
        with pytest.raises(UsageError):
            Platform.parse(bad)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"schemaVersion":2,"schemaVersion":2}', "duplicate key"),
        (b'{"schemaVersion":1}', "schemaVersion must be 2"),
        (b'{"schemaVersion":true}', "schemaVersion must be 2"),
        (b"[]", "expected a JSON object"),
        (b'{"schemaVersion":2,"manifests":[],"layers":[]}', "both manifests"),
        (b'{"schemaVersion":2,"x":NaN}', "not valid JSON"),
    ],
)
def test_parse_manifest_is_strict(data: bytes, message: str) -> None:
    with pytest.raises(MalformedEvidenceError, match=message):
        mt.parse_manifest(data)


# ------------------------------------------------------------------ skopeo as a peer


@pytest.mark.integration
def test_skopeo_reads_and_writes_our_layouts(layout_image: ImageFixture, tmp_path: Path) -> None:
    """skopeo copies our layout to a new layout; we read skopeo's output byte-exactly."""
    skopeo = skopeo_binary()
    if skopeo is None:
        pytest.skip("skopeo is not installed")
    out = tmp_path / "copied"
    done = subprocess.run(
        [
            skopeo,
            "--insecure-policy",
            "copy",
            "--all",
            "--preserve-digests",
            f"oci:{layout_image.layout}:v1",
            f"oci:{out}:copied",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    source = LayoutSource(out)
    assert source.resolve("copied").digest == layout_image.index.digest
    for p in layout_image.platforms:
        assert source.manifest(p.manifest.digest).data == p.manifest_bytes
        for digest, data in p.blobs.items():
            assert source.blob(digest, len(data)) == data
