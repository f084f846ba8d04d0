"""A proxy that gives Debian's ``docker-registry`` (distribution 2.8) the OCI 1.1 referrers API.

distribution 2.8 answers ``/v2/<name>/referrers/<digest>`` with 404, so clients keep the
``<alg>-<hex>`` fallback tag index. :class:`ReferrersProxy` sits in front of a
:func:`~tests.support.registry.run_registry` instance and turns it into a registry
*with* the API (distribution-spec v1.1):

- a manifest ``PUT`` the registry accepted (201) whose body has a ``subject`` is
  recorded as a referrer of that subject, and answered with ``OCI-Subject: <digest>``,
  which tells clients not to write the fallback tag;
- ``GET /v2/<name>/referrers/<digest>[?artifactType=X]`` is answered by the proxy with
  an image index of the recorded referrers (filtered, with ``OCI-Filters-Applied``,
  when asked); an unknown subject gives an empty index, never 404;
- a manifest ``DELETE`` by digest the registry accepted drops the referrer again.

Everything else is forwarded unchanged. It is a :class:`~tests.support.registry.FaultProxy`,
so a fault ``plan`` applies to its requests too (including the referrers answers).
Referrers live in the proxy's memory: they are lost with it, and manifests pushed
to the registry directly, not through the proxy, are not recorded. The referrers
endpoint asks for no credentials, so put it in front of an anonymous registry.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dhi_offline.oci import mediatypes as mt
from tests.support.registry import Fault, FaultProxy

_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
_FALLBACK_TAG = re.compile(r"^sha(256|512)-[0-9a-f]+$")

Response = tuple[int, list[tuple[str, str]], bytes]


def path_kind(path: str) -> str:
    """What a registry API path addresses, for counting requests.

    One of ``base`` (``/v2/``), ``referrers``, ``manifest-digest``, ``fallback-tag``
    (a ``sha256-<hex>`` tag), ``manifest-tag``, ``blob-upload``, ``blob``, ``tags``
    or ``other``.
    """
    path = urlsplit(path).path
    if path in ("/v2", "/v2/"):
        return "base"
    if _REFERRERS.match(path):
        return "referrers"
    if m := _MANIFEST.match(path):
        ref = m["ref"]
        if _DIGEST.match(ref):
            return "manifest-digest"
        return "fallback-tag" if _FALLBACK_TAG.match(ref) else "manifest-tag"
    if "/blobs/uploads/" in path or path.endswith("/blobs/uploads"):
        return "blob-upload"
    if re.search(r"/blobs/[^/]+$", path):
        return "blob"
    if path.endswith("/tags/list"):
        return "tags"
    return "other"


class ReferrersProxy(FaultProxy):
    """``upstream`` (``host:port`` of a registry) with the OCI 1.1 referrers API added.

    A context manager, like :class:`FaultProxy`: ``host`` is ``127.0.0.1:PORT`` and
    ``url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(self, upstream: str, plan: list[Fault] | None = None) -> None:
        # (repository, subject digest) -> referrer digest -> descriptor JSON, in push order.
        self._referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        super().__init__(upstream, plan)

    def __enter__(self) -> ReferrersProxy:
        super().__enter__()
        return self

    # -- what tests look at -----------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request so far as (method, path without the query), in arrival order."""
        with self._lock:
            lines = [e.request for e in self.events]
        out = []
        for line in lines:
            method, _, target = line.partition(" ")
            out.append((method, urlsplit(target).path))
        return out

    def counts(self) -> Counter[tuple[str, str]]:
        """Requests so far per (method, :func:`path_kind`), e.g. ``("PUT", "fallback-tag")``."""
        return Counter((method, path_kind(path)) for method, path in self.requests)

    def referrers_of(self, repository: str, subject: str) -> list[dict[str, Any]]:
        """The descriptors recorded for ``subject`` in ``repository`` (copies)."""
        with self._lock:
            found = self._referrers.get((repository, subject), {})
            return [json.loads(json.dumps(d)) for d in found.values()]

    # -- bookkeeping ------------------------------------------------------------------

    def _record(
        self,
        repository: str,
        body: bytes,
        content_type: str | None,
        upstream_headers: list[tuple[str, str]],
    ) -> str | None:
        """Record an accepted manifest as a referrer; its subject digest, or None."""
        try:
            obj = json.loads(body)
        except ValueError:
            return None
        subject = obj.get("subject") if isinstance(obj, dict) else None
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(digest, str):
            return None
        served = {k.lower(): v for k, v in upstream_headers}.get("docker-content-digest")
        referrer = served or "sha256:" + hashlib.sha256(body).hexdigest()
        # The registry stores the manifest under the Content-Type it was pushed with.
        media_type = (content_type or "").split(";")[0].strip() or obj.get("mediaType")
        if not isinstance(media_type, str):
            media_type = mt.OCI_MANIFEST
        descriptor = mt.referrer_descriptor(obj, media_type, referrer, len(body)).to_json()
        with self._lock:
            self._referrers.setdefault((repository, digest), {})[referrer] = descriptor
        return digest

    def _forget(self, repository: str, referrer: str) -> None:
        with self._lock:
            for (name, _), found in self._referrers.items():
                if name == repository:
                    found.pop(referrer, None)

    def _referrers_response(self, repository: str, subject: str, query: str) -> Response:
        if not _DIGEST.match(subject):
            body = json.dumps(
                {"errors": [{"code": "DIGEST_INVALID", "message": f"bad digest {subject!r}"}]}
            ).encode()
            return 400, [("Content-Type", "application/json")], body
        artifact_type = parse_qs(query).get("artifactType", [None])[0]
        descriptors = self.referrers_of(repository, subject)
        headers = [
            ("Content-Type", mt.OCI_INDEX),
            ("Docker-Distribution-API-Version", "registry/2.0"),
        ]
        if artifact_type is not None:
            descriptors = [d for d in descriptors if d.get("artifactType") == artifact_type]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
        return 200, headers, json.dumps(index).encode()

    # -- the handler ------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        base = super()._handler_class()

        # BaseHTTPRequestHandler again only to tell mypy what the dynamic base is.
        class Handler(base, BaseHTTPRequestHandler):  # type: ignore[misc,valid-type]
            def _forward(self) -> Response:
                parts = urlsplit(self.path)
                referrers = _REFERRERS.match(parts.path)
                if referrers and self.command in ("GET", "HEAD"):
                    return proxy._referrers_response(
                        referrers["name"], referrers["digest"], parts.query
                    )
                manifest = _MANIFEST.match(parts.path)
                if manifest and self.command == "PUT":
                    return self._put_manifest(manifest["name"])
                status, headers, data = super()._forward()
                if manifest and self.command == "DELETE" and status == 202:
                    proxy._forget(manifest["name"], manifest["ref"])
                return status, headers, data

            def _put_manifest(self, repository: str) -> Response:
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                # The base class reads the body it forwards from rfile: hand it a copy.
                rfile = self.rfile
                self.rfile = io.BytesIO(body)
                try:
                    status, headers, data = super()._forward()
                finally:
                    self.rfile = rfile
                if status == 201:
                    content_type = self.headers.get("Content-Type")
                    subject = proxy._record(repository, body, content_type, headers)
                    if subject is not None:
                        headers.append(("OCI-Subject", subject))
                return status, headers, data

        return Handler
