"""The registry client against a real distribution registry (docker-registry 2.8).

distribution 2.8 has no referrers API, so every referrers lookup here goes through the
real 404 and the ``sha256-<hex>`` tag fallback.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dhi_offline.errors import RegistryError, RegistryNotFoundError, UsageError
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.content import referrers_tag
from dhi_offline.oci.reference import Reference, parse_reference
from dhi_offline.oci.source import LayoutSource, RegistrySource, open_source
from tests.support.registry import Seeded, fast_client, skopeo_binary, walk

pytestmark = pytest.mark.integration


def _source(seeded: Seeded, client: object) -> RegistrySource:
    ref = parse_reference(f"{seeded.registry.host}/{seeded.repository}:v1")
    assert isinstance(ref, Reference)
    source, what = open_source(ref, client)  # type: ignore[arg-type]
    assert what == "v1"
    assert isinstance(source, RegistrySource)
    return source


def test_fetch_index_manifests_and_blobs_byte_exact(seeded: Seeded) -> None:
    image = seeded.image
    with fast_client() as client:
        source = _source(seeded, client)
        assert source.description == f"registry {seeded.registry.host}/ns/app"
        top = source.resolve("v1")
        assert top.media_type == mt.OCI_INDEX
        assert top.digest == image.index.digest
        assert top.data == image.index_bytes
        assert source.resolve(top.digest) == top
        children = mt.index_manifests(mt.parse_manifest(top.data))
        assert [str(c.platform) for c in children] == ["linux/amd64", "linux/arm64/v8"]
        blob_count = 0
        for child, expected in zip(children, image.platforms, strict=True):
            fetched = source.manifest(child.digest)
            assert fetched.media_type == mt.OCI_MANIFEST
            assert fetched.data == expected.manifest_bytes
            for digest, data in expected.blobs.items():
                assert source.blob(digest, len(data)) == data
                blob_count += 1
        # Anonymous registry: exactly one request per object, nothing wasted.
        assert client.requests == 1 + 1 + len(children) + blob_count


def test_registry_and_layout_sources_agree(seeded: Seeded) -> None:
    """The same walk over the registry and over the layout yields the same bytes."""
    with fast_client() as client:
        from_registry = walk(_source(seeded, client), "v1")
    from_layout = walk(LayoutSource(seeded.image.layout), "v1")
    assert from_registry == from_layout
    assert len(from_registry) == len(seeded.image.manifests) + len(seeded.image.blobs)


def test_referrers_fall_back_to_the_tag(seeded: Seeded) -> None:
    image = seeded.image
    with fast_client() as client:
        source = _source(seeded, client)
        for subject, expected in image.referrers.items():
            before = client.requests
            result = source.referrers(subject)
            assert result.via == "tag"
            assert list(result.descriptors) == expected
            assert result.raw is not None
            pushed = client.get_manifest(
                seeded.registry.host, seeded.repository, referrers_tag(subject)
            )
            assert result.raw == pushed.data
            assert client.requests - before == 3  # API 404, fallback tag, our check
        platform = image.platforms[0].manifest.digest
        only = source.referrers(platform, mt.IN_TOTO)
        assert [d.artifact_type for d in only.descriptors] == [mt.IN_TOTO]
        assert source.referrers(platform, mt.COSIGN_ARTIFACT_SIG).descriptors == ()
        # The signature of the attestation is found from the attestation's digest.
        signature = source.referrers(only.descriptors[0].digest, mt.COSIGN_ARTIFACT_SIG)
        assert len(signature.descriptors) == 1
        sig_manifest = mt.parse_manifest(source.manifest(signature.descriptors[0].digest).data)
        (layer,) = mt.manifest_layers(sig_manifest)
        assert layer.media_type == mt.COSIGN_SIMPLESIGNING
        assert only.descriptors[0].digest.encode() in source.blob(layer.digest, layer.size)


def test_no_referrers_at_all(seeded: Seeded) -> None:
    with fast_client() as client:
        result = _source(seeded, client).referrers("sha256:" + "0" * 64)
    assert result == type(result)((), "none", None)


def test_cosign_sig_tag_lookup(seeded: Seeded) -> None:
    target = seeded.image.platforms[0].manifest.digest
    with fast_client() as client:
        source = _source(seeded, client)
        found = source.tag(referrers_tag(target) + ".sig")
        assert found is not None
        assert found.digest == seeded.sig_digest
        assert found.data == seeded.sig_bytes
        assert found.media_type == mt.OCI_MANIFEST
        assert source.tag(referrers_tag(target) + ".att") is None
        # A repository that does not exist has no tags either.
        other = RegistrySource(client, Reference(seeded.registry.host, "nope/none", "v1", None))
        assert other.tag("v1") is None
        with pytest.raises(UsageError):
            source.tag("bad tag")


def test_not_found_is_one_line_and_named(seeded: Seeded) -> None:
    host = seeded.registry.host
    with fast_client() as client:
        with pytest.raises(RegistryNotFoundError) as info:
            client.get_manifest(host, "ns/app", "missing")
        line = info.value.one_line()
        assert line == (
            f"registry {host} repository ns/app: tag missing: not found "
            "(HTTP 404 MANIFEST_UNKNOWN: manifest unknown)"
        )
        assert info.value.exit_code == 2
        digest = "sha256:" + "1" * 64
        with pytest.raises(RegistryNotFoundError, match=f"blob {digest}: not found"):
            client.get_blob(host, "ns/app", digest)
        with pytest.raises(RegistryNotFoundError, match="repository nope/none: manifest"):
            client.get_manifest(host, "nope/none", digest)


def test_concurrent_blob_fetches_and_progress(seeded: Seeded) -> None:
    blobs = {d: b for p in seeded.image.platforms for d, b in p.blobs.items()}
    received: list[int] = []
    with fast_client(concurrency=4, progress=received.append) as client:
        assert client.concurrency == 4

        def fetch(item: tuple[str, bytes]) -> bytes:
            return client.get_blob(seeded.registry.host, "ns/app", item[0], len(item[1]))

        with ThreadPoolExecutor(client.concurrency) as pool:
            results = list(pool.map(fetch, list(blobs.items()) * 3))
    assert results == list(blobs.values()) * 3
    assert sum(received) == 3 * sum(len(b) for b in blobs.values())


def test_wrong_size_is_refused(seeded: Seeded) -> None:
    from dhi_offline.errors import DigestMismatchError, SizeLimitError

    digest, data = next(iter(seeded.image.platforms[0].blobs.items()))
    with fast_client() as client:
        with pytest.raises(DigestMismatchError, match="announces"):
            client.get_blob(seeded.registry.host, "ns/app", digest, len(data) - 1)
        with pytest.raises(SizeLimitError, match="over the limit"):
            client.get_blob(seeded.registry.host, "ns/app", digest, limit=len(data) - 1)
    with fast_client(max_manifest_size=100) as client, pytest.raises(SizeLimitError):
        client.get_manifest(seeded.registry.host, "ns/app", "v1")


def test_skopeo_copies_back_what_we_read(seeded: Seeded, tmp_path: Path) -> None:
    """skopeo pulls the pushed image into a layout; our layout reader agrees with the registry."""
    skopeo = skopeo_binary()
    assert skopeo is not None
    out = tmp_path / "pulled"
    done = subprocess.run(
        [
            skopeo,
            "--insecure-policy",
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            f"docker://{seeded.registry.host}/ns/app:v1",
            f"oci:{out}:pulled",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert LayoutSource(out).resolve("pulled").digest == seeded.image.index.digest


def test_connection_refused_is_one_line() -> None:
    from tests.support.registry import free_port

    host = f"127.0.0.1:{free_port()}"
    sleeps: list[float] = []
    with fast_client(sleep=sleeps.append, jitter=lambda: 0.0) as client:
        with pytest.raises(RegistryError) as info:
            client.get_manifest(host, "ns/app", "v1")
        assert client.requests == 3
    line = info.value.one_line()
    assert line.startswith(f"registry {host} repository ns/app: tag v1: cannot connect after 3")
    assert "Traceback" not in line and "\n" not in info.value.message
    assert sleeps == [0.25, 0.5]  # exponential backoff, jitter pinned at its minimum


def test_https_by_default_http_for_loopback_and_insecure() -> None:
    with fast_client(insecure_registries=["mirror.internal:5000", "plain.internal"]) as client:
        assert client.scheme_for("registry.example") == "https"
        assert client.scheme_for("localhost:5000") == "http"
        assert client.scheme_for("127.0.0.1:5000") == "http"
        assert client.scheme_for("[::1]:5000") == "http"
        assert client.scheme_for("mirror.internal:5000") == "http"
        assert client.scheme_for("mirror.internal:5001") == "https"
        assert client.scheme_for("plain.internal:8080") == "http"
        assert client.base_url("docker.io") == "https://registry-1.docker.io"
    with fast_client(plain_http_loopback=False) as client:
        assert client.scheme_for("127.0.0.1:5000") == "https"
