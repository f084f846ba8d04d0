"""The referrers-API proxy turns docker-registry 2.8 into a registry with the OCI 1.1 API.

A real ``docker-registry`` (skipped when it is not installed) behind a
:class:`ReferrersProxy`; :class:`RegistryClient` pushes an image and referrers through
the proxy and finds them through ``/v2/<name>/referrers/<digest>``, never through the
``sha256-<hex>`` fallback tag. Expected descriptors are written out by hand here, not
computed with the helper the proxy uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.layout import canonical_json
from dhi_offline.oci.mediatypes import Descriptor
from tests.support.referrers_proxy import ReferrersProxy, path_kind
from tests.support.registry import RunningRegistry, fast_client, registry_binary, run_registry

pytestmark = pytest.mark.integration

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SBOM_TYPE = "application/spdx+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """One anonymous docker-registry for the module."""
    if registry_binary() is None:
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")
    with run_registry(tmp_path_factory.mktemp("referrers") / "registry") as running:
        yield running


@pytest.fixture
def proxy(registry: RunningRegistry) -> Iterator[ReferrersProxy]:
    """A fresh proxy (no referrers recorded, no requests counted) per test."""
    with ReferrersProxy(registry.host) as running:
        yield running


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with fast_client(remember_referrers_api=True) as running:
        yield running


@dataclass
class Pushed:
    """An image manifest and the artifact manifests referring to it."""

    repository: str
    image: Descriptor
    artifacts: dict[str, Descriptor]
    """artifactType -> the descriptor the referrers API should list."""


def _push_image(client: RegistryClient, host: str, repository: str) -> Descriptor:
    layer = client.push_blob(host, repository, b"layer of " + repository.encode(), mt.OCI_LAYER_TAR)
    config_bytes = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {}})
    config = client.push_blob(host, repository, config_bytes, mt.OCI_CONFIG)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json()],
        }
    )
    digest = client.push_manifest(host, repository, "v1", manifest, mt.OCI_MANIFEST)
    return Descriptor(mt.OCI_MANIFEST, digest, len(manifest))


def _artifact(
    client: RegistryClient,
    host: str,
    repository: str,
    subject: Descriptor,
    *,
    artifact_type: str | None,
    payload: bytes,
    annotations: dict[str, str] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Push an artifact manifest referring to ``subject`` by digest; (bytes, expected).

    Without ``artifact_type`` the manifest has a plain config, whose media type is the
    artifact type the API must report.
    """
    layer = client.push_blob(host, repository, payload, "application/octet-stream")
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
        config = client.push_blob(host, repository, mt.EMPTY_JSON, mt.OCI_EMPTY)
    else:
        config = client.push_blob(host, repository, b'{"kind":"sbom"}', SBOM_TYPE)
    obj["config"] = config.to_json()
    obj["layers"] = [layer.to_json()]
    obj["subject"] = {
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    }
    if annotations:
        obj["annotations"] = annotations
    data = canonical_json(obj)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert client.push_manifest(host, repository, digest, data, mt.OCI_MANIFEST) == digest
    expected: dict[str, Any] = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": digest,
        "size": len(data),
        "artifactType": artifact_type or SBOM_TYPE,
    }
    if annotations:
        expected["annotations"] = annotations
    return data, expected


@pytest.fixture
def pushed(proxy: ReferrersProxy, client: RegistryClient, request: pytest.FixtureRequest) -> Pushed:
    """An image and two referrers (a signature bundle, an SBOM) pushed through the proxy."""
    repository = "ns/" + request.node.name.replace("_", "-").lower()[:60]
    image = _push_image(client, proxy.host, repository)
    artifacts: dict[str, Descriptor] = {}
    for artifact_type, payload, notes in (
        (BUNDLE_TYPE, b"bundle", {"dev.sigstore.bundle.predicateType": "https://slsa.dev/v1"}),
        (None, b"sbom", None),
    ):
        _, expected = _artifact(
            client,
            proxy.host,
            repository,
            image,
            artifact_type=artifact_type,
            payload=payload,
            annotations=notes,
        )
        artifacts[expected["artifactType"]] = Descriptor.from_json(expected)
    return Pushed(repository, image, artifacts)


def test_referrers_come_from_the_api(
    proxy: ReferrersProxy, client: RegistryClient, pushed: Pushed
) -> None:
    assert client.referrers_api(proxy.host) is None
    found = client.referrers(proxy.host, pushed.repository, pushed.image.digest)
    assert found.via == "api"
    assert list(found.descriptors) == [pushed.artifacts[BUNDLE_TYPE], pushed.artifacts[SBOM_TYPE]]
    assert client.referrers_api(proxy.host) is True
    index = json.loads(found.raw or b"")
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == mt.OCI_INDEX
    counts = proxy.counts()
    assert counts[("GET", "referrers")] == 1
    assert counts[("PUT", "manifest-digest")] == 2
    assert counts[("PUT", "fallback-tag")] == 0
    assert counts[("GET", "fallback-tag")] == 0


