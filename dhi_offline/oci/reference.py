"""Image references: ``[registry/]repository[:tag][@digest]`` and ``oci-layout:DIR[:TAG|@DIGEST]``.

Registry references are normalised the way the Docker CLI normalises them
(distribution/reference ``ParseNormalizedNamed``):

- the first path component is a registry only when it contains ``.`` or ``:``, is
  ``localhost``, or has upper-case letters; otherwise the registry is ``docker.io``;
- ``index.docker.io`` is the same registry as ``docker.io``;
- a one-component repository on ``docker.io`` gets the ``library/`` prefix;
- with neither tag nor digest, the tag is ``latest``.

A reference may carry both a tag and a digest; the digest then decides what is fetched
and the tag is kept for display. Digests are validated strictly: ``sha256:`` with 64
lower-case hex characters or ``sha512:`` with 128.

Anything unusable raises :class:`~dhi_offline.errors.UsageError` naming the reference.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dhi_offline.errors import UsageError

DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
LAYOUT_PREFIX = "oci-layout:"
SKOPEO_LAYOUT_PREFIX = "oci:"
_PORT_PATH = re.compile(r"\d+(/|$)")
NAME_TOTAL_LENGTH_MAX = 255

# distribution/reference grammar (regexp.go), written out here.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY_RE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_HEX_RE = re.compile(r"[a-f0-9]+")
_ID_LIKE_RE = re.compile(r"[a-f0-9]{64}")


def validate_digest(digest: str, *, what: str = "digest") -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>``.

    Raises:
        UsageError: naming ``what`` and the offending value.
    """
    alg, sep, hexpart = digest.partition(":")
    expected = _DIGEST_HEX_LENGTH.get(alg)
    if not sep or expected is None:
        raise UsageError(f"{what} {digest!r}: digest algorithm must be sha256 or sha512")
    if len(hexpart) != expected or not _HEX_RE.fullmatch(hexpart):
        raise UsageError(
            f"{what} {digest!r}: a {alg} digest is {expected} lower-case hex characters"
        )
    return digest


def is_digest(text: str) -> bool:
    """True when ``text`` is a valid sha256/sha512 digest (not a tag)."""
    try:
        validate_digest(text)
    except UsageError:
        return False
    return True


def validate_tag(tag: str, *, what: str = "tag") -> str:
    """Return ``tag`` if it matches the OCI tag grammar ``[\\w][\\w.-]{0,127}``."""
    if not _TAG_RE.fullmatch(tag):
        raise UsageError(f"{what} {tag!r}: not a valid tag (letters, digits, '_', '.', '-')")
    return tag


def validate_repository(repository: str) -> str:
    """Return ``repository`` if it is a valid repository path (``ns/name``, lower case)."""
    if len(repository) > NAME_TOTAL_LENGTH_MAX or not _REPOSITORY_RE.fullmatch(repository):
        raise UsageError(f"repository {repository!r}: not a valid repository name")
    return repository


def validate_registry(registry: str) -> str:
    """Return ``registry`` if it is a valid ``host[:port]`` (``[v6]:port`` for IPv6)."""
    if not _REGISTRY_RE.fullmatch(registry):
        raise UsageError(f"registry {registry!r}: not a valid registry host")
    return registry


