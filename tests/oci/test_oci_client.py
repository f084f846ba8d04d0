"""Client paths no packaged registry exercises: the referrers API, Docker Hub, TLS.

No registry packaged for this machine implements ``GET /v2/<name>/referrers/<digest>``
(distribution 2.8 answers 404, exercised for real in test_oci_registry.py), so this
path is checked against an in-process httpx transport that answers like a registry
that does: pagination through ``Link``, ``OCI-Filters-Applied`` or not. TLS is checked
against a real HTTPS server on loopback with a certificate made here.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dhi_offline.errors import MalformedEvidenceError, RegistryError
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.auth import NoCredentials
from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.layout import canonical_json

HOST = "registry.test"
SUBJECT = "sha256:" + "5" * 64


def _desc(n: int, artifact_type: str) -> dict[str, object]:
    return {
        "mediaType": mt.OCI_MANIFEST,
        "digest": "sha256:" + f"{n:064x}",
        "size": 100 + n,
        "artifactType": artifact_type,
        "annotations": {"n": str(n)},
    }


def _index(*descriptors: dict[str, object]) -> bytes:
    return canonical_json(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": list(descriptors)}
    )


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> RegistryClient:
    return RegistryClient(
        credentials=NoCredentials(),
        transport=httpx.MockTransport(handler),
        sleep=lambda _s: None,
    )


def _ok(body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        200, content=body, headers={"Content-Type": mt.OCI_INDEX, **(headers or {})}
    )


def test_api_single_page_keeps_raw_bytes() -> None:
    body = _index(_desc(1, mt.IN_TOTO), _desc(2, mt.COSIGN_ARTIFACT_SIG))
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.headers["accept"] == mt.OCI_INDEX
        return _ok(body)

    with _client(handler) as client:
        result = client.referrers(HOST, "ns/app", SUBJECT)
    assert seen == [f"https://{HOST}/v2/ns/app/referrers/{SUBJECT}"]
    assert result.via == "api"
    assert result.raw == body
    assert [d.artifact_type for d in result.descriptors] == [mt.IN_TOTO, mt.COSIGN_ARTIFACT_SIG]
    assert result.descriptors[0].annotations == {"n": "1"}


def test_api_filter_applied_by_registry_is_trusted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["artifactType"] == mt.IN_TOTO
        # The registry says it filtered; the client takes the answer as it is.
        return _ok(_index(_desc(1, mt.IN_TOTO)), {"OCI-Filters-Applied": "artifactType"})

    with _client(handler) as client:
        result = client.referrers(HOST, "ns/app", SUBJECT, mt.IN_TOTO)
    assert [d.digest for d in result.descriptors] == [_desc(1, "")["digest"]]


def test_api_filter_not_applied_is_done_client_side() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _ok(_index(_desc(1, mt.IN_TOTO), _desc(2, mt.COSIGN_ARTIFACT_SIG)))

    with _client(handler) as client:
        result = client.referrers(HOST, "ns/app", SUBJECT, mt.COSIGN_ARTIFACT_SIG)
    assert [d.artifact_type for d in result.descriptors] == [mt.COSIGN_ARTIFACT_SIG]


def test_api_pagination_follows_link() -> None:
    pages = {
        "": (_index(_desc(1, mt.IN_TOTO)), '</v2/ns/app/referrers/x?n=2>; rel="next"'),
        "2": (
            _index(_desc(2, mt.IN_TOTO)),
            f"<https://{HOST}/v2/ns/app/referrers/x?n=3>; rel=next",
        ),
        "3": (_index(_desc(3, mt.IN_TOTO)), None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        body, link = pages[request.url.params.get("n", "")]
        return _ok(body, {"Link": link} if link else None)

    with _client(handler) as client:
        result = client.referrers(HOST, "ns/app", SUBJECT)
        assert client.requests == 3
    assert [d.annotations["n"] for d in result.descriptors] == ["1", "2", "3"]
    assert result.via == "api"
    assert result.raw is None  # several pages: no single index to keep


def test_api_pagination_refuses_other_hosts_and_loops() -> None:
    def leaves(request: httpx.Request) -> httpx.Response:
        return _ok(_index(), {"Link": '<https://evil.test/v2/x>; rel="next"'})

    with _client(leaves) as client, pytest.raises(RegistryError, match="leaves the registry"):
        client.referrers(HOST, "ns/app", SUBJECT)

    def loops(request: httpx.Request) -> httpx.Response:
        return _ok(_index(), {"Link": f'</v2/ns/app/referrers/{SUBJECT}>; rel="next"'})

    with _client(loops) as client, pytest.raises(RegistryError, match="loops back"):
        client.referrers(HOST, "ns/app", SUBJECT)


def test_api_response_must_be_an_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _ok(canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}))

    with _client(handler) as client, pytest.raises(RegistryError, match="not an image index"):
        client.referrers(HOST, "ns/app", SUBJECT)

    def garbage(request: httpx.Request) -> httpx.Response:
        return _ok(b"<html>")

    with _client(garbage) as client, pytest.raises(MalformedEvidenceError, match="referrers of"):
        client.referrers(HOST, "ns/app", SUBJECT)


def test_fallback_tag_must_be_an_index() -> None:
    manifest = canonical_json(
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {}, "layers": []}
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if "/referrers/" in request.url.path:
            return httpx.Response(404)
        return httpx.Response(200, content=manifest, headers={"Content-Type": mt.OCI_MANIFEST})

    with _client(handler) as client, pytest.raises(RegistryError, match="not an image index"):
        client.referrers(HOST, "ns/app", SUBJECT)


def test_docker_hub_endpoint_and_token_realm_over_https() -> None:
    """docker.io is reached at registry-1.docker.io; a Bearer challenge is followed."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url}")
        if request.url.host == "auth.docker.io":
            assert request.url.params["scope"] == "repository:library/python:pull"
            return httpx.Response(200, json={"token": "t0k", "expires_in": 300})
        if request.headers.get("authorization") != "Bearer t0k":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.docker.io/token",'
                    'service="registry.docker.io",scope="repository:library/python:pull"'
                },
            )
        return _ok(_index())

    with _client(handler) as client:
        client.referrers("docker.io", "library/python", SUBJECT)
    assert calls == [
        f"GET https://registry-1.docker.io/v2/library/python/referrers/{SUBJECT}",
        "GET https://auth.docker.io/token?service=registry.docker.io"
        "&scope=repository%3Alibrary%2Fpython%3Apull",
        f"GET https://registry-1.docker.io/v2/library/python/referrers/{SUBJECT}",
    ]


