"""Uploads: blob push (monolithic, chunked, mounted), manifest existence, push-scoped tokens.

Most tests run against a real Debian ``docker-registry`` (distribution 2.8) on loopback,
anonymous or behind a token server; wire details no registry reports back (the exact
``Content-Range`` of each chunk, what happens to a refused session, where a ``Location``
may point) are checked against an in-process httpx transport.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dhi_offline.errors import DigestMismatchError, RegistryError
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.auth import DockerConfigCredentials, NoCredentials
from dhi_offline.oci.client import RegistryClient, RetryPolicy
from dhi_offline.oci.layout import canonical_json
from tests.support.registry import (
    Fault,
    FaultProxy,
    RunningRegistry,
    TokenServer,
    fast_client,
    registry_binary,
    run_registry,
)

MiB = 1024 * 1024


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _require_registry() -> None:
    if registry_binary() is None:
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """An empty anonymous registry for this module."""
    _require_registry()
    with run_registry(tmp_path_factory.mktemp("upload") / "registry") as running:
        yield running


# ------------------------------------------------------------------ real registry


@pytest.mark.integration
def test_monolithic_upload_then_present(registry: RunningRegistry) -> None:
    data = b"monolithic blob " * 100
    digest = _digest(data)
    with fast_client() as client:
        assert not client.blob_exists(registry.host, "up/mono", digest)
        assert (
            client.upload_blob(registry.host, "up/mono", data, digest=digest, size=len(data))
            == "uploaded"
        )
        assert client.blob_exists(registry.host, "up/mono", digest)
        before = client.requests
        assert (
            client.upload_blob(registry.host, "up/mono", data, digest=digest, size=len(data))
            == "present"
        )
        assert client.requests == before + 1  # one HEAD, no upload
        assert client.get_blob(registry.host, "up/mono", digest, len(data)) == data


@pytest.mark.integration
def test_small_file_is_uploaded_in_one_request(registry: RunningRegistry, tmp_path: Path) -> None:
    data = os.urandom(3000)
    path = _file(tmp_path / "small", data)
    with FaultProxy(registry.host) as proxy, fast_client() as client:
        pushed = client.upload_blob(
            proxy.host, "up/small", path, digest=_digest(data), size=len(data), chunk_size=4096
        )
        assert pushed == "uploaded"
        assert client.get_blob(proxy.host, "up/small", _digest(data), len(data)) == data
    methods = [e.request.split()[0] for e in proxy.events]
    assert methods == ["HEAD", "POST", "PUT", "GET"]


@pytest.mark.integration
def test_chunked_upload_of_a_20_mib_file(registry: RunningRegistry, tmp_path: Path) -> None:
    data = os.urandom(20 * MiB + 12345)  # a short last chunk too
    digest = _digest(data)
    path = _file(tmp_path / "big", data)
    with FaultProxy(registry.host) as proxy, fast_client() as client:
        pushed = client.upload_blob(
            proxy.host, "up/big", path, digest=digest, size=len(data), chunk_size=MiB
        )
        assert pushed == "uploaded"
        assert client.get_blob(proxy.host, "up/big", digest, len(data), limit=64 * MiB) == data
    methods = [e.request.split()[0] for e in proxy.events]
    assert methods == ["HEAD", "POST", *["PATCH"] * 21, "PUT", "GET"]
    assert f"digest={digest.replace(':', '%3A')}" in proxy.events[-2].request


@pytest.mark.integration
def test_a_failed_chunk_is_retried(registry: RunningRegistry, tmp_path: Path) -> None:
    data = os.urandom(5 * MiB)
    digest = _digest(data)
    path = _file(tmp_path / "flaky", data)
    sleeps: list[float] = []
    with (
        FaultProxy(registry.host, [Fault("status", match="^PATCH ", every=3, status=503)]) as proxy,
        fast_client(sleep=sleeps.append) as client,
    ):
        pushed = client.upload_blob(
            proxy.host, "up/flaky", path, digest=digest, size=len(data), chunk_size=MiB
        )
        assert pushed == "uploaded"
        assert client.get_blob(proxy.host, "up/flaky", digest, len(data)) == data
    assert proxy.actions("status") == ["status 503"] * 2
    assert len(sleeps) == 2


@pytest.mark.integration
@pytest.mark.parametrize(("size", "chunk_size"), [(4000, 8 * MiB), (3 * MiB + 7, MiB)])
def test_wrong_bytes_are_refused_and_nothing_is_committed(
    registry: RunningRegistry, tmp_path: Path, size: int, chunk_size: int
) -> None:
    declared = os.urandom(size)
    actual = bytearray(declared)
    actual[-1] ^= 0x01  # one bit off, in the last chunk
    path = _file(tmp_path / "wrong", bytes(actual))
    repository = f"up/wrong{size}"
    with FaultProxy(registry.host) as proxy, fast_client() as client:
        with pytest.raises(DigestMismatchError) as info:
            client.upload_blob(
                proxy.host,
                repository,
                path,
                digest=_digest(declared),
                size=size,
                chunk_size=chunk_size,
            )
        assert info.value.one_line() == (
            f"registry {proxy.host} repository {repository}: blob upload {_digest(declared)}: "
            f"content digest is {_digest(bytes(actual))}"
        )
        assert not client.blob_exists(proxy.host, repository, _digest(declared))
        assert not client.blob_exists(proxy.host, repository, _digest(bytes(actual)))
    assert not any(e.request.startswith("PUT ") for e in proxy.events)


@pytest.mark.integration
def test_a_file_of_the_wrong_size_is_refused(registry: RunningRegistry, tmp_path: Path) -> None:
    data = os.urandom(2 * MiB)
    digest = _digest(data)
    with fast_client() as client:
        for content, size in ((data + b"!", len(data)), (data[:-1], len(data))):
            path = _file(tmp_path / "sized", content)
            with pytest.raises(DigestMismatchError, match="content has"):
                client.upload_blob(
                    registry.host, "up/sized", path, digest=digest, size=size, chunk_size=MiB
                )
        assert not client.blob_exists(registry.host, "up/sized", digest)


@pytest.mark.integration
def test_cross_repository_mount(registry: RunningRegistry) -> None:
    data = b"mount me " * 50
    digest = _digest(data)
    with fast_client() as client:
        client.upload_blob(registry.host, "up/source", data, digest=digest, size=len(data))
        assert not client.blob_exists(registry.host, "up/target", digest)
        pushed = client.upload_blob(
            registry.host,
            "up/target",
            data,
            digest=digest,
            size=len(data),
            mount_from="up/source",
        )
        assert pushed == "mounted"
        assert client.blob_exists(registry.host, "up/target", digest)
        assert client.get_blob(registry.host, "up/target", digest, len(data)) == data
        # The source lacks the blob: the registry opens an ordinary upload instead.
        other = b"not in the source"
        pushed = client.upload_blob(
            registry.host,
            "up/target",
            other,
            digest=_digest(other),
            size=len(other),
            mount_from="up/empty",
        )
        assert pushed == "uploaded"
        assert client.blob_exists(registry.host, "up/target", _digest(other))


def _manifest(client: RegistryClient, host: str, repository: str) -> tuple[bytes, str]:
    config = client.push_blob(host, repository, b"{}", mt.OCI_CONFIG)
    layer = client.push_blob(host, repository, b"layer", mt.OCI_LAYER_GZIP)
    data = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json()],
        }
    )
    return data, client.push_manifest(host, repository, "v1", data, mt.OCI_MANIFEST)


@pytest.mark.integration
def test_manifest_exists(registry: RunningRegistry) -> None:
    with fast_client() as client:
        data, digest = _manifest(client, registry.host, "up/manifest")
        expected = mt.Descriptor(mt.OCI_MANIFEST, digest, len(data))
        assert client.manifest_exists(registry.host, "up/manifest", "v1") == expected
        assert client.manifest_exists(registry.host, "up/manifest", digest) == expected
        assert client.manifest_exists(registry.host, "up/manifest", "v2") is None
        assert client.manifest_exists(registry.host, "up/manifest", _digest(b"x")) is None
        assert client.manifest_exists(registry.host, "up/nothing", "v1") is None


# ------------------------------------------------------------------ token auth


@pytest.fixture(scope="module")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningRegistry, TokenServer]]:
    """A registry with ``auth: token``; ``bob`` may push, anonymous callers may pull."""
    _require_registry()
    base = tmp_path_factory.mktemp("upload-token")
    server = TokenServer(base / "token", users={"bob": "builder"}, anonymous_pull=True)
    with server, run_registry(base / "registry", token=server.registry_config()) as registry:
        yield registry, server


def _as(user: str, password: str, host: str, config_dir: Path) -> RegistryClient:
    config_dir.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return RegistryClient(
        credentials=DockerConfigCredentials(config_dir, env={}),
        sleep=lambda _s: None,
        retry=RetryPolicy(max_attempts=2),
    )


@pytest.mark.integration
def test_uploads_with_push_scoped_tokens(
    token_registry: tuple[RunningRegistry, TokenServer], tmp_path: Path
) -> None:
    registry, server = token_registry
    host = registry.host
    data = os.urandom(3 * MiB)
    digest = _digest(data)
    path = _file(tmp_path / "blob", data)
    server.requests.clear()
    with _as("bob", "builder", host, tmp_path / "bob") as client:
        pushed = client.upload_blob(
            host, "team/a", path, digest=digest, size=len(data), chunk_size=MiB
        )
        assert pushed == "uploaded"
        assert [r.scopes for r in server.requests] == [["repository:team/a:pull,push"]]
        pushed = client.upload_blob(
            host, "team/b", path, digest=digest, size=len(data), mount_from="team/a"
        )
        assert pushed == "mounted"
        # One token for both scopes, each its own scope parameter (token spec).
        assert server.requests[-1].scopes == [
            "repository:team/b:pull,push",
            "repository:team/a:pull",
        ]
        manifest, manifest_digest = _manifest(client, host, "team/b")
        found = client.manifest_exists(host, "team/b", "v1")
        assert found == mt.Descriptor(mt.OCI_MANIFEST, manifest_digest, len(manifest))
    with RegistryClient(credentials=NoCredentials(), sleep=lambda _s: None) as anonymous:
        assert anonymous.get_blob(host, "team/b", digest, len(data)) == data
        with pytest.raises(RegistryError, match="team/c"):
            anonymous.upload_blob(host, "team/c", b"nope", digest=_digest(b"nope"), size=4)


# ------------------------------------------------------------------ wire details


class FakeRegistry:
    """Just enough of the upload protocol, recording every request."""

    def __init__(self, *, location_host: str = "registry.test", digest_header: bool = True):
        self.requests: list[httpx.Request] = []
        self.location_host = location_host
        self.digest_header = digest_header
        self.manifest = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX})
        self.received = b""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        step = len(self.requests)
        if request.method == "HEAD" and "/blobs/" in path:
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(
                202, headers={"Location": f"https://{self.location_host}/session/{step}"}
            )
        if request.method == "PATCH":
            self.received += request.content
            return httpx.Response(
                202,
                headers={
                    "Location": f"/session/{step}?_state=s{step}",
                    "Range": f"0-{len(self.received) - 1}",
                },
            )
        if request.method in ("PUT", "DELETE"):
            return httpx.Response(201 if request.method == "PUT" else 204)
        if "/manifests/" in path:
            headers = {"Content-Type": mt.OCI_INDEX, "Content-Length": str(len(self.manifest))}
            if self.digest_header:
                headers["Docker-Content-Digest"] = _digest(self.manifest)
            body = b"" if request.method == "HEAD" else self.manifest
            return httpx.Response(200, headers=headers, content=body)
        return httpx.Response(400)


def _mock_client(fake: FakeRegistry) -> RegistryClient:
    return RegistryClient(
        credentials=NoCredentials(), transport=httpx.MockTransport(fake), sleep=lambda _s: None
    )


@pytest.mark.parametrize("in_file", [True, False])
def test_chunks_carry_inclusive_ranges_and_follow_each_location(
    tmp_path: Path, in_file: bool
) -> None:
    data = b"0123456789"
    fake = FakeRegistry()
    with _mock_client(fake) as client:
        pushed = client.upload_blob(
            "registry.test",
            "ns/app",
            _file(tmp_path / "ten", data) if in_file else data,
            digest=_digest(data),
            size=10,
            chunk_size=4,
        )
    assert pushed == "uploaded"
    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert [r.headers["content-range"] for r in patches] == ["0-3", "4-7", "8-9"]
    assert [r.headers["content-length"] for r in patches] == ["4", "4", "2"]
    assert {r.headers["content-type"] for r in patches} == {mt.OCTET_STREAM}
    assert [r.url.path for r in patches] == ["/session/2", "/session/3", "/session/4"]
    put = fake.requests[-1]
    assert put.method == "PUT" and put.content == b""
    assert put.url.path == "/session/5"
    assert put.url.params["_state"] == "s5" and put.url.params["digest"] == _digest(data)
    assert fake.received == data


def test_a_refused_chunked_upload_is_cancelled_not_committed(tmp_path: Path) -> None:
    declared = b"0123456789"
    fake = FakeRegistry()
    with _mock_client(fake) as client, pytest.raises(DigestMismatchError):
        client.upload_blob(
            "registry.test",
            "ns/app",
            _file(tmp_path / "ten", b"0123456780"),
            digest=_digest(declared),
            size=10,
            chunk_size=4,
        )
    assert [r.method for r in fake.requests] == [
        "HEAD",
        "POST",
        "PATCH",
        "PATCH",
        "PATCH",
        "DELETE",
    ]
    assert fake.requests[-1].url.path == "/session/5"


def test_an_oversized_file_is_refused_before_the_extra_bytes_are_sent(tmp_path: Path) -> None:
    fake = FakeRegistry()
    content = _file(tmp_path / "more", b"x" * 13)
    with _mock_client(fake) as client, pytest.raises(DigestMismatchError, match="more than"):
        client.upload_blob(
            "registry.test", "ns/app", content, digest=_digest(b"x" * 8), size=8, chunk_size=4
        )
    assert fake.received == b"x" * 8
    assert fake.requests[-1].method == "DELETE"


def test_an_upload_location_on_another_host_is_refused() -> None:
    fake = FakeRegistry(location_host="elsewhere.test")
    with _mock_client(fake) as client, pytest.raises(RegistryError, match="leaves the registry"):
        client.upload_blob("registry.test", "ns/app", b"abc", digest=_digest(b"abc"), size=3)
    assert {r.url.host for r in fake.requests} == {"registry.test"}


@pytest.mark.parametrize("digest_header", [True, False])
def test_manifest_exists_falls_back_to_get_without_a_digest_header(digest_header: bool) -> None:
    fake = FakeRegistry(digest_header=digest_header)
    with _mock_client(fake) as client:
        found = client.manifest_exists("registry.test", "ns/app", "v1")
    assert found == mt.Descriptor(mt.OCI_INDEX, _digest(fake.manifest), len(fake.manifest))
    expected = ["HEAD"] if digest_header else ["HEAD", "GET"]
    assert [r.method for r in fake.requests] == expected
    assert fake.requests[0].headers["accept"] == mt.ACCEPT_MANIFESTS
