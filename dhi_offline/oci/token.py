"""Registry authentication: the 401 challenge and the bearer token flow.

- **Auth** (distribution ``docs/spec/auth/token.md``, ``oauth.md``). Requests go out
  anonymously until a ``401`` names a scheme. ``Basic``: the configured credentials
  are sent from then on. ``Bearer``: a token for ``repository:<name>:pull`` (reads) or
  ``repository:<name>:pull,push`` (uploads; a mount adds ``repository:<from>:pull``,
  each scope its own ``scope`` parameter) is fetched from the challenge's realm
  (``GET realm?service=&scope=`` with Basic credentials if any; ``POST``
  grant_type=refresh_token with an identity token), cached per scope until it expires,
  and then fetched directly for new scopes without another 401. A request that still
  gets ``401`` after one fresh token or credential fails with :class:`RegistryAuthError`
  (that rule lives in the request loop, :meth:`RegistryTransport._perform`).

Credentials and the ``WWW-Authenticate`` parser are in :mod:`dhi_offline.oci.auth`.
"""

from __future__ import annotations

import base64
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx

from dhi_offline.encoding import loads_json
from dhi_offline.errors import MalformedEvidenceError, RegistryAuthError, SizeLimitError
from dhi_offline.net.http import Params, drain, one_line, read_limited
from dhi_offline.oci.auth import Challenge, Credentials, CredentialStore, parse_www_authenticate
from dhi_offline.oci.reference import is_loopback
from dhi_offline.oci.status import status_error

__all__ = ["MAX_TOKEN_RESPONSE", "Send", "TokenAuth"]

T = TypeVar("T")

MAX_TOKEN_RESPONSE = 1024 * 1024
_TOKEN_MIN_LIFETIME = 60.0  # token spec: expires_in defaults to 60 s


class Send(Protocol):
    """Send one unauthenticated request with retries (the client's request loop)."""

    def __call__(
        self,
        method: str,
        url: str,
        *,
        what: str,
        handle: Callable[[httpx.Response], T],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: Params | None = None,
    ) -> T:
        """``handle``'s result for the response to ``method url``."""
        ...


@dataclass
class _RegistryAuth:
    """What we learnt about a registry's authentication from its challenge."""

    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


class TokenAuth:
    """Per-registry schemes and per-scope bearer tokens, shared by a client's threads.

    Args:
        credentials: where credentials come from.
        send: the request loop token requests go through (retried like any other).
        scheme_for: ``http`` or ``https`` for a registry host; a realm on a host
            spoken to over HTTP anyway may get credentials over HTTP.
    """

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        send: Send,
        scheme_for: Callable[[str], str],
    ) -> None:
        self.credentials = credentials
        self._send = send
        self._scheme_for = scheme_for
        self._lock = threading.Lock()
        self._auth: dict[str, _RegistryAuth] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def authorization(self, registry: str, scope: str | None, what: str) -> str | None:
        """The ``Authorization`` header for a request, or None until a 401 asked for one."""
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

    def refused(self, registry: str, what: str) -> RegistryAuthError:
        """The error for a second ``401``: fresh credentials did not help."""
        creds = self.credentials.get(registry)
        if creds is None:
            return RegistryAuthError(
                f"{what}: authentication required and no credentials for {registry} "
                f"(docker login {registry})"
            )
        return RegistryAuthError(f"{what}: the registry refused the credentials for {registry}")

    def on_challenge(self, registry: str, scope: str | None, header: str, what: str) -> None:
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
            if not (is_loopback(realm_host) or self._scheme_for(realm_host) == "http"):
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
                raise status_error(response, token_what)
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

        return self._send(
            method,
            realm,
            what=token_what,
            handle=handle,
            headers=headers,
            content=body,
            params=query or None,
        )
