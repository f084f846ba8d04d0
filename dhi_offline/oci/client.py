"""An OCI distribution client on httpx: manifests, blobs, referrers, uploads, with auth.

What it does, and where the rule comes from:

- **Transport.** HTTPS; plain HTTP for registries listed as insecure and, as Docker
  does, for loopback registries (``localhost``, ``127.0.0.0/8``, ``[::1]``).
  ``docker.io`` is reached at ``registry-1.docker.io``.
- **Auth** (distribution ``docs/spec/auth/token.md``, ``oauth.md``). Requests go out
  anonymously until a ``401`` names a scheme. ``Basic``: the configured credentials
  are sent from then on. ``Bearer``: a token for ``repository:<name>:pull`` (reads) or
  ``repository:<name>:pull,push`` (uploads; a mount adds ``repository:<from>:pull``,
  each scope its own ``scope`` parameter) is fetched from the challenge's realm
  (``GET realm?service=&scope=`` with Basic credentials if any; ``POST``
  grant_type=refresh_token with an identity token), cached per scope until it expires,
  and then fetched directly for new scopes without another 401. A request that still
  gets ``401`` after one fresh token or credential fails with :class:`RegistryAuthError`.
- **Retries** come from the shared loop of :mod:`dhi_offline.net.http`: ``408``,
  ``429``, ``5xx`` (but 501/505), connection errors, read timeouts and connections
  dropped mid-body are retried with exponential backoff and jitter, up to
  ``RetryPolicy.max_attempts``; ``Retry-After`` (seconds or an HTTP date) is honoured up
  to ``retry_after_cap``. Sleeping goes through an injectable function. The 401 dance
  above runs on top of that loop and does not count as an attempt.
- **Integrity.** Every manifest and blob is hashed (sha256 or sha512, from its digest)
  and counted while it streams; the download stops as soon as it passes the size limit
  or its declared size. A tag's manifest is checked against ``Docker-Content-Digest``.
  Wrong bytes raise :class:`DigestMismatchError` (not retried: fail closed).
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
- **Uploads** (distribution-spec "Pushing blobs", "Mounting a blob from another
  repository", "Pushing manifests"). A blob is first looked for with ``HEAD
  /v2/<name>/blobs/<digest>``. A mount is ``POST /v2/<name>/blobs/uploads/?mount=&from=``:
  ``201`` means mounted, ``202`` starts an ordinary upload at its ``Location``. Up to
  ``chunk_size`` bytes go monolithically (``POST``, then ``PUT <location>?digest=`` with
  the body); more go in chunks (``PATCH <location>`` with ``Content-Range:
  <start>-<end>``, inclusive, following each answer's new ``Location``, then ``PUT
  <location>?digest=`` without a body), read from a file one chunk at a time. The bytes
  are hashed and counted as they are read; bytes that are not ``digest``/``size`` raise
  :class:`DigestMismatchError` before the final ``PUT``, so nothing is committed (the
  session is cancelled with ``DELETE``, best effort). Upload locations must stay on the
  registry's origin (credentials go with them). ``HEAD /v2/<name>/manifests/<ref>``
  tells whether a manifest exists, falling back to ``GET`` when the registry sends no
  ``Docker-Content-Digest``.
- **Errors** are translated here: callers see only the RegistryError family, one line,
  naming registry, repository and the object requested.

The client is safe to share between the threads of a bounded pool; ``concurrency`` is
the pool size it was configured for (its connection limit).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import random
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self, TypeVar

import httpx

from dhi_offline.errors import (
    DhiError,
    DigestMismatchError,
    InputError,
    MalformedEvidenceError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    SizeLimitError,
)
from dhi_offline.evidence.encoding import loads_json
from dhi_offline.net.http import (
    CHUNK_SIZE,
    MAX_ERROR_BODY,
    USER_AGENT,
    Params,
    RetryPolicy,
    describe_transport_error,
    drain,
    error_excerpt,
    make_client,
    one_line,
    read_limited,
    retry_after_seconds,
    send,
    tls_verification_error,
)
from dhi_offline.oci.auth import (
    Challenge,
    Credentials,
    CredentialStore,
    DockerConfigCredentials,
    parse_www_authenticate,
)
from dhi_offline.oci.content import (
    MAX_BLOB_SIZE,
    MAX_MANIFEST_SIZE,
    DigestVerifier,
    Fetched,
    ReferrersResult,
    new_hasher,
    referrers_tag,
    verify_bytes,
)
from dhi_offline.oci.mediatypes import (
    ACCEPT_MANIFESTS,
    INDEX_TYPES,
    OCI_INDEX,
    OCTET_STREAM,
    Descriptor,
    index_manifests,
    manifest_media_type,
    parse_manifest,
    sha256_digest,
)
from dhi_offline.oci.reference import (
    DEFAULT_REGISTRY,
    is_digest,
    is_loopback,
    split_host_port,
    validate_digest,
    validate_registry,
    validate_repository,
    validate_tag,
)

__all__ = [
    "DEFAULT_UPLOAD_CHUNK",
    "DOCKER_HUB_API_HOST",
    "MAX_ERROR_BODY",
    "MAX_TOKEN_RESPONSE",
    "USER_AGENT",
    "BlobPush",
    "RegistryClient",
    "RetryPolicy",
    "retry_after_seconds",
]

T = TypeVar("T")

BlobPush = Literal["present", "mounted", "uploaded"]
"""How :meth:`RegistryClient.upload_blob` got a blob into a repository: it was there
already, the registry mounted it from another repository, or its bytes were sent."""

DOCKER_HUB_API_HOST = "registry-1.docker.io"
MAX_TOKEN_RESPONSE = 1024 * 1024
DEFAULT_UPLOAD_CHUNK = 8 * 1024 * 1024
"""Blobs up to this size are uploaded in one request; larger ones in chunks this size."""
_LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*(?:[^,]*;\s*)*rel="?next"?', re.IGNORECASE)
_RANGE_RE = re.compile(r"(?:bytes=)?0-(\d+)")
_TOKEN_MIN_LIFETIME = 60.0  # token spec: expires_in defaults to 60 s


@dataclass
class _RegistryAuth:
    """What we learnt about a registry's authentication from its challenge."""

    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


