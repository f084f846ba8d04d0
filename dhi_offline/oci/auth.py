"""Registry credentials and authentication challenges.

Credentials come from the Docker CLI's ``config.json`` (``$DOCKER_CONFIG/config.json``,
else ``~/.docker/config.json``), looked up the way the Docker CLI does:

1. ``credHelpers[<host>]`` names a helper for this registry, else ``credsStore`` names
   one for all; the helper is run as ``docker-credential-<name> get`` with the server
   URL on stdin and answers ``{"ServerURL", "Username", "Secret"}`` on stdout
   (docker/docker-credential-helpers protocol; ``Username == "<token>"`` means the
   secret is an identity token). "credentials not found" means anonymous.
2. ``auths[<server>]``: ``auth`` is base64 ``user:password``; ``identitytoken`` is an
   OAuth2 refresh token; ``registrytoken`` is a bearer token sent as is.

Docker Hub's credentials are stored under ``https://index.docker.io/v1/``.

The ``WWW-Authenticate`` parser follows RFC 9110 §11.6.1 (challenges with auth-params).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dhi_offline.errors import InputError, RegistryAuthError

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HELPER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NOT_FOUND = "credentials not found"
_TOKEN_USERNAME = "<token>"  # noqa: S105 (the helper protocol's marker, not a secret)


@dataclass(frozen=True)
class Credentials:
    """What we can present to a registry or its token server."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    """An OAuth2 refresh token (``docker login`` with an identity provider)."""
    registry_token: str | None = field(default=None, repr=False)
    """A bearer token to send to the registry as is."""

    @property
    def has_password(self) -> bool:
        """True when a username and password are present (Basic auth is possible)."""
        return self.username is not None and self.password is not None


class CredentialStore(Protocol):
    """Where the client asks for credentials for a registry host."""

    def get(self, registry: str) -> Credentials | None:
        """Credentials for ``registry`` (``host[:port]``), or None for anonymous access."""
        ...


class NoCredentials:
    """A store with nothing in it: every registry is accessed anonymously."""

    def get(self, registry: str) -> Credentials | None:
        """Always None."""
        return None


class StaticCredentials:
    """Credentials given directly, keyed by registry host (for tests and library callers)."""

    def __init__(self, by_registry: Mapping[str, Credentials]) -> None:
        self._by_registry = dict(by_registry)

    def get(self, registry: str) -> Credentials | None:
        """The credentials given for ``registry``, if any."""
        return self._by_registry.get(registry)


def credential_server(registry: str) -> str:
    """The key the Docker CLI stores ``registry``'s credentials under."""
    return DOCKER_HUB_SERVER if registry in _DOCKER_HUB_HOSTS else registry


def _hostname(key: str) -> str:
    """``auths`` keys may be URLs: strip the scheme and any path (Docker's ConvertToHostname)."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.split("/", 1)[0]


def default_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG`` if set, else ``~/.docker``."""
    env = os.environ if env is None else env
    configured = env.get("DOCKER_CONFIG")
    return Path(configured) if configured else Path.home() / ".docker"