@dataclass(frozen=True)
class Reference:
    """A normalised reference to an image or artifact in a registry."""

    registry: str
    """Registry host with optional port, e.g. ``docker.io``, ``127.0.0.1:5000``."""
    repository: str
    """Repository path inside the registry, e.g. ``library/python``."""
    tag: str | None
    """Tag, or None when the reference is by digest only."""
    digest: str | None
    """``sha256:...``/``sha512:...`` digest, or None."""

    @property
    def name(self) -> str:
        """``registry/repository``, the fully qualified repository name."""
        return f"{self.registry}/{self.repository}"

    @property
    def tag_or_digest(self) -> str:
        """What to fetch: the digest when there is one, else the tag (``latest`` by default)."""
        if self.digest is not None:
            return self.digest
        return self.tag if self.tag is not None else DEFAULT_TAG

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (the tag is kept for display)."""
        return Reference(self.registry, self.repository, self.tag, validate_digest(digest))

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out


@dataclass(frozen=True)
class LayoutReference:
    """A reference into an OCI image layout directory (``oci-layout:DIR[:TAG|@DIGEST]``)."""

    path: Path
    """The layout directory (holding ``oci-layout`` and ``index.json``)."""
    tag: str | None
    """Tag, matched against ``org.opencontainers.image.ref.name`` in ``index.json``."""
    digest: str | None
    """Digest of a manifest or index in the layout."""

    def __str__(self) -> str:
        out = f"{LAYOUT_PREFIX}{self.path}"
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference | LayoutReference:
    """Parse an image reference as the Docker CLI does, or an ``oci-layout:`` reference.

    Examples: ``python:3.13`` is ``docker.io/library/python:3.13``;
    ``host:5000/ns/name@sha256:...`` has no tag; ``localhost/x`` is on ``localhost``.

    Raises:
        UsageError: the reference is malformed; the message quotes it.
    """
    if text.startswith(LAYOUT_PREFIX):
        return _parse_layout(text, LAYOUT_PREFIX)
    if text.startswith(SKOPEO_LAYOUT_PREFIX) and not _PORT_PATH.match(text, 4):
        # skopeo's and podman's transport name for the same thing (``oci:DIR:TAG``);
        # ``oci:5000/ns/app`` stays a registry host named "oci" with a port.
        return _parse_layout(text, SKOPEO_LAYOUT_PREFIX)
    return _parse_registry(text)


def _parse_layout(text: str, prefix: str) -> LayoutReference:
    rest = text[len(prefix) :]
    tag: str | None = None
    digest: str | None = None
    if "@" in rest:
        rest, _, digest = rest.rpartition("@")
        _checked(text, lambda: validate_digest(digest or "", what="digest"))
    else:
        head, sep, tail = rest.rpartition(":")
        # A final ":TAG" is a tag only when it cannot be part of the path itself.
        if sep and head and "/" not in tail:
            if not _TAG_RE.fullmatch(tail):
                raise UsageError(f"reference {text!r}: {tail!r} is not a valid tag")
            rest, tag = head, tail
    if not rest:
        raise UsageError(f"reference {text!r}: oci-layout needs a directory")
    return LayoutReference(Path(rest), tag, digest)


def _parse_registry(text: str) -> Reference:
    if not text or text != text.strip():
        raise UsageError(f"reference {text!r}: empty or surrounded by spaces")
    if text.count("@") > 1:
        raise UsageError(f"reference {text!r}: more than one '@'")
    name, at, digest_text = text.partition("@")
    digest: str | None = None
    if at:
        digest = _checked(text, lambda: validate_digest(digest_text, what="digest"))
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise UsageError(f"reference {text!r}: {tag!r} is not a valid tag")
    if not name:
        raise UsageError(f"reference {text!r}: no repository name")
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise UsageError(f"reference {text!r}: name longer than {NAME_TOTAL_LENGTH_MAX}")

    first, slash_sep, remainder = name.partition("/")
    if slash_sep and (
        any(c in first for c in ".:") or first == "localhost" or first.lower() != first
    ):
        registry = first
    else:
        registry, remainder = DEFAULT_REGISTRY, name
    if registry == LEGACY_DEFAULT_REGISTRY:
        registry = DEFAULT_REGISTRY
    if not _REGISTRY_RE.fullmatch(registry):
        raise UsageError(f"reference {text!r}: {registry!r} is not a valid registry host")
    if registry == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    if remainder.lower() != remainder:
        raise UsageError(f"reference {text!r}: repository name must be lowercase")
    if not _REPOSITORY_RE.fullmatch(remainder):
        raise UsageError(f"reference {text!r}: {remainder!r} is not a valid repository name")
    if registry == DEFAULT_REGISTRY and _ID_LIKE_RE.fullmatch(remainder.removeprefix("library/")):
        raise UsageError(
            f"reference {text!r}: a 64-hex name looks like an image ID; write it as @sha256:..."
        )
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry, remainder, tag, digest)


def _checked(text: str, check: Callable[[], str]) -> str:
    """Run a validator and re-raise its UsageError with the whole reference named."""
    try:
        return check()
    except UsageError as e:
        raise UsageError(f"reference {text!r}: {e.message}") from None


def split_host_port(registry: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (``[v6]:port`` for IPv6) into host and port."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = registry.partition(":")
    return host, int(port) if port.isascii() and port.isdigit() else None


def is_loopback(registry: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``[::1]``, with or without a port.

    Loopback registries are spoken to over plain HTTP by default, as Docker does.
    """
    host, _ = split_host_port(registry)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