@dataclass(frozen=True)
class _Target:
    """A repository on a registry, with the text naming it in messages."""

    registry: str
    repository: str

    def __post_init__(self) -> None:
        validate_registry(self.registry)
        validate_repository(self.repository)

    @property
    def label(self) -> str:
        """``registry HOST repository NAME``: how messages name the target."""
        return f"registry {self.registry} repository {self.repository}"


class RegistryClient:
    """A thread-safe OCI distribution client (see the module docstring for behaviour).

    Args:
        credentials: where credentials come from; defaults to the Docker CLI config.
        insecure_registries: ``HOST[:PORT]`` entries spoken to over plain HTTP (a bare
            host matches every port).
        plain_http_loopback: speak HTTP to loopback registries (Docker's default).
        concurrency: the caller's thread-pool size; sets the connection limit.
        timeout: connect/read/write timeout in seconds.
        retry: retry policy.
        sleep: called with each backoff delay (tests pass a recorder).
        jitter: returns a float in [0, 1) that spreads backoff delays.
        progress: called with byte counts as blobs arrive (negative when a partial
            download is discarded before a retry).
        max_manifest_size: cap on manifests, indexes and referrers pages.
        max_blob_size: default cap on blobs.
        verify_tls: ``True``, a CA bundle path, or an ``ssl.SSLContext``.
        transport: an httpx transport to use instead of the network (tests).
        remember_referrers_api: remember per registry that the referrers API is missing
            (see the module docstring) instead of asking for it on every lookup.
    """

    def __init__(
        self,
        *,
        credentials: CredentialStore | None = None,
        insecure_registries: Iterable[str] = (),
        plain_http_loopback: bool = True,
        concurrency: int = 8,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        progress: Callable[[int], None] | None = None,
        max_manifest_size: int = MAX_MANIFEST_SIZE,
        max_blob_size: int = MAX_BLOB_SIZE,
        max_referrers_pages: int = 64,
        verify_tls: bool | str | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = USER_AGENT,
        remember_referrers_api: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.credentials: CredentialStore = (
            credentials if credentials is not None else DockerConfigCredentials()
        )
        self.insecure_registries = frozenset(insecure_registries)
        self.plain_http_loopback = plain_http_loopback
        self.concurrency = concurrency
        self.retry = retry if retry is not None else RetryPolicy()
        self.sleep = sleep
        self.jitter = jitter
        self.progress = progress
        self.max_manifest_size = max_manifest_size
        self.max_blob_size = max_blob_size
        self.max_referrers_pages = max_referrers_pages
        self.requests = 0
        """HTTP requests sent (redirects, token requests and failed attempts included)."""
        self._lock = threading.Lock()
        self._auth: dict[str, _RegistryAuth] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self.remember_referrers_api = remember_referrers_api
        self._referrers_api: dict[str, bool] = {}
        self._referrers_probes: dict[str, threading.Lock] = {}
        self._http = make_client(
            timeout=timeout,
            verify=verify_tls,
            user_agent=user_agent,
            concurrency=concurrency,
            headers={"Accept-Encoding": "identity"},
            transport=transport,
            event_hooks={"request": [self._count_request]},
        )

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _count_request(self, request: httpx.Request) -> None:
        with self._lock:
            self.requests += 1

    # -- endpoints -------------------------------------------------------------------

    def scheme_for(self, registry: str) -> str:
        """``http`` for insecure-listed and (by default) loopback registries, else ``https``."""
        host, _ = split_host_port(registry)
        if registry in self.insecure_registries or host in self.insecure_registries:
            return "http"
        if self.plain_http_loopback and is_loopback(registry):
            return "http"
        return "https"

    def base_url(self, registry: str) -> str:
        """``scheme://host[:port]`` of the registry's API (Docker Hub's API host for docker.io)."""
        host = DOCKER_HUB_API_HOST if registry == DEFAULT_REGISTRY else registry
        return f"{self.scheme_for(registry)}://{host}"

    def _url(self, target: _Target, kind: str, ref: str) -> str:
        return f"{self.base_url(target.registry)}/v2/{target.repository}/{kind}/{ref}"

    # -- the request loop ------------------------------------------------------------

    def _perform(
        self,
        method: str,
        url: str,
        *,
        what: str,
        handle: Callable[[httpx.Response], T],
        registry: str | None = None,
        scope: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: Params | None = None,
    ) -> T:
        """Send one logical request with auth and retries; ``handle`` consumes the response.

        ``registry`` set means the request is authenticated against that registry (with
        ``scope`` for bearer tokens): a ``401`` teaches the client the scheme once, and
        a second one fails. The retries are :func:`dhi_offline.net.http.send`'s.
        """
        authorize: Callable[[], str | None] | None = None
        on_unauthorized: Callable[[httpx.Headers], None] | None = None
        if registry is not None:
            authenticated = registry
            reauthenticated = False

            def credentials() -> str | None:
                return self._authorization(authenticated, scope, what)

            def challenged(response_headers: httpx.Headers) -> None:
                nonlocal reauthenticated
                if reauthenticated:
                    raise self._refused(authenticated, what)
                reauthenticated = True
                challenge = response_headers.get("www-authenticate", "")
                self._on_challenge(authenticated, scope, challenge, what)

            authorize, on_unauthorized = credentials, challenged

        def fail(e: httpx.HTTPError | httpx.InvalidURL, attempts: int) -> DhiError:
            if not isinstance(e, httpx.TransportError):  # redirects, decoding, bad URLs
                return RegistryError(f"{what}: {one_line(str(e)) or type(e).__name__}")
            hint = ""
            if tls_verification_error(e) is not None:
                hint = "; for a registry without a trusted certificate use --insecure-registry"
            return RegistryError(f"{what}: {describe_transport_error(e, attempts)}{hint}")

        return send(
            self._http,
            method,
            url,
            handle=handle,
            fail=fail,
            policy=self.retry,
            sleep=self.sleep,
            jitter=self.jitter,
            headers=headers,
            authorize=authorize,
            content=content,
            params=params,
            on_unauthorized=on_unauthorized,
        )

    # -- authentication --------------------------------------------------------------

    def _authorization(self, registry: str, scope: str | None, what: str) -> str | None:
        with self._lock:
            known = self._auth.get(registry)
        if known is None:
            return None
        creds = self.credentials.get(registry)
        if known.scheme == "basic":
            if creds is None or not creds.has_password:
                return None
            pair = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        token = self._token(registry, known.params, scope, creds, what, refresh=False)
        return f"Bearer {token}"

    def _refused(self, registry: str, what: str) -> RegistryAuthError:
        creds = self.credentials.get(registry)
        if creds is None:
            return RegistryAuthError(
                f"{what}: authentication required and no credentials for {registry} "
                f"(docker login {registry})"
            )
        return RegistryAuthError(f"{what}: the registry refused the credentials for {registry}")

    def _on_challenge(self, registry: str, scope: str | None, header: str, what: str) -> None:
        """Learn the scheme from a 401 and get fresh credentials for the retry."""
        challenges = {c.scheme: c for c in parse_www_authenticate(header)}
        chosen: Challenge | None = challenges.get("bearer") or challenges.get("basic")
        creds = self.credentials.get(registry)
        if chosen is None:
            raise RegistryAuthError(
                f"{what}: authentication required but the registry sent no usable "
                f"challenge ({one_line(header) or 'no WWW-Authenticate header'})"
            )
        if chosen.scheme == "basic":
            if creds is None or not creds.has_password:
                raise RegistryAuthError(
                    f"{what}: authentication required and no credentials for {registry} "
                    f"(docker login {registry})"
                )
            with self._lock:
                self._auth[registry] = _RegistryAuth("basic", {})
            return
        if "realm" not in chosen.params:
            raise RegistryAuthError(f"{what}: Bearer challenge without a realm")
        with self._lock:
            self._auth[registry] = _RegistryAuth("bearer", dict(chosen.params))
        self._token(registry, chosen.params, scope, creds, what, refresh=True)

    def _token(
        self,
        registry: str,
        params: dict[str, str],
        scope: str | None,
        creds: Credentials | None,
        what: str,
        *,
        refresh: bool,
    ) -> str:
        """A bearer token for (registry, scope), from the cache unless ``refresh``."""
        if creds is not None and creds.registry_token is not None:
            return creds.registry_token
        key = (registry, scope or "")
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and not refresh and cached[1] > now:
            return cached[0]
        token, lifetime = self._fetch_token(registry, params, scope, creds, what)
        with self._lock:
            # Renew a little early, so a token does not expire between check and use.
            self._tokens[key] = (token, now + max(lifetime * 0.9, lifetime - 30.0))
        return token

    def _fetch_token(
        self,
        registry: str,
        params: dict[str, str],
        scope: str | None,
        creds: Credentials | None,
        what: str,
    ) -> tuple[str, float]:
        realm = params["realm"]
        try:
            realm_url = httpx.URL(realm)
        except httpx.InvalidURL as e:
            raise RegistryAuthError(f"{what}: token realm {realm!r} is not a URL") from e
        if realm_url.scheme not in ("http", "https"):
            raise RegistryAuthError(f"{what}: token realm {realm!r} is not http(s)")
        if creds is not None and realm_url.scheme == "http":
            realm_host = realm_url.netloc.decode("ascii")
            if not (is_loopback(realm_host) or self.scheme_for(realm_host) == "http"):
                raise RegistryAuthError(
                    f"{what}: refusing to send credentials to {realm} over plain HTTP"
                )
        query: dict[str, str | list[str]] = {}
        if "service" in params:
            query["service"] = params["service"]
        wanted_scope = scope or params.get("scope")
        if wanted_scope:
            # token.md: one scope parameter per scope; oauth.md: one space-delimited field.
            query["scope"] = wanted_scope.split()
        token_what = f"{what}: token from {realm}"
        headers: dict[str, str] = {}
        method = "GET"
        body: bytes | None = None
        if creds is not None and creds.identity_token is not None:
            # OAuth2 refresh-token grant (distribution docs/spec/auth/oauth.md).
            method = "POST"
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "dhi-offline",
            }
            if "service" in params:
                form["service"] = params["service"]
            if wanted_scope:
                form["scope"] = wanted_scope
            body = urllib.parse.urlencode(form).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            query = {}
        elif creds is not None and creds.has_password:
            pair = f"{creds.username}:{creds.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")

        def handle(response: httpx.Response) -> tuple[str, float]:
            if response.status_code in (401, 403):
                drain(response)
                who = "anonymous access" if creds is None else f"the credentials for {registry}"
                raise RegistryAuthError(
                    f"{token_what}: refused {who} (HTTP {response.status_code})"
                )
            if response.status_code != 200:
                raise _status_error(response, token_what)
            data = read_limited(response, MAX_TOKEN_RESPONSE, what=token_what, error=SizeLimitError)
            try:
                answer = loads_json(data, what=token_what)
            except MalformedEvidenceError as e:
                raise RegistryAuthError(f"{token_what}: response is not JSON") from e
            if not isinstance(answer, dict):
                raise RegistryAuthError(f"{token_what}: response is not a JSON object")
            token = answer.get("token") or answer.get("access_token")
            if not isinstance(token, str) or not token:
                raise RegistryAuthError(f"{token_what}: response has no token")
            expires_in: object = answer.get("expires_in")
            lifetime = _TOKEN_MIN_LIFETIME
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
                lifetime = float(expires_in)
            return token, max(lifetime, 1.0)

        return self._perform(
            method,
            realm,
            what=token_what,
            handle=handle,
            headers=headers,
            content=body,
            params=query or None,
        )

    # -- reading ---------------------------------------------------------------------

    def _read_verified(
        self,
        response: httpx.Response,
        verifier: DigestVerifier,
        *,
        report_progress: bool,
    ) -> bytes:
        """Read a body through ``verifier``, stopping at the first violated limit."""
        length = response.headers.get("content-length")
        if (
            length is not None
            and length.isascii()
            and length.isdigit()
            and "content-encoding" not in response.headers
        ):
            verifier.check_declared_length(int(length))
        chunks: list[bytes] = []
        reported = 0
        progress = self.progress if report_progress else None
        try:
            for chunk in response.iter_bytes(CHUNK_SIZE):
                verifier.update(chunk)
                chunks.append(chunk)
                if progress is not None:
                    progress(len(chunk))
                    reported += len(chunk)
        except BaseException:
            if progress is not None and reported:
                progress(-reported)
            raise
        verifier.finish()
        return b"".join(chunks)

    def _manifest(
        self, target: _Target, ref: str, *, missing_ok: bool, what: str
    ) -> Fetched | None:
        url = self._url(target, "manifests", ref)
        by_digest = is_digest(ref)

        def handle(response: httpx.Response) -> Fetched | None:
            if response.status_code == 404 and missing_ok:
                drain(response)
                return None
            if response.status_code != 200:
                raise _status_error(response, what)
            verifier = DigestVerifier(
                ref if by_digest else None, what=what, limit=self.max_manifest_size
            )
            data = self._read_verified(response, verifier, report_progress=False)
            digest = ref if by_digest else sha256_digest(data)
            served = response.headers.get("docker-content-digest")
            if served and not by_digest and is_digest(served):
                verify_bytes(data, served, what=f"{what} (Docker-Content-Digest {served})")
            obj = parse_manifest(data, what=what)
            declared = response.headers.get("content-type", "").split(";")[0].strip()
            return Fetched(manifest_media_type(obj, declared or None, what=what), digest, data)

        return self._perform(
            "GET",
            url,
            what=what,
            handle=handle,
            registry=target.registry,
            scope=f"repository:{target.repository}:pull",
            headers={"Accept": ACCEPT_MANIFESTS},
        )

    def get_manifest(self, registry: str, repository: str, ref: str) -> Fetched:
        """The manifest or index at tag or digest ``ref``, verified.

        Raises:
            RegistryNotFoundError: no such tag/manifest (or repository).
            DigestMismatchError: the bytes are not those of the digest asked for.
        """
        target = _Target(registry, repository)
        kind = "manifest" if is_digest(ref) else "tag"
        if kind == "tag":
            validate_tag(ref)
        what = f"{target.label}: {kind} {ref}"
        found = self._manifest(target, ref, missing_ok=False, what=what)
        if found is None:  # missing_ok=False raises first; never trust that silently
            raise RegistryNotFoundError(f"{what}: not found")
        return found

    def get_tag(self, registry: str, repository: str, tag: str) -> Fetched | None:
        """The manifest tagged ``tag``, or None when the tag (or repository) does not exist."""
        target = _Target(registry, repository)
        validate_tag(tag)
        return self._manifest(target, tag, missing_ok=True, what=f"{target.label}: tag {tag}")

    def get_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        size: int | None = None,
        *,
        limit: int | None = None,
    ) -> bytes:
        """Blob ``digest``, checked against digest and ``size`` while it streams.

        Raises:
            SizeLimitError: over ``limit`` (default ``max_blob_size``); stopped early.
            DigestMismatchError: wrong bytes, or more/fewer than ``size``.
        """
        validate_digest(digest)
        target = _Target(registry, repository)
        what = f"{target.label}: blob {digest}"

        def handle(response: httpx.Response) -> bytes:
            if response.status_code != 200:
                raise _status_error(response, what)
            verifier = DigestVerifier(
                digest,
                what=what,
                expected_size=size,
                limit=self.max_blob_size if limit is None else limit,
            )
            return self._read_verified(response, verifier, report_progress=True)

        return self._perform(
            "GET",
            self._url(target, "blobs", digest),
            what=what,
            handle=handle,
            registry=registry,
            scope=f"repository:{repository}:pull",
        )

    def download_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        out: IO[bytes],
        *,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        """Stream blob ``digest`` into ``out`` (never whole in memory), checked as it goes.

        A retried attempt starts ``out`` again from where it was. On an error ``out``
        holds partial bytes: the caller writes to a temporary file and discards it.

        Raises:
            SizeLimitError: over ``limit`` (default ``max_blob_size``); stopped early.
            DigestMismatchError: wrong bytes, or more/fewer than ``size``.
        """
        validate_digest(digest)
        target = _Target(registry, repository)
        what = f"{target.label}: blob {digest}"
        start = out.tell()

        def handle(response: httpx.Response) -> None:
            if response.status_code != 200:
                raise _status_error(response, what)
            out.seek(start)
            out.truncate()
            verifier = DigestVerifier(
                digest,
                what=what,
                expected_size=size,
                limit=self.max_blob_size if limit is None else limit,
            )
            for chunk in response.iter_bytes(CHUNK_SIZE):
                verifier.update(chunk)
                out.write(chunk)
            verifier.finish()

        self._perform(
            "GET",
            self._url(target, "blobs", digest),
            what=what,
            handle=handle,
            registry=registry,
            scope=f"repository:{repository}:pull",
        )

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
        target = _Target(registry, repository)
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
        self, target: _Target, digest: str, artifact_type: str | None, what: str
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
        target: _Target,
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
                return _NotFound(api_missing="NAME_UNKNOWN" not in _error_codes(body))
            if response.status_code != 200:
                raise _status_error(response, what)
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
        self, target: _Target, digest: str, artifact_type: str | None, what: str
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

    # -- writing (uploads, imports, test fixtures) -----------------------------------

    def blob_exists(self, registry: str, repository: str, digest: str) -> bool:
        """Whether ``repository`` has blob ``digest`` (``HEAD``, asked with push scope)."""
        validate_digest(digest)
        target = _Target(registry, repository)
        return self._blob_exists(
            target, digest, f"{target.label}: blob {digest}", _push_scope(repository)
        )

    def upload_blob(
        self,
        registry: str,
        repository: str,
        content: bytes | Path,
        *,
        digest: str,
        size: int,
        media_type: str = OCTET_STREAM,
        mount_from: str | None = None,
        chunk_size: int = DEFAULT_UPLOAD_CHUNK,
    ) -> BlobPush:
        """Put blob ``digest`` of ``size`` bytes into ``repository`` unless it is there.

        ``content`` is the bytes or a file holding them. Up to ``chunk_size`` bytes go
        in one request; more go in ``PATCH`` requests of ``chunk_size`` bytes, read from
        the file one chunk at a time (module docstring, "Uploads"). With ``mount_from``,
        another repository on the same registry, the registry is first asked to mount
        the blob from there. ``media_type`` is not sent: blobs are stored untyped and
        every upload body is ``application/octet-stream``.

        Each request is retried like any other; a failure mid-upload raises and leaves
        the session uncommitted, and calling again starts over from a new ``POST``.

        Returns:
            ``"present"``, ``"mounted"`` or ``"uploaded"``.

        Raises:
            DigestMismatchError: the content is not ``size`` bytes hashing to ``digest``
                (found before anything is committed).
            InputError: the file cannot be read.
            RegistryError: the registry refused or failed.
        """
        validate_digest(digest)
        if size < 0:
            raise ValueError("size must not be negative")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        target = _Target(registry, repository)
        scope = _push_scope(repository)
        if mount_from is not None:
            validate_repository(mount_from)
            scope += f" repository:{mount_from}:pull"
        upload = _Upload(target, digest, size, f"{target.label}: blob upload {digest}", scope)
        if self._blob_exists(target, digest, upload.what, scope):
            return "present"
        if isinstance(content, bytes) or size <= chunk_size:
            data = content if isinstance(content, bytes) else _read_small(content, upload)
            check = upload.check()  # refused before the registry sees a byte
            check.update(data)
            check.finish()
            if len(data) <= chunk_size:
                return self._upload(upload, data, mount_from)
            return self._upload(upload, _slices(data, chunk_size), mount_from)
        with _open(content, upload.what) as stream:  # an unreadable file starts no session
            return self._upload(upload, _reads(stream, chunk_size, upload.what), mount_from)

    def manifest_exists(self, registry: str, repository: str, ref: str) -> Descriptor | None:
        """The descriptor of manifest ``ref`` (tag or digest), or None when it is not there.

        ``HEAD`` with the manifest ``Accept`` header (asked with push scope): media type,
        digest and size come from ``Content-Type``, ``Docker-Content-Digest`` and
        ``Content-Length``. When one is missing (the digest header is optional), the
        manifest is fetched, verified and hashed instead.

        Raises:
            RegistryError: the registry failed, or names a digest other than ``ref``.
        """
        target = _Target(registry, repository)
        by_digest = is_digest(ref)
        if not by_digest:
            validate_tag(ref)
        what = f"{target.label}: {'manifest' if by_digest else 'tag'} {ref}"

        def handle(response: httpx.Response) -> httpx.Headers | None:
            if response.status_code not in (200, 404):
                raise _status_error(response, what)
            drain(response)
            return response.headers if response.status_code == 200 else None

        headers = self._perform(
            "HEAD",
            self._url(target, "manifests", ref),
            what=what,
            handle=handle,
            registry=registry,
            scope=_push_scope(repository),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        if headers is None:
            return None
        served = headers.get("docker-content-digest", "")
        if by_digest and served and served != ref:
            raise RegistryError(f"{what}: registry answered for {served}")
        media_type = headers.get("content-type", "").split(";")[0].strip()
        length = headers.get("content-length", "")
        if is_digest(served) and media_type and length.isascii() and length.isdigit():
            return Descriptor(media_type, served, int(length))
        found = self._manifest(target, ref, missing_ok=True, what=what)
        return None if found is None else found.descriptor()

    def push_blob(
        self, registry: str, repository: str, data: bytes, media_type: str = OCTET_STREAM
    ) -> Descriptor:
        """Upload ``data`` as a blob unless it is already there (see :meth:`upload_blob`)."""
        digest = sha256_digest(data)
        self.upload_blob(
            registry, repository, data, digest=digest, size=len(data), media_type=media_type
        )
        return Descriptor(media_type, digest, len(data))

    def _blob_exists(self, target: _Target, digest: str, what: str, scope: str) -> bool:
        def handle(response: httpx.Response) -> bool:
            if response.status_code not in (200, 404):
                raise _status_error(response, what)
            drain(response)
            return response.status_code == 200

        return self._perform(
            "HEAD",
            self._url(target, "blobs", digest),
            what=what,
            handle=handle,
            registry=target.registry,
            scope=scope,
        )

    def _upload(
        self, upload: _Upload, content: bytes | Iterator[bytes], mount_from: str | None
    ) -> BlobPush:
        """Start a session (or mount), send ``content`` whole or chunk by chunk, commit."""
        location = self._start_upload(upload, mount_from)
        if location is None:
            return "mounted"
        if isinstance(content, bytes):
            self._commit_upload(upload, location, content)
            return "uploaded"
        check = upload.check()
        try:
            for chunk in content:
                start = check.count
                check.update(chunk)  # raises before a byte past ``size`` is sent
                location = self._patch(upload, location, chunk, start)
            check.finish()
        except (DigestMismatchError, InputError):
            self._cancel_upload(upload, location)
            raise
        self._commit_upload(upload, location, b"")
        return "uploaded"

    def _start_upload(self, upload: _Upload, mount_from: str | None) -> str | None:
        """``POST`` an upload session (a mount with ``mount_from``): its location, or None
        when the registry mounted the blob."""
        what = upload.what

        def handle(response: httpx.Response) -> str | None:
            if response.status_code == 201 and mount_from is not None:
                drain(response)
                served = response.headers.get("docker-content-digest")
                if served and served != upload.digest:
                    raise RegistryError(f"{what}: registry mounted {served} instead")
                return None
            if response.status_code != 202 or "location" not in response.headers:
                raise _status_error(response, what)
            drain(response)
            return _upload_location(response, what)

        target = upload.target
        return self._perform(
            "POST",
            f"{self.base_url(target.registry)}/v2/{target.repository}/blobs/uploads/",
            what=what,
            handle=handle,
            registry=target.registry,
            scope=upload.scope,
            params={"mount": upload.digest, "from": mount_from} if mount_from else None,
        )

    def _patch(self, upload: _Upload, location: str, chunk: bytes, start: int) -> str:
        """Send bytes ``start`` to ``start + len(chunk) - 1``; the session's next location."""
        end = start + len(chunk) - 1
        what = f"{upload.what}: bytes {start}-{end}"

        def handle(response: httpx.Response) -> str:
            if response.status_code != 202 or "location" not in response.headers:
                raise _status_error(response, what)
            drain(response)
            held = _RANGE_RE.fullmatch(response.headers.get("range", "").strip())
            if held is not None and int(held.group(1)) != end:  # a chunk went missing
                raise RegistryError(f"{what}: the registry holds bytes 0-{held.group(1)}")
            return _upload_location(response, what)

        return self._perform(
            "PATCH",
            location,
            what=what,
            handle=handle,
            registry=upload.target.registry,
            scope=upload.scope,
            headers={
                "Content-Type": OCTET_STREAM,
                "Content-Range": f"{start}-{end}",
                "Content-Length": str(len(chunk)),
            },
            content=chunk,
        )

    def _commit_upload(self, upload: _Upload, location: str, body: bytes) -> None:
        """``PUT <location>?digest=`` with the blob's last (or only) bytes."""
        url = httpx.URL(location).copy_merge_params({"digest": upload.digest})
        what = upload.what

        def handle(response: httpx.Response) -> None:
            if response.status_code not in (201, 204):
                raise _status_error(response, what)
            drain(response)
            served = response.headers.get("docker-content-digest")
            if served and served != upload.digest:
                raise RegistryError(f"{what}: registry stored it as {served}, not {upload.digest}")

        self._perform(
            "PUT",
            str(url),
            what=what,
            handle=handle,
            registry=upload.target.registry,
            scope=upload.scope,
            headers={"Content-Type": OCTET_STREAM},
            content=body,
        )

    def _cancel_upload(self, upload: _Upload, location: str) -> None:
        """``DELETE`` a session that must not be committed; best effort (sessions expire)."""
        with contextlib.suppress(DhiError):
            self._perform(
                "DELETE",
                location,
                what=f"{upload.what}: cancelling the upload",
                handle=drain,
                registry=upload.target.registry,
                scope=upload.scope,
            )

    def push_manifest(
        self, registry: str, repository: str, ref: str, data: bytes, media_type: str
    ) -> str:
        """Upload a manifest or index (exact bytes) under tag or digest ``ref``; its digest."""
        target = _Target(registry, repository)
        digest = sha256_digest(data)
        if is_digest(ref):
            verify_bytes(data, ref, what=f"{target.label}: manifest {ref}")
        else:
            validate_tag(ref)
        what = f"{target.label}: manifest upload {ref}"

        def handle(response: httpx.Response) -> str:
            if response.status_code not in (200, 201):
                raise _status_error(response, what)
            drain(response)
            served = response.headers.get("docker-content-digest")
            if served and served != digest:
                raise RegistryError(f"{what}: registry stored it as {served}, not {digest}")
            return digest

        return self._perform(
            "PUT",
            self._url(target, "manifests", ref),
            what=what,
            handle=handle,
            registry=registry,
            scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type},
            content=data,
        )


