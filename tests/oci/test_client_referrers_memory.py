"""``RegistryClient(remember_referrers_api=True)``: a registry without the API is asked once.

distribution-spec (listing referrers): "If the registry supports the referrers API, the
registry MUST NOT return a 404 Not Found to a referrers API request" for a repository it
has. So the first 404 (distribution 2.8 answers ``404 page not found``) is remembered per
registry and later lookups there go straight to the ``sha256-<hex>`` fallback tag;
a ``404 NAME_UNKNOWN`` (the repository is missing) says nothing about the API. A
registry that answers 200 keeps being asked. Checked here against in-process httpx
transports; the real distribution 2.8 case is in tests/export/test_export_registry.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dhi_offline.errors import RegistryError
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.auth import NoCredentials
from dhi_offline.oci.client import MAX_ERROR_BODY, RegistryClient
from dhi_offline.oci.content import referrers_tag
from dhi_offline.oci.layout import canonical_json

HOST = "registry.test"
OTHER = "other.test"
SUBJECTS = ["sha256:" + f"{n:064x}" for n in range(1, 5)]
REFERRER = {
    "mediaType": mt.OCI_MANIFEST,
    "digest": "sha256:" + "a" * 64,
    "size": 10,
    "artifactType": mt.IN_TOTO,
}
INDEX = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [REFERRER]})
NAME_UNKNOWN = json.dumps(
    {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}
).encode()


def _client(
    handler: Callable[[httpx.Request], httpx.Response], *, remember: bool = True
) -> RegistryClient:
    return RegistryClient(
        credentials=NoCredentials(),
        transport=httpx.MockTransport(handler),
        sleep=lambda _s: None,
        remember_referrers_api=remember,
    )


def _kind(request: httpx.Request) -> str:
    """``api`` or ``tag``, and the host."""
    return ("api " if "/referrers/" in request.url.path else "tag ") + str(request.url.host)


def _without_api(
    seen: list[str], not_found: Callable[[httpx.Request], httpx.Response] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A registry without the referrers API; every fallback tag holds INDEX."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(_kind(request))
        if "/referrers/" in request.url.path:
            if not_found is not None:
                return not_found(request)
            return httpx.Response(404, content=b"404 page not found\n")
        tag = request.url.path.rsplit("/", 1)[1]
        assert tag.startswith("sha256-")
        return httpx.Response(200, content=INDEX, headers={"Content-Type": mt.OCI_INDEX})

    return handler


def test_a_plain_404_is_remembered_per_registry() -> None:
    seen: list[str] = []
    with _client(_without_api(seen)) as client:
        assert client.referrers_api(HOST) is None
        results = [client.referrers(HOST, "ns/app", s) for s in SUBJECTS]
        assert client.referrers_api(HOST) is False
        # Another registry is still asked (the memory is per registry, not global).
        client.referrers(OTHER, "ns/app", SUBJECTS[0])
        # Other repositories on the same registry go straight to the tag.
        client.referrers(HOST, "ns/other", SUBJECTS[0])
    assert seen == [
        f"api {HOST}",
        f"tag {HOST}",
        *[f"tag {HOST}"] * (len(SUBJECTS) - 1),
        f"api {OTHER}",
        f"tag {OTHER}",
        f"tag {HOST}",
    ]
    assert all(r.via == "tag" and [d.digest for d in r.descriptors] for r in results)


def test_without_the_option_every_lookup_asks_the_api() -> None:
    seen: list[str] = []
    with _client(_without_api(seen), remember=False) as client:
        for s in SUBJECTS:
            assert client.referrers(HOST, "ns/app", s).via == "tag"
        assert client.referrers_api(HOST) is None
    assert seen == [f"api {HOST}", f"tag {HOST}"] * len(SUBJECTS)


def test_name_unknown_says_nothing_about_the_api() -> None:
    """A registry WITH the API answers 404 NAME_UNKNOWN for a repository it does not have."""
    seen: list[str] = []

    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, content=NAME_UNKNOWN, headers={"Content-Type": "application/json"}
        )

    with _client(_without_api(seen, not_found)) as client:
        client.referrers(HOST, "ns/missing", SUBJECTS[0])
        client.referrers(HOST, "ns/missing", SUBJECTS[1])
        assert client.referrers_api(HOST) is None
    assert seen == [f"api {HOST}", f"tag {HOST}"] * 2


def test_an_oversized_404_body_says_nothing_about_the_api() -> None:
    seen: list[str] = []

    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, content=b"x" * (MAX_ERROR_BODY + 1))

    with _client(_without_api(seen, not_found)) as client:
        client.referrers(HOST, "ns/app", SUBJECTS[0])
        assert client.referrers_api(HOST) is None


def test_a_registry_with_the_api_keeps_being_asked() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(_kind(request))
        assert "/referrers/" in request.url.path, "a registry with the API needs no fallback"
        empty = request.url.path.endswith(SUBJECTS[0])  # an unknown subject: 200, empty
        body = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})
        return httpx.Response(
            200, content=body if empty else INDEX, headers={"Content-Type": mt.OCI_INDEX}
        )

    with _client(handler) as client:
        first = client.referrers(HOST, "ns/app", SUBJECTS[0])
        assert client.referrers_api(HOST) is True
        later = [client.referrers(HOST, "ns/app", s) for s in SUBJECTS[1:]]
    assert first.via == "api" and first.descriptors == ()
    assert all(r.via == "api" and len(r.descriptors) == 1 for r in later)
    assert seen == [f"api {HOST}"] * len(SUBJECTS)


def test_a_failed_probe_is_not_remembered() -> None:
    """A 500 (after retries) is an error, not an answer about the API."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(_kind(request))
        if len(calls) <= 5:  # RetryPolicy.max_attempts: the first lookup fails
            return httpx.Response(500)
        return _without_api([])(request)

    with _client(handler) as client:
        with pytest.raises(RegistryError, match="HTTP 500"):
            client.referrers(HOST, "ns/app", SUBJECTS[0])
        assert client.referrers_api(HOST) is None
        assert client.referrers(HOST, "ns/app", SUBJECTS[1]).via == "tag"
        assert client.referrers_api(HOST) is False
    assert calls[5:] == [f"api {HOST}", f"tag {HOST}"]


def test_concurrent_lookups_probe_the_api_once() -> None:
    """Threads asking a registry not yet probed wait for the first answer."""
    seen: list[str] = []
    lock = threading.Lock()
    inner = _without_api(seen)

    def handler(request: httpx.Request) -> httpx.Response:
        if "/referrers/" in request.url.path:
            # Hold the probe so the other threads pile up behind it (without the probe
            # lock they would each send their own API request meanwhile).
            time.sleep(0.2)
        with lock:
            return inner(request)

    subjects = ["sha256:" + f"{n:064x}" for n in range(100, 116)]
    with _client(handler) as client, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda s: client.referrers(HOST, "ns/app", s), subjects))
    assert seen.count(f"api {HOST}") == 1
    assert seen.count(f"tag {HOST}") == len(subjects)
    assert all(r.via == "tag" for r in results)


def test_the_fallback_tag_is_the_subjects_own() -> None:
    """Going straight to the tag still asks for ``<alg>-<hex>`` of the subject asked about."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return _without_api([])(request)

    with _client(handler) as client:
        for s in SUBJECTS[:2]:
            client.referrers(HOST, "ns/app", s)
    assert paths[-1] == f"/v2/ns/app/manifests/{referrers_tag(SUBJECTS[1])}"
