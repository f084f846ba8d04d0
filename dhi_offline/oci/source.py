"""Sources: somewhere manifests, blobs and referrers can be read from.

The exporter walks an image (index -> platform manifests -> referrers -> their blobs)
through the :class:`Source` protocol, so the same walk reads a registry repository
(:class:`RegistrySource`) or an OCI image layout on disk (:class:`LayoutSource`).
Every implementation checks content against its digest before returning it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.content import Fetched, ReferrersResult
from dhi_offline.oci.layout import OciLayout
from dhi_offline.oci.reference import LayoutReference, Reference

__all__ = [
    "Fetched",
    "LayoutSource",
    "ReferrersResult",
    "RegistrySource",
    "Source",
    "open_source",
]


class Source(Protocol):
    """Read access to manifests, blobs and referrers, all verified against their digests."""

    description: str
    """Human-readable origin, e.g. ``registry 127.0.0.1:5000/ns/app`` or ``oci-layout /p``."""

    def resolve(self, tag_or_digest: str) -> Fetched:
        """The manifest or index named by a tag or a digest."""
        ...

    def manifest(self, digest: str) -> Fetched:
        """The manifest or index ``digest``."""
        ...

    def blob(self, digest: str, size: int | None = None) -> bytes:
        """Blob ``digest`` (checked against ``size`` when given), verified while streaming."""
        ...

    def referrers(self, digest: str, artifact_type: str | None = None) -> ReferrersResult:
        """Manifests whose ``subject`` is ``digest``, optionally of one artifactType."""
        ...

    def tag(self, tag: str) -> Fetched | None:
        """The manifest tagged ``tag``, or None when the tag does not exist."""
        ...


class RegistrySource:
    """A repository in a registry, read through a :class:`RegistryClient`."""

    def __init__(self, client: RegistryClient, reference: Reference) -> None:
        self.client = client
        self.reference = reference
        self.registry = reference.registry
        self.repository = reference.repository
        self.description = f"registry {reference.name}"

    def resolve(self, tag_or_digest: str) -> Fetched:
        """GET the manifest by tag or digest (tags checked against Docker-Content-Digest)."""
        return self.client.get_manifest(self.registry, self.repository, tag_or_digest)

    def manifest(self, digest: str) -> Fetched:
        """GET the manifest by digest."""
        return self.client.get_manifest(self.registry, self.repository, digest)

    def blob(self, digest: str, size: int | None = None) -> bytes:
        """GET the blob, verified while it streams."""
        return self.client.get_blob(self.registry, self.repository, digest, size)

    def referrers(self, digest: str, artifact_type: str | None = None) -> ReferrersResult:
        """The referrers API, falling back to the ``<alg>-<hex>`` tag."""
        return self.client.referrers(self.registry, self.repository, digest, artifact_type)

    def tag(self, tag: str) -> Fetched | None:
        """The tag's manifest, or None (e.g. no cosign ``.sig`` tag)."""
        return self.client.get_tag(self.registry, self.repository, tag)


class LayoutSource:
    """An OCI image layout directory."""

    def __init__(self, path: Path) -> None:
        self.layout = OciLayout(path)
        self.description = self.layout.description

    def resolve(self, tag_or_digest: str) -> Fetched:
        """By digest, or by the ``org.opencontainers.image.ref.name`` tag in index.json."""
        return self.layout.resolve(tag_or_digest)

    def manifest(self, digest: str) -> Fetched:
        """The manifest blob ``digest``."""
        return self.layout.manifest(digest)

    def blob(self, digest: str, size: int | None = None) -> bytes:
        """The blob ``digest`` from ``blobs/<alg>/<hex>``."""
        return self.layout.blob(digest, size)

    def referrers(self, digest: str, artifact_type: str | None = None) -> ReferrersResult:
        """Manifests in the layout whose ``subject`` is ``digest`` (``via="layout"``)."""
        return self.layout.referrers(digest, artifact_type)

    def tag(self, tag: str) -> Fetched | None:
        """The manifest tagged ``tag`` in index.json, or None."""
        return self.layout.tag(tag)


def open_source(
    reference: Reference | LayoutReference, client: RegistryClient | None = None
) -> tuple[Source, str]:
    """The source for ``reference`` and what to resolve in it (a tag or a digest).

    An ``oci-layout:DIR`` reference with neither tag nor digest names the layout's only
    tag, or its only entry.

    Raises:
        ValueError: a registry reference without a client.
        RegistryError: a layout with several images and no tag or digest given.
    """
    if isinstance(reference, LayoutReference):
        layout_source = LayoutSource(reference.path)
        ref = reference.digest or reference.tag or layout_source.layout.default_ref()
        return layout_source, ref
    if client is None:
        raise ValueError("a registry reference needs a RegistryClient")
    return RegistrySource(client, reference), reference.tag_or_digest