@dataclass(frozen=True)
class _NotFound:
    """A referrers page answered 404."""

    api_missing: bool
    """The 404 means the registry has no referrers API: not ``NAME_UNKNOWN`` (the
    repository is missing, which a registry with the API may answer with 404)."""


def _push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


@dataclass(frozen=True)
class _Upload:
    """One blob being uploaded: where, what it must be, how it is named and authorized."""

    target: _Target
    digest: str
    size: int
    what: str
    scope: str

    def check(self) -> _ContentCheck:
        """A fresh check of content against ``digest`` and ``size``."""
        return _ContentCheck(self.digest, self.size, self.what)


class _ContentCheck:
    """Hash and count upload content; refuse it as soon as it cannot be ``digest``/``size``."""

    def __init__(self, digest: str, size: int, what: str) -> None:
        self.digest = digest
        self.size = size
        self.what = what
        self.count = 0
        self._hasher = new_hasher(digest)

    def update(self, chunk: bytes) -> None:
        """Add ``chunk``; raise when the content passes ``size``."""
        self.count += len(chunk)
        if self.count > self.size:
            raise DigestMismatchError(
                f"{self.what}: content has more than the {self.size} bytes declared"
            )
        self._hasher.update(chunk)

    def finish(self) -> None:
        """Raise unless exactly ``size`` bytes hashing to ``digest`` went through."""
        if self.count != self.size:
            raise DigestMismatchError(
                f"{self.what}: content has {self.count} bytes, not the {self.size} declared"
            )
        actual = f"{self.digest.partition(':')[0]}:{self._hasher.hexdigest()}"
        if not hmac.compare_digest(actual, self.digest):
            raise DigestMismatchError(f"{self.what}: content digest is {actual}")


