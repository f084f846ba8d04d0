"""An OCI distribution client on httpx: manifests, blobs, referrers, with auth and retries.

What it does, and where the rule comes from:

- **Transport.** HTTPS; plain HTTP for registries listed as insecure and, as Docker
  does, for loopback registries (``localhost``, ``127.0.0.0/8``, ``[::1]``).
  ``docker.io`` is reached at ``registry-1.docker.io``.
- **Auth** (distribution ``docs/spec/auth/token.md``, ``oauth.md``). Requests go out
  anonymously until a ``401`` names a scheme. ``Basic``: the configured credentials
  are sent from then on. ``Bearer``: a token for ``repository:<name>:pull`` is fetched
  from the challenge's realm (``GET realm?service=&scope=`` with Basic credentials if
  any; ``POST`` grant_type=refresh_token with an identity token), cached per scope until
  it expires, and then fetched directly for new scopes without another 401. A request
  that still gets ``401`` after one fresh token or credential fails with
  :class:`RegistryAuthError`.
- **Retries.** ``408``, ``429``, ``5xx`` (but 501/505), connection errors, read
  timeouts and connections dropped mid-body are retried with exponential backoff and
  jitter, up to ``RetryPolicy.max_attempts``; ``Retry-After`` (seconds or an HTTP date)
  is honoured up to ``retry_after_cap``. Sleeping goes through an injectable function.
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
- **Errors** are translated here: callers see only the RegistryError family, one line,
  naming registry, repository and the object requested.

The client is safe to share between the threads of a bounded pool; ``concurrency`` is
the pool size it was configured for (its connection limit).
"""

from __future__ import annotations

import base64
import email.utils
import random
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from dhi_offline import __version__
from dhi_offline.errors import (
    DhiError,
    InputError,
    MalformedEvidenceError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
)
from dhi_offline.evidence.encoding import loads_json
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

T = TypeVar("T")