class DockerConfigCredentials:
    """Credentials from the Docker CLI configuration and its credential helpers.

    The file is read once, on first use. Helper answers are cached per registry.
    Thread-safe.
    """

    def __init__(
        self,
        config_dir: Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        helper_timeout: float = 30.0,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self.config_dir = config_dir if config_dir is not None else default_config_dir(self._env)
        self.helper_timeout = helper_timeout
        self._lock = threading.Lock()
        self._config: dict[str, Any] | None = None
        self._cache: dict[str, Credentials | None] = {}

    @property
    def config_path(self) -> Path:
        """The ``config.json`` read."""
        return self.config_dir / "config.json"

    def _load(self) -> dict[str, Any]:
        if self._config is None:
            try:
                text = self.config_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                self._config = {}
                return self._config
            except OSError as e:
                raise InputError(f"{self.config_path}: cannot read ({e.strerror})") from e
            try:
                loaded = json.loads(text) if text.strip() else {}
            except ValueError as e:
                raise InputError(f"{self.config_path}: not valid JSON ({e})") from e
            if not isinstance(loaded, dict):
                raise InputError(f"{self.config_path}: expected a JSON object")
            self._config = loaded
        return self._config

    def get(self, registry: str) -> Credentials | None:
        """Credentials for ``registry``; None when the configuration has none."""
        with self._lock:
            if registry not in self._cache:
                self._cache[registry] = self._lookup(registry)
            return self._cache[registry]

    def _lookup(self, registry: str) -> Credentials | None:
        config = self._load()
        server = credential_server(registry)
        helpers = config.get("credHelpers")
        helper: object = None
        if isinstance(helpers, dict):
            helper = helpers.get(registry) or helpers.get(_hostname(server))
        if not helper:
            helper = config.get("credsStore")
        if isinstance(helper, str) and helper:
            found = self._from_helper(helper, server)
            if found is not None:
                return found
        return self._from_auths(config, registry, server)

    def _from_auths(self, config: dict[str, Any], registry: str, server: str) -> Credentials | None:
        auths = config.get("auths")
        if not isinstance(auths, dict):
            return None
        entry = auths.get(server)
        if entry is None:
            wanted = _DOCKER_HUB_HOSTS if server == DOCKER_HUB_SERVER else {registry}
            entry = next((v for k, v in auths.items() if _hostname(k) in wanted), None)
        if not isinstance(entry, dict):
            return None
        where = f"{self.config_path}: auths[{server!r}]"
        username = entry.get("username")
        password = entry.get("password")
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, ValueError) as e:
                raise InputError(f"{where}.auth: not base64 of user:password") from e
            username, sep, password = decoded.partition(":")
            if not sep:
                raise InputError(f"{where}.auth: not base64 of user:password")
        identity = entry.get("identitytoken")
        registry_token = entry.get("registrytoken")
        creds = Credentials(
            username=username if isinstance(username, str) and username else None,
            password=password if isinstance(password, str) and password else None,
            identity_token=identity if isinstance(identity, str) and identity else None,
            registry_token=(
                registry_token if isinstance(registry_token, str) and registry_token else None
            ),
        )
        return None if creds == Credentials() else creds

    def _from_helper(self, name: str, server: str) -> Credentials | None:
        program = f"docker-credential-{name}"
        if not _HELPER_NAME_RE.fullmatch(name):
            raise InputError(f"{self.config_path}: credential helper name {name!r} is invalid")
        try:
            done = subprocess.run(
                [program, "get"],
                input=server.encode(),
                capture_output=True,
                timeout=self.helper_timeout,
                env=self._env,
                check=False,
            )
        except FileNotFoundError:
            raise RegistryAuthError(
                f"credential helper {program} (configured in {self.config_path}) is not on PATH"
            ) from None
        except subprocess.TimeoutExpired:
            raise RegistryAuthError(
                f"credential helper {program} did not answer for {server} "
                f"within {self.helper_timeout:g} s"
            ) from None
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        if done.returncode != 0:
            if _NOT_FOUND in output.lower():
                return None
            first = output.strip().splitlines()[0] if output.strip() else "no output"
            raise RegistryAuthError(
                f"credential helper {program} failed for {server} "
                f"(exit {done.returncode}): {first[:200]}"
            )
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            raise RegistryAuthError(
                f"credential helper {program} answered for {server} with invalid JSON"
            ) from None
        if not isinstance(answer, dict):
            raise RegistryAuthError(f"credential helper {program}: expected a JSON object")
        username = answer.get("Username")
        secret = answer.get("Secret")
        if not isinstance(secret, str) or not secret:
            return None
        if username == _TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        return Credentials(
            username=username if isinstance(username, str) else None, password=secret
        )


# -- WWW-Authenticate ---------------------------------------------------------------

_TOKEN_RE = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 (RFC 9110 token characters)
_SCHEME_RE = re.compile(rf"\s*({_TOKEN_RE})")
_PARAM_RE = re.compile(rf"\s*({_TOKEN_RE})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN_RE}))")
_TOKEN68_RE = re.compile(r"\s+([A-Za-z0-9\-._~+/]+=*)\s*(?=,|$)")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a scheme (lower-cased) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict, hash=False)


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into challenges (RFC 9110 §11.6.1).

    ``Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`` gives
    one Challenge with scheme ``bearer``. Unparseable trailing text is ignored.
    """
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(value):
        while pos < len(value) and value[pos] in " \t,":
            pos += 1
        m = _SCHEME_RE.match(value, pos)
        if m is None:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68_RE.match(value, pos)
        if token68 is not None and _PARAM_RE.match(value, pos) is None:
            params[""] = token68.group(1)
            pos = token68.end()
        else:
            while True:
                p = _PARAM_RE.match(value, pos)
                if p is None:
                    break
                quoted, bare = p.group(2), p.group(3)
                raw = bare if bare is not None else re.sub(r"\\(.)", r"\1", quoted or "")
                params[p.group(1).lower()] = raw
                pos = p.end()
                comma = re.compile(r"\s*,").match(value, pos)
                if comma is None:
                    break
                # After a comma comes either another parameter or the next challenge.
                if _PARAM_RE.match(value, comma.end()) is None:
                    pos = comma.end()
                    break
                pos = comma.end()
        challenges.append(Challenge(scheme, params))
    return challenges