@contextlib.contextmanager
def _open(path: Path, what: str) -> Iterator[IO[bytes]]:
    try:
        stream = path.open("rb")
    except OSError as e:
        raise InputError(f"{what}: cannot read {path}: {e.strerror or e}") from e
    with stream:
        yield stream


def _read_small(path: Path, upload: _Upload) -> bytes:
    """A file expected to hold ``upload.size`` bytes; one byte more shows it holds more."""
    with _open(path, upload.what) as stream:
        try:
            return stream.read(upload.size + 1)
        except OSError as e:
            raise InputError(f"{upload.what}: cannot read {path}: {e.strerror or e}") from e


def _reads(stream: IO[bytes], chunk_size: int, what: str) -> Iterator[bytes]:
    """A file in chunks of ``chunk_size`` bytes (the last may be shorter)."""
    while True:
        try:
            chunk = stream.read(chunk_size)
        except OSError as e:
            raise InputError(f"{what}: cannot read {stream.name}: {e.strerror or e}") from e
        if not chunk:
            return
        yield chunk


def _slices(data: bytes, chunk_size: int) -> Iterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


def _upload_location(response: httpx.Response, what: str) -> str:
    """An upload session's ``Location``, resolved; it must stay on the registry's origin
    because the registry's credentials are sent with it."""
    location = response.url.join(response.headers["location"])
    if (location.scheme, location.host, location.port) != (
        response.url.scheme,
        response.url.host,
        response.url.port,
    ):
        raise RegistryError(f"{what}: upload location leaves the registry ({location})")
    return str(location)