def test_artifact_type_filter(
    proxy: ReferrersProxy, client: RegistryClient, pushed: Pushed
) -> None:
    found = client.referrers(proxy.host, pushed.repository, pushed.image.digest, BUNDLE_TYPE)
    assert found.via == "api"
    assert list(found.descriptors) == [pushed.artifacts[BUNDLE_TYPE]]
    url = f"{proxy.url}/v2/{pushed.repository}/referrers/{pushed.image.digest}"
    filtered = httpx.get(url, params={"artifactType": SBOM_TYPE})
    assert filtered.status_code == 200
    assert filtered.headers["content-type"] == mt.OCI_INDEX
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [
        pushed.artifacts[SBOM_TYPE].digest
    ]
    unfiltered = httpx.get(url)
    assert "oci-filters-applied" not in unfiltered.headers
    assert len(unfiltered.json()["manifests"]) == 2


def test_unknown_subject_is_an_empty_index_not_404(
    proxy: ReferrersProxy, client: RegistryClient, pushed: Pushed
) -> None:
    unknown = "sha256:" + "0" * 64
    found = client.referrers(proxy.host, pushed.repository, unknown)
    assert found.via == "api"
    assert found.descriptors == ()
    assert client.referrers_api(proxy.host) is True
    response = httpx.get(f"{proxy.url}/v2/never/pushed/referrers/{unknown}")
    assert response.status_code == 200
    assert response.json() == {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    bad = httpx.get(f"{proxy.url}/v2/{pushed.repository}/referrers/sha256:nothex")
    assert bad.status_code == 400


def test_put_with_subject_answers_oci_subject(
    proxy: ReferrersProxy, client: RegistryClient, pushed: Pushed
) -> None:
    subject = pushed.image
    config = {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2}
    with_subject = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": "application/vnd.example.note",
            "config": config,
            "layers": [config],
            "subject": subject.to_json(),
        }
    )
    digest = "sha256:" + hashlib.sha256(with_subject).hexdigest()
    url = f"{proxy.url}/v2/{pushed.repository}/manifests/{digest}"
    put = httpx.put(url, content=with_subject, headers={"Content-Type": mt.OCI_MANIFEST})
    assert put.status_code == 201
    assert put.headers["oci-subject"] == subject.digest
    assert put.headers["docker-content-digest"] == digest
    assert digest in [d["digest"] for d in proxy.referrers_of(pushed.repository, subject.digest)]
    # No subject, no OCI-Subject; a refused PUT records nothing.
    plain = canonical_json(
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": []}
    )
    put = httpx.put(
        f"{proxy.url}/v2/{pushed.repository}/manifests/plain",
        content=plain,
        headers={"Content-Type": mt.OCI_MANIFEST},
    )
    assert put.status_code == 201
    assert "oci-subject" not in put.headers
    orphan = json.loads(with_subject)
    orphan["subject"] = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 1}
    orphan["layers"] = [{"mediaType": mt.OCI_LAYER_TAR, "digest": "sha256:" + "2" * 64, "size": 3}]
    put = httpx.put(
        f"{proxy.url}/v2/{pushed.repository}/manifests/orphan",
        content=canonical_json(orphan),
        headers={"Content-Type": mt.OCI_MANIFEST},
    )
    assert put.status_code == 400  # MANIFEST_BLOB_UNKNOWN
    assert "oci-subject" not in put.headers
    assert proxy.referrers_of(pushed.repository, "sha256:" + "1" * 64) == []


def test_delete_drops_the_referrer(
    proxy: ReferrersProxy, client: RegistryClient, pushed: Pushed
) -> None:
    gone = pushed.artifacts[SBOM_TYPE].digest
    response = httpx.delete(f"{proxy.url}/v2/{pushed.repository}/manifests/{gone}")
    assert response.status_code == 202
    found = client.referrers(proxy.host, pushed.repository, pushed.image.digest)
    assert list(found.descriptors) == [pushed.artifacts[BUNDLE_TYPE]]


def test_the_registry_itself_has_no_referrers_api(
    registry: RunningRegistry, proxy: ReferrersProxy, client: RegistryClient, pushed: Pushed
) -> None:
    """The contrast: asked directly, distribution 2.8 answers 404 and there is no tag."""
    found = client.referrers(registry.host, pushed.repository, pushed.image.digest)
    assert found.via == "none"
    assert found.descriptors == ()
    assert client.referrers_api(registry.host) is False


def test_path_kind() -> None:
    digest = "sha256:" + "a" * 64
    assert path_kind("/v2/") == "base"
    assert path_kind(f"/v2/ns/app/referrers/{digest}?artifactType=x") == "referrers"
    assert path_kind(f"/v2/ns/app/manifests/{digest}") == "manifest-digest"
    assert path_kind("/v2/ns/app/manifests/sha256-" + "a" * 64) == "fallback-tag"
    assert path_kind("/v2/ns/app/manifests/v1") == "manifest-tag"
    assert path_kind("/v2/ns/app/blobs/uploads/") == "blob-upload"
    assert path_kind("/v2/ns/app/blobs/uploads/abc-123?digest=x") == "blob-upload"
    assert path_kind(f"/v2/ns/app/blobs/{digest}") == "blob"
    assert path_kind("/v2/ns/app/tags/list") == "tags"
