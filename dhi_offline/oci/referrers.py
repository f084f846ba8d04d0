"""Referrers discovery: the referrers API, its tag fallback, and what a registry has.

- **Referrers** (distribution-spec end-12, formats.md §3.5). ``GET
  /v2/<name>/referrers/<digest>[?artifactType=]``, following ``Link: <...>; rel="next"``
  on the same origin; filtered client-side unless ``OCI-Filters-Applied`` says the
  registry did it. A ``404`` falls back to the ``<alg>-<hex>`` tag, which is an index.
  With ``remember_referrers_api``, a registry's first such ``404`` is remembered (unless
  its error code is ``NAME_UNKNOWN``: a registry with the API may answer that for a
  repository it does not have) and later lookups there go straight to the tag: "if the
  registry supports the referrers API, the registry MUST NOT return a 404 Not Found"
  for a repository it has. Until a registry has answered, one lookup at a time asks it,
  so concurrent lookups make no more probes than sequential ones.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import httpx

from dhi_offline.errors import RegistryError
from dhi_offline.net.http import CHUNK_SIZE, MAX_ERROR_BODY
from dhi_offline.oci.content import DigestVerifier, ReferrersResult, referrers_tag
from dhi_offline.oci.download import RegistryReader
from dhi_offline.oci.mediatypes import (
    INDEX_TYPES,
    OCI_INDEX,
    Descriptor,
    index_manifests,
    parse_manifest,
)
from dhi_offline.oci.reference import validate_digest
from dhi_offline.oci.status import Target, error_codes, status_error

__all__ = ["ReferrersLookup"]

_LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*(?:[^,]*;\s*)*rel="?next"?', re.IGNORECASE)


class ReferrersLookup(RegistryReader):
    """Referrers of a manifest, and per registry whether it has the referrers API."""

    max_referrers_pages: int
    remember_referrers_api: bool

    def _init_referrers(self, *, remember_referrers_api: bool, max_referrers_pages: int) -> None:
        """Set the page cap and API memory (called by ``RegistryClient.__init__``)."""
        self.max_referrers_pages = max_referrers_pages
        self.remember_referrers_api = remember_referrers_api
        self._referrers_api: dict[str, bool] = {}  # guarded by self._lock
        self._referrers_probes: dict[str, threading.Lock] = {}

    def referrers_api(self, registry: str) -> bool | None:
        """Whether ``registry`` has the referrers API, as far as this client has learnt.

        None until a lookup there has told (always None without ``remember_referrers_api``).
        """
        with self._lock:
            return self._referrers_api.get(registry)

    def referrers(
        self,
        registry: str,
        repository: str,
        digest: str,
        artifact_type: str | None = None,
    ) -> ReferrersResult:
        """Referrers of ``digest``: the referrers API, else the ``<alg>-<hex>`` tag.

        Returns ``via="none"`` with no descriptors when the API is missing and the
        fallback tag does not exist.
        """
        validate_digest(digest)
        target = Target(registry, repository)
        what = f"{target.label}: referrers of {digest}"
        if not self.remember_referrers_api:
            return self._referrers(target, digest, artifact_type, what)
        known = self.referrers_api(registry)
        if known is None:
            with self._lock:
                probe = self._referrers_probes.setdefault(registry, threading.Lock())
            with probe:  # the first lookup asks; the others wait for its answer
                known = self.referrers_api(registry)
                if known is None:
                    return self._referrers(target, digest, artifact_type, what)
        if known:
            return self._referrers(target, digest, artifact_type, what)
        return self._referrers_from_tag(target, digest, artifact_type, what)

    def _learn_referrers_api(self, registry: str, supported: bool) -> None:
        if self.remember_referrers_api:
            with self._lock:
                self._referrers_api[registry] = supported

    def _referrers(
        self, target: Target, digest: str, artifact_type: str | None, what: str
    ) -> ReferrersResult:
        pages: list[bytes] = []
        descriptors: list[Descriptor] = []
        filtered_by_registry = True
        url: str | None = self._url(target, "referrers", digest)
        params = {"artifactType": artifact_type} if artifact_type else None
        visited: set[str] = set()
        while url is not None:
            if len(pages) >= self.max_referrers_pages:
                raise RegistryError(f"{what}: more than {self.max_referrers_pages} pages")
            visited.add(url)
            page = self._referrers_page(target, url, params, what)
            if isinstance(page, _NotFound):
                if pages:
                    raise RegistryError(f"{what}: a later page answered 404")
                if page.api_missing:
                    self._learn_referrers_api(target.registry, False)
                return self._referrers_from_tag(target, digest, artifact_type, what)
            if not pages:
                self._learn_referrers_api(target.registry, True)
            data, page_descriptors, filtered, next_url = page
            pages.append(data)
            descriptors.extend(page_descriptors)
            filtered_by_registry = filtered_by_registry and filtered
            params = None  # the Link URL carries the query
            if next_url is not None and next_url in visited:
                raise RegistryError(f"{what}: pagination loops back to {next_url}")
            url = next_url
        if artifact_type is not None and not filtered_by_registry:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return ReferrersResult(tuple(descriptors), "api", pages[0] if len(pages) == 1 else None)

    def _referrers_page(
        self,
        target: Target,
        url: str,
        params: dict[str, str] | None,
        what: str,
    ) -> tuple[bytes, tuple[Descriptor, ...], bool, str | None] | _NotFound:
        def handle(
            response: httpx.Response,
        ) -> tuple[bytes, tuple[Descriptor, ...], bool, str | None] | _NotFound:
            if response.status_code == 404:
                body = b""
                for chunk in response.iter_bytes(CHUNK_SIZE):  # cut short: retried as usual
                    body += chunk
                    if len(body) > MAX_ERROR_BODY:
                        return _NotFound(api_missing=False)  # not an error body: tell nothing
                return _NotFound(api_missing="NAME_UNKNOWN" not in error_codes(body))
            if response.status_code != 200:
                raise status_error(response, what)
            verifier = DigestVerifier(None, what=what, limit=self.max_manifest_size)
            data = self._read_verified(response, verifier, report_progress=False)
            obj = parse_manifest(data, what=what)
            media_type = obj.get("mediaType", OCI_INDEX)
            if media_type not in INDEX_TYPES:
                raise RegistryError(f"{what}: response is {media_type!r}, not an image index")
            applied = response.headers.get("oci-filters-applied", "")
            filtered = "artifacttype" in {f.strip().lower() for f in applied.split(",")}
            return data, index_manifests(obj, what=what), filtered, _next_link(response, what)

        return self._perform(
            "GET",
            url,
            what=what,
            handle=handle,
            registry=target.registry,
            scope=f"repository:{target.repository}:pull",
            headers={"Accept": OCI_INDEX},
            params=params,
        )

    def _referrers_from_tag(
        self, target: Target, digest: str, artifact_type: str | None, what: str
    ) -> ReferrersResult:
        tag = referrers_tag(digest)
        found = self._manifest(target, tag, missing_ok=True, what=f"{what} (fallback tag {tag})")
        if found is None:
            return ReferrersResult((), "none", None)
        if found.media_type not in INDEX_TYPES:
            raise RegistryError(
                f"{what}: fallback tag {tag} is a {found.media_type}, not an image index"
            )
        obj = parse_manifest(found.data, what=f"{what} (fallback tag {tag})")
        descriptors = index_manifests(obj, what=f"{what} (fallback tag {tag})")
        if artifact_type is not None:
            descriptors = tuple(d for d in descriptors if d.artifact_type == artifact_type)
        return ReferrersResult(descriptors, "tag", found.data)


@dataclass(frozen=True)
class _NotFound:
    """A referrers page answered 404."""

    api_missing: bool
    """The 404 means the registry has no referrers API: not ``NAME_UNKNOWN`` (the
    repository is missing, which a registry with the API may answer with 404)."""


def _next_link(response: httpx.Response, what: str) -> str | None:
    """The ``rel="next"`` Link of a referrers page, resolved and kept on the same origin."""
    link = response.headers.get("link")
    if not link:
        return None
    m = _LINK_NEXT_RE.search(link)
    if m is None:
        return None
    target = response.url.join(m.group(1))
    if (target.scheme, target.host, target.port) != (
        response.url.scheme,
        response.url.host,
        response.url.port,
    ):
        raise RegistryError(f"{what}: next page link leaves the registry ({target})")
    return str(target)