def _error_codes(body: bytes) -> set[str]:
    """The ``code`` of every error in a distribution error body (empty if it is not one)."""
    try:
        obj: Any = loads_json(body, what="error body")
    except MalformedEvidenceError:
        return set()
    errors = obj.get("errors") if isinstance(obj, dict) else None
    if not isinstance(errors, list):
        return set()
    return {e["code"] for e in errors if isinstance(e, dict) and isinstance(e.get("code"), str)}


def _status_error(response: httpx.Response, what: str) -> DhiError:
    """Turn a non-success response into a one-line RegistryError subclass."""
    status = response.status_code
    body = error_excerpt(response)
    detail = _error_detail(body) if body else ""
    suffix = f"HTTP {status}" + (f" {detail}" if detail else "")
    if status == 401:
        return RegistryAuthError(f"{what}: authentication refused ({suffix})")
    if status == 403:
        return RegistryAuthError(f"{what}: access denied ({suffix})")
    if status == 404:
        return RegistryNotFoundError(f"{what}: not found ({suffix})")
    if status == 429:
        return RegistryError(f"{what}: rate limited, retries exhausted ({suffix})")
    return RegistryError(f"{what}: registry answered {suffix}")


def _error_detail(body: bytes) -> str:
    """``CODE: message`` from a distribution error body, else a short body excerpt."""
    try:
        obj: Any = loads_json(body, what="error body")
    except MalformedEvidenceError:
        text = body.decode("utf-8", "replace")
        return one_line(text, 120) if text.isprintable() or text.strip() else ""
    errors = obj.get("errors") if isinstance(obj, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        message = errors[0].get("message")
        parts = [str(p) for p in (code, message) if p]
        return one_line(": ".join(parts), 160)
    return ""


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
