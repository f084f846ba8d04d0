"""Media types, descriptors and platforms of OCI / Docker v2 content.

Sources: opencontainers/image-spec (``media-types.md``, ``descriptor.md``,
``manifest.md``, ``image-index.md``), the Docker v2 schema 2 spec, cosign
(``pkg/types/media.go``) and sigstore protobuf-specs (bundle media types). See
``formats.md`` §3 for how cosign and the referrers API use them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from dhi_offline.encoding import loads_json, require_dict, require_int, require_str
from dhi_offline.errors import MalformedEvidenceError, UsageError
from dhi_offline.oci.reference import is_digest

# Image manifests and indexes.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

# Configs and layers.
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCTET_STREAM = "application/octet-stream"

# The empty descriptor (image-spec manifest.md "Guidance for an Empty Descriptor").
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# Attestations and signatures.
IN_TOTO = "application/vnd.in-toto+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_ARTIFACT_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_ARTIFACT_SBOM = "application/vnd.dev.cosign.artifact.sbom.v1+json"
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"

# Annotation keys that name what a layer or referrer holds (the cosign ones are in
# ``evidence/cosign.py``).
INTOTO_PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
SIGSTORE_BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
SIGSTORE_BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
"""Every sigstore bundle media type starts with this (cosign ``GetBundles`` matches on it)."""
# Aliases under the names the exporter uses.
COSIGN_SIGNATURE_ARTIFACT_TYPE = COSIGN_ARTIFACT_SIG
COSIGN_SIMPLE_SIGNING = COSIGN_SIMPLESIGNING

# Annotations.
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"

MANIFEST_TYPES: frozenset[str] = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
"""Media types of single-platform image manifests."""
INDEX_TYPES: frozenset[str] = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
"""Media types of multi-platform indexes / manifest lists."""
ALL_MANIFEST_TYPES: frozenset[str] = MANIFEST_TYPES | INDEX_TYPES

ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
"""``Accept`` header value for manifest requests: every type we can read."""


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    """``os.version`` (Windows images); not part of the ``os/arch/variant`` string."""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``linux/arm64/v8`` or ``linux/amd64``.

        Raises:
            UsageError: the text is not ``os/arch[/variant]``.
        """
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise UsageError(f"platform {text!r}: expected os/architecture[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, obj: object, *, what: str = "platform") -> Platform:
        """Read the ``platform`` object of a descriptor."""
        d = require_dict(obj, what=what)
        variant = d.get("variant")
        os_version = d.get("os.version")
        return cls(
            require_str(d.get("os"), what=f"{what}.os"),
            require_str(d.get("architecture"), what=f"{what}.architecture"),
            None if variant is None else require_str(variant, what=f"{what}.variant"),
            None if os_version is None else require_str(os_version, what=f"{what}.os.version"),
        )

    def to_json(self) -> dict[str, str]:
        """The descriptor ``platform`` object."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant is not None:
            out["variant"] = self.variant
        if self.os_version is not None:
            out["os.version"] = self.os_version
        return out

    def matches(self, other: Platform) -> bool:
        """True when ``other`` is this platform; a missing variant on ``self`` matches any.

        ``arm64`` without a variant is taken as ``arm64/v8``, as containerd does.
        """
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if self.variant is None:
            return True
        default = "v8" if self.architecture == "arm64" else None
        return self.variant == (other.variant or default)

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest, index or referrers list points at."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    platform: Platform | None = None

    @classmethod
    def from_json(cls, obj: object, *, what: str = "descriptor") -> Descriptor:
        """Read a descriptor object, checking field types and the digest syntax.

        Raises:
            MalformedEvidenceError: naming ``what`` and the bad field.
        """
        d = require_dict(obj, what=what)
        digest = require_str(d.get("digest"), what=f"{what}.digest")
        if not is_digest(digest):
            raise MalformedEvidenceError(f"{what}.digest: {digest!r} is not a sha256/sha512 digest")
        size = d.get("size")
        if isinstance(size, str):  # protobuf-style int64 strings are not allowed here
            raise MalformedEvidenceError(f"{what}.size: expected an integer")
        artifact_type = d.get("artifactType")
        annotations = require_dict(d.get("annotations", {}), what=f"{what}.annotations")
        for key, value in annotations.items():
            require_str(value, what=f"{what}.annotations[{key!r}]")
        platform = d.get("platform")
        return cls(
            media_type=require_str(d.get("mediaType"), what=f"{what}.mediaType"),
            digest=digest,
            size=require_int(size, what=f"{what}.size"),
            artifact_type=(
                None
                if artifact_type is None
                else require_str(artifact_type, what=f"{what}.artifactType")
            ),
            annotations=dict(annotations),
            platform=(
                None if platform is None else Platform.from_json(platform, what=f"{what}.platform")
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The descriptor as a JSON object (optional fields only when set)."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out


def parse_manifest(data: bytes, *, what: str = "manifest") -> dict[str, Any]:
    """Parse a manifest or index strictly (UTF-8, no duplicate keys, schemaVersion 2).

    Raises:
        MalformedEvidenceError: naming ``what``.
    """
    obj = require_dict(loads_json(data, what=what), what=what)
    version = obj.get("schemaVersion")
    if version != 2 or isinstance(version, bool):
        raise MalformedEvidenceError(f"{what}: schemaVersion must be 2, got {version!r}")
    media_type = obj.get("mediaType")
    if media_type is not None:
        require_str(media_type, what=f"{what}.mediaType")
    if "manifests" in obj and ("layers" in obj or "config" in obj):
        raise MalformedEvidenceError(f"{what}: has both manifests and config/layers")
    return obj


def manifest_media_type(obj: dict[str, Any], declared: str | None, *, what: str) -> str:
    """The media type of a parsed manifest: its ``mediaType``, else ``declared``, else its shape.

    Raises:
        MalformedEvidenceError: the body and ``declared`` disagree, or the type is not a
            manifest or index type we read.
    """
    body_type = obj.get("mediaType")
    if isinstance(body_type, str):
        if declared and declared in ALL_MANIFEST_TYPES and declared != body_type:
            raise MalformedEvidenceError(
                f"{what}: served as {declared} but its mediaType is {body_type}"
            )
        media_type = body_type
    elif declared in ALL_MANIFEST_TYPES:
        media_type = declared
    else:
        media_type = OCI_INDEX if "manifests" in obj else OCI_MANIFEST
    if media_type not in ALL_MANIFEST_TYPES:
        raise MalformedEvidenceError(f"{what}: unsupported manifest media type {media_type!r}")
    return media_type


def index_manifests(obj: dict[str, Any], *, what: str = "index") -> tuple[Descriptor, ...]:
    """The ``manifests`` descriptors of an index (or a referrers response)."""
    items = obj.get("manifests", [])
    if not isinstance(items, list):
        raise MalformedEvidenceError(f"{what}.manifests: expected a list")
    return tuple(
        Descriptor.from_json(item, what=f"{what}.manifests[{i}]") for i, item in enumerate(items)
    )


def manifest_config(obj: dict[str, Any], *, what: str = "manifest") -> Descriptor:
    """The ``config`` descriptor of an image manifest."""
    return Descriptor.from_json(obj.get("config"), what=f"{what}.config")


def manifest_layers(obj: dict[str, Any], *, what: str = "manifest") -> tuple[Descriptor, ...]:
    """The ``layers`` descriptors of an image manifest."""
    items = obj.get("layers", [])
    if not isinstance(items, list):
        raise MalformedEvidenceError(f"{what}.layers: expected a list")
    return tuple(
        Descriptor.from_json(item, what=f"{what}.layers[{i}]") for i, item in enumerate(items)
    )


def manifest_subject(obj: dict[str, Any], *, what: str = "manifest") -> Descriptor | None:
    """The ``subject`` descriptor of a manifest or index, if it has one."""
    subject = obj.get("subject")
    return None if subject is None else Descriptor.from_json(subject, what=f"{what}.subject")


def referrer_descriptor(obj: dict[str, Any], media_type: str, digest: str, size: int) -> Descriptor:
    """The descriptor the referrers API lists for a manifest (distribution-spec end-12).

    ``artifactType`` is the manifest's, else its config media type (image manifests
    only); annotations are the manifest's.
    """
    artifact_type = obj.get("artifactType")
    if not isinstance(artifact_type, str):
        artifact_type = None
        config = obj.get("config")
        if media_type in MANIFEST_TYPES and isinstance(config, dict):
            config_type = config.get("mediaType")
            artifact_type = config_type if isinstance(config_type, str) else None
    annotations = obj.get("annotations")
    clean = (
        {k: v for k, v in annotations.items() if isinstance(v, str)}
        if isinstance(annotations, dict)
        else {}
    )
    return Descriptor(media_type, digest, size, artifact_type, clean)