def test_credentials_are_not_sent_to_a_plain_http_realm() -> None:
    from dhi_offline.errors import RegistryAuthError
    from dhi_offline.oci.auth import Credentials, StaticCredentials

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host != "auth.example", "credentials must not leave over http"
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="http://auth.example/token"'}
        )

    client = RegistryClient(
        credentials=StaticCredentials({HOST: Credentials("u", "p")}),
        transport=httpx.MockTransport(handler),
    )
    with client, pytest.raises(RegistryAuthError, match="over plain HTTP"):
        client.get_manifest(HOST, "ns/app", "v1")


def test_error_body_is_summarised_on_one_line() -> None:
    body = json.dumps(
        {"errors": [{"code": "DENIED", "message": "requested access\nto the resource is denied"}]}
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, content=body)

    from dhi_offline.errors import RegistryAuthError

    with _client(handler) as client, pytest.raises(RegistryAuthError) as info:
        client.get_manifest(HOST, "ns/app", "v1")
    assert info.value.message == (
        f"registry {HOST} repository ns/app: tag v1: access denied "
        "(HTTP 403 DENIED: requested access to the resource is denied)"
    )


def test_bad_names_never_reach_the_network() -> None:
    from dhi_offline.errors import UsageError

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with _client(handler) as client:
        with pytest.raises(UsageError, match="not a valid repository"):
            client.get_manifest(HOST, "../../etc", "v1")
        with pytest.raises(UsageError, match="not a valid registry"):
            client.get_blob("bad host/x", "ns/app", SUBJECT)
        with pytest.raises(UsageError, match="digest"):
            client.get_blob(HOST, "ns/app", "sha256:../../x")
        assert client.requests == 0


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback answering 404, and the CA file that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = tmp_path / "cert.pem"
    key_file = tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", cert_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_untrusted_tls_certificate_fails_fast(https_server: tuple[str, Path]) -> None:
    host, ca = https_server
    client = RegistryClient(
        credentials=NoCredentials(), plain_http_loopback=False, sleep=lambda _s: None
    )
    with client, pytest.raises(RegistryError) as info:
        client.get_manifest(host, "ns/app", "v1")
    assert client.requests == 1  # a certificate problem is not retried
    assert "TLS certificate verification failed" in info.value.one_line()
    assert "--insecure-registry" in info.value.one_line()
    # With the CA trusted, TLS works and the 404 comes through.
    trusted = RegistryClient(
        credentials=NoCredentials(), plain_http_loopback=False, verify_tls=str(ca)
    )
    from dhi_offline.errors import RegistryNotFoundError

    with trusted, pytest.raises(RegistryNotFoundError, match=f"registry {host} "):
        trusted.get_manifest(host, "ns/app", "v1")


def test_retry_after_with_a_non_ascii_digit_is_unparsable() -> None:
    # Regression (fault campaign): '²'.isdigit() is True but float('²') raises.
    # The registry and Rekor clients share this parser and RetryPolicy.delay.
    from dhi_offline.oci.client import RetryPolicy, retry_after_seconds

    assert retry_after_seconds("\u00b2") is None
    assert retry_after_seconds("7") == 7.0
    policy = RetryPolicy()
    assert policy.delay(1, "\u00b2", jitter=0.0) == policy.delay(1, None, jitter=0.0) == 0.25
