"""The registry client's transport: endpoints, the connection pool, the request loop.

- **Transport.** HTTPS; plain HTTP for registries listed as insecure and, as Docker
  does, for loopback registries (``localhost``, ``127.0.0.0/8``, ``[::1]``).
  ``docker.io`` is reached at ``registry-1.docker.io``.
- **Retries** come from the shared loop of :mod:`dhi_offline.net.http`: ``408``,
  ``429``, ``5xx`` (but 501/505), connection errors, read timeouts and connections
  dropped mid-body are retried with exponential backoff and jitter, up to
  ``RetryPolicy.max_attempts``; ``Retry-After`` (seconds or an HTTP date) is honoured up
  to ``retry_after_cap``. Sleeping goes through an injectable function. The 401 dance
  (:mod:`dhi_offline.oci.token`) runs on top of that loop and does not count as an
  attempt.

The client is safe to share between the threads of a bounded pool; ``concurrency`` is
the pool size it was configured for (its connection limit).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self, TypeVar

import httpx

from dhi_offline.errors import DhiError, RegistryError
from dhi_offline.net.http import (
    Params,
    RetryPolicy,
    describe_transport_error,
    make_client,
    one_line,
    send,
    tls_verification_error,
)
from dhi_offline.oci.auth import CredentialStore, DockerConfigCredentials
from dhi_offline.oci.reference import DEFAULT_REGISTRY, is_loopback, split_host_port
from dhi_offline.oci.status import Target
from dhi_offline.oci.token import TokenAuth

__all__ = ["DOCKER_HUB_API_HOST", "RegistryTransport"]

T = TypeVar("T")

DOCKER_HUB_API_HOST = "registry-1.docker.io"


class RegistryTransport:
    """Connections, endpoints and the authenticated, retried request loop.

    The base of :class:`~dhi_offline.oci.client.RegistryClient`, whose docstring
    describes the arguments.
    """

    def __init__(
        self,
        *,
        credentials: CredentialStore | None,
        insecure_registries: Iterable[str],
        plain_http_loopback: bool,
        concurrency: int,
        timeout: float,
        retry: RetryPolicy | None,
        sleep: Callable[[float], None],
        jitter: Callable[[], float],
        verify_tls: bool | str | ssl.SSLContext,
        transport: httpx.BaseTransport | None,
        user_agent: str,
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
        self.requests = 0
        """HTTP requests sent (redirects, token requests and failed attempts included)."""
        self._lock = threading.Lock()  # guards the counters and what the client learns
        # Token requests go through self._perform too: retried, counted, errors translated.
        self._auth = TokenAuth(self.credentials, send=self._perform, scheme_for=self.scheme_for)
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

    def _url(self, target: Target, kind: str, ref: str) -> str:
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
                return self._auth.authorization(authenticated, scope, what)

            def challenged(response_headers: httpx.Headers) -> None:
                nonlocal reauthenticated
                if reauthenticated:
                    raise self._auth.refused(authenticated, what)
                reauthenticated = True
                challenge = response_headers.get("www-authenticate", "")
                self._auth.on_challenge(authenticated, scope, challenge, what)

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