DOCKER_HUB_API_HOST = "registry-1.docker.io"
USER_AGENT = f"dhi-offline/{__version__}"
MAX_TOKEN_RESPONSE = 1024 * 1024
MAX_ERROR_BODY = 16 * 1024
_LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*(?:[^,]*;\s*)*rel="?next"?', re.IGNORECASE)
_CHUNK = 64 * 1024
_TOKEN_MIN_LIFETIME = 60.0  # token spec: expires_in defaults to 60 s


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    max_attempts: int = 5
    """Attempts per request, the first included."""
    backoff_base: float = 0.5
    """Seconds before the second attempt; doubles each time."""
    backoff_max: float = 20.0
    """Cap on one backoff delay."""
    retry_after_cap: float = 60.0
    """Cap on a server's ``Retry-After``."""


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts '²'
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _tls_context(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """httpx's ``verify``: a CA bundle path becomes an SSL context trusting that bundle."""
    if not isinstance(verify, str):
        return verify
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as e:
        raise InputError(f"TLS CA bundle {verify}: cannot be used ({e})") from e


def _retryable_status(status: int) -> bool:
    return status in (408, 429) or (500 <= status <= 599 and status not in (501, 505))


def _retryable_transport(error: httpx.TransportError) -> bool:
    if isinstance(error, httpx.TimeoutException | httpx.RemoteProtocolError):
        return True
    if isinstance(error, httpx.NetworkError):
        return _tls_verification_error(error) is None
    return False


def _tls_verification_error(error: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


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
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, pool=None),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
            verify=_tls_context(verify_tls),
            transport=transport,
            follow_redirects=True,
            max_redirects=10,
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
        params: dict[str, str] | None = None,
    ) -> T:
        """Send one logical request with auth and retries; ``handle`` consumes the response.

        ``registry`` set means the request is authenticated against that registry (with
        ``scope`` for bearer tokens). ``handle`` runs while the body streams, so transport
        errors it meets are retried like any other.
        """
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            delay: float | None = None
            request_headers = dict(headers or {})
            if registry is not None:
                authorization = self._authorization(registry, scope, what)
                if authorization is not None:
                    request_headers["Authorization"] = authorization
            challenge: str | None = None
            try:
                with self._http.stream(
                    method, url, headers=request_headers, content=content, params=params
                ) as response:
                    status = response.status_code
                    if status == 401 and registry is not None:
                        challenge = response.headers.get("www-authenticate", "")
                        _drain(response)
                    elif _retryable_status(status) and attempt < self.retry.max_attempts:
                        delay = self._delay(attempt, response.headers.get("retry-after"))
                        _drain(response)
                    else:
                        return handle(response)
            except httpx.TransportError as e:
                if not _retryable_transport(e) or attempt >= self.retry.max_attempts:
                    raise self._transport_error(e, what, attempt) from e
                delay = self._delay(attempt, None)
            except (httpx.HTTPError, httpx.InvalidURL) as e:  # redirects, decoding, bad URLs
                raise RegistryError(f"{what}: {_one_line(str(e)) or type(e).__name__}") from e
            if challenge is not None and registry is not None:
                # Answered after the 401's connection went back to the pool: with as many
                # connections as threads, a token request made while holding it could
                # wait for a free connection forever.
                if reauthenticated:
                    raise self._refused(registry, what)
                reauthenticated = True
                self._on_challenge(registry, scope, challenge, what)
                attempt -= 1  # the auth round trip is not a failed attempt
                continue
            if delay is not None:
                self.sleep(delay)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        waited = retry_after_seconds(retry_after)
        if waited is not None:
            return min(waited, self.retry.retry_after_cap)
        backoff = min(self.retry.backoff_base * 2.0 ** (attempt - 1), self.retry.backoff_max)
        return backoff * (0.5 + 0.5 * self.jitter())

    def _transport_error(self, e: httpx.TransportError, what: str, attempts: int) -> RegistryError:
        tls = _tls_verification_error(e)
        if tls is not None:
            return RegistryError(
                f"{what}: TLS certificate verification failed ({_one_line(tls.verify_message)}); "
                "for a registry without a trusted certificate use --insecure-registry"
            )
        kind = (
            "timed out"
            if isinstance(e, httpx.TimeoutException)
            else "cannot connect"
            if isinstance(e, httpx.ConnectError)
            else "connection failed"
        )
        detail = _one_line(str(e)) or type(e).__name__
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return RegistryError(f"{what}: {kind}{tries} ({detail})")

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
                f"challenge ({_one_line(header) or 'no WWW-Authenticate header'})"
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
        query: dict[str, str] = {}
        if "service" in params:
            query["service"] = params["service"]
        wanted_scope = scope or params.get("scope")
        if wanted_scope:
            query["scope"] = wanted_scope
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
                **query,
            }
            body = urllib.parse.urlencode(form).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            query = {}
        elif creds is not None and creds.has_password:
            pair = f"{creds.username}:{creds.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")

        def handle(response: httpx.Response) -> tuple[str, float]:
            if response.status_code in (401, 403):
                _drain(response)
                who = "anonymous access" if creds is None else f"the credentials for {registry}"
                raise RegistryAuthError(
                    f"{token_what}: refused {who} (HTTP {response.status_code})"
                )
            if response.status_code != 200:
                raise _status_error(response, token_what)
            data = _read_limited(response, MAX_TOKEN_RESPONSE, token_what)
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
            for chunk in response.iter_bytes(_CHUNK):
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
                _drain(response)
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
        found = self._manifest(target, ref, missing_ok=False, what=f"{target.label}: {kind} {ref}")
        assert found is not None
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
                for chunk in response.iter_bytes(_CHUNK):  # cut short: retried as usual
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

    # -- writing (imports, test fixtures) ---------------------------------------------

    def push_blob(
        self, registry: str, repository: str, data: bytes, media_type: str = OCTET_STREAM
    ) -> Descriptor:
        """Upload ``data`` as a blob (monolithic POST then PUT) unless it is already there."""
        target = _Target(registry, repository)
        digest = sha256_digest(data)
        what = f"{target.label}: blob upload {digest}"
        scope = f"repository:{repository}:pull,push"

        def exists(response: httpx.Response) -> bool:
            _drain(response)
            if response.status_code in (200, 404):
                return response.status_code == 200
            raise _status_error(response, what)

        if self._perform(
            "HEAD",
            self._url(target, "blobs", digest),
            what=what,
            handle=exists,
            registry=registry,
            scope=scope,
        ):
            return Descriptor(media_type, digest, len(data))

        def started(response: httpx.Response) -> str:
            if response.status_code != 202 or "location" not in response.headers:
                raise _status_error(response, what)
            _drain(response)
            return str(response.url.join(response.headers["location"]))

        location = self._perform(
            "POST",
            f"{self.base_url(registry)}/v2/{repository}/blobs/uploads/",
            what=what,
            handle=started,
            registry=registry,
            scope=scope,
        )
        upload = httpx.URL(location)
        upload = upload.copy_merge_params({"digest": digest})

        def finished(response: httpx.Response) -> None:
            if response.status_code not in (201, 204):
                raise _status_error(response, what)
            _drain(response)

        self._perform(
            "PUT",
            str(upload),
            what=what,
            handle=finished,
            registry=registry,
            scope=scope,
            headers={"Content-Type": OCTET_STREAM},
            content=data,
        )
        return Descriptor(media_type, digest, len(data))

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
            _drain(response)
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


def _drain(response: httpx.Response) -> None:
    """Read and drop a (small) body so the connection can be reused."""
    if response.is_stream_consumed:
        return
    try:
        for _ in response.iter_raw(_CHUNK):
            if response.num_bytes_downloaded > MAX_ERROR_BODY:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass


def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    verifier = DigestVerifier(None, what=what, limit=limit)
    chunks: list[bytes] = []
    for chunk in response.iter_bytes(_CHUNK):
        verifier.update(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


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
    detail = ""
    try:
        body = b""
        for chunk in response.iter_bytes(_CHUNK):
            body += chunk
            if len(body) > MAX_ERROR_BODY:
                break
        if body:
            detail = _error_detail(body[:MAX_ERROR_BODY])
    except httpx.HTTPError:
        pass
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
        return _one_line(text, 120) if text.isprintable() or text.strip() else ""
    errors = obj.get("errors") if isinstance(obj, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        message = errors[0].get("message")
        parts = [str(p) for p in (code, message) if p]
        return _one_line(": ".join(parts), 160)
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
