"""Discovery: from an image reference to every attestation stored for it.

For the image index and each platform manifest, attestations are looked for in every
source (the image's own repository, then a separate attestation registry such as
``registry.scout.docker.com``):

- OCI 1.1 referrers (the API, or its ``sha256-<hex>`` tag fallback, which the sources
  handle), classified by what they hold, never by name:
  an in-toto layer (Docker Scout / DHI) whose cosign signatures are in turn referrers of
  the attestation manifest (or its ``.sig`` tag); DSSE layers (cosign attestations);
  sigstore bundle layers (cosign 3, GitHub);
- cosign's ``sha256-<hex>.att`` tag;
- BuildKit attestation manifests inside the index (unsigned).

Every manifest and blob read is kept byte-exact in the blob store, so every digest can
be re-verified offline; the config blob of each attestation and signature manifest is
kept too, so ``push`` can write those manifests into another registry unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dhi_offline.errors import DhiError, MalformedEvidenceError
from dhi_offline.evidence.cosign import PREDICATE_TYPE_ANNOTATION
from dhi_offline.evidence.encoding import loads_json, require_dict
from dhi_offline.evidence.records import AttestationRecord, MemoryBlobStore, SignatureRef, record_id
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.mediatypes import Platform
from dhi_offline.oci.source import Fetched, Source

BUILDKIT_REFERENCE_TYPE = "vnd.docker.reference.type"
BUILDKIT_REFERENCE_DIGEST = "vnd.docker.reference.digest"
INTOTO_PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"


@dataclass(frozen=True)
class PlatformManifest:
    """One platform of an image."""

    platform: str
    digest: str


@dataclass
class DiscoveredImage:
    """An image resolved to digests, and the attestations found for it."""

    reference: str
    digest: str
    media_type: str
    platforms: list[PlatformManifest]
    records: list[AttestationRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was looked for and not found, for the report (not errors)."""


Progress = Callable[[str], None]


def _json(fetched: Fetched, what: str) -> dict[str, Any]:
    return require_dict(loads_json(fetched.data, what=what), what=what)


def _platform_text(obj: object) -> str | None:
    if not isinstance(obj, dict):
        return None
    try:
        return str(Platform.from_json(obj))
    except DhiError:
        return None


def _keep(store: MemoryBlobStore, fetched: Fetched) -> None:
    store.blobs[fetched.digest] = fetched.data


def _keep_config(source: Source, fetched: Fetched, store: MemoryBlobStore) -> None:
    """Keep the config blob of an evidence manifest, so ``push`` can put the manifest
    into another registry unchanged (a registry refuses a manifest whose blobs it lacks)."""
    doc = _json(fetched, "evidence manifest")
    config = doc.get("config")
    if not isinstance(config, dict):
        return
    digest = config.get("digest")
    if not isinstance(digest, str) or digest in store.blobs:
        return
    store.blobs[digest] = source.blob(digest, _size(config))


def resolve_image(
    source: Source,
    tag_or_digest: str,
    *,
    reference: str,
    platforms: list[Platform] | None,
    store: MemoryBlobStore,
) -> tuple[DiscoveredImage, list[tuple[dict[str, Any], str]]]:
    """Resolve the reference to its index (or manifest) and platform manifests.

    Returns:
        The image, and the BuildKit attestation descriptors of its index with the
        platform manifest digest each refers to.

    Raises:
        DhiError: unreachable, malformed, or none of the requested platforms.
    """
    top = source.resolve(tag_or_digest)
    _keep(store, top)
    doc = _json(top, "image manifest")
    media_type = str(doc.get("mediaType") or top.media_type)
    image = DiscoveredImage(
        reference=reference, digest=top.digest, media_type=media_type, platforms=[]
    )
    buildkit: list[tuple[dict[str, Any], str]] = []
    wanted = {str(p) for p in platforms} if platforms else None
    if media_type in mt.INDEX_TYPES or "manifests" in doc:
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise MalformedEvidenceError(f"{reference}: index has no manifests list")
        for desc in manifests:
            if not isinstance(desc, dict):
                continue
            annotations = desc.get("annotations") or {}
            if (
                isinstance(annotations, dict)
                and annotations.get(BUILDKIT_REFERENCE_TYPE) == "attestation-manifest"
            ):
                buildkit.append((desc, str(annotations.get(BUILDKIT_REFERENCE_DIGEST, ""))))
                continue
            plat = _platform_text(desc.get("platform"))
            if plat is None or plat.startswith("unknown/"):
                continue
            if wanted is not None and plat not in wanted:
                continue
            fetched = source.manifest(str(desc.get("digest")))
            _keep(store, fetched)
            image.platforms.append(PlatformManifest(platform=plat, digest=fetched.digest))
        if wanted is not None:
            missing = wanted - {p.platform for p in image.platforms}
            if missing:
                raise MalformedEvidenceError(
                    f"{reference}: platform(s) {', '.join(sorted(missing))} not in the index"
                )
    else:
        # A single-platform manifest: the platform is read from its config when asked for.
        image.platforms.append(PlatformManifest(platform="", digest=top.digest))
    if not image.platforms:
        raise MalformedEvidenceError(f"{reference}: no platform manifest to export")
    buildkit = [(d, s) for d, s in buildkit if any(p.digest == s for p in image.platforms)]
    return image, buildkit


def _layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    layers = manifest.get("layers")
    return [x for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []


def _annotation(desc: dict[str, Any], key: str) -> str | None:
    ann = desc.get("annotations")
    value = ann.get(key) if isinstance(ann, dict) else None
    return value if isinstance(value, str) else None


def _signature_refs(
    source: Source, attestation: Fetched, store: MemoryBlobStore
) -> list[SignatureRef]:
    """cosign signatures of an attestation manifest: referrers, then the ``.sig`` tag."""
    refs: list[SignatureRef] = []
    candidates: list[Fetched] = []
    result = source.referrers(attestation.digest, mt.COSIGN_SIGNATURE_ARTIFACT_TYPE)
    for desc in result.descriptors:
        if desc.artifact_type not in (None, mt.COSIGN_SIGNATURE_ARTIFACT_TYPE):
            continue
        candidates.append(source.manifest(desc.digest))
    tagged = source.tag(attestation.digest.replace(":", "-") + ".sig")
    if tagged is not None:
        candidates.append(tagged)
    for fetched in candidates:
        _keep(store, fetched)
        _keep_config(source, fetched, store)
        for layer in _layers(_json(fetched, "signature manifest")):
            if layer.get("mediaType") != mt.COSIGN_SIMPLE_SIGNING:
                continue
            digest = str(layer.get("digest"))
            store.blobs[digest] = source.blob(digest, _size(layer))
            refs.append(SignatureRef(manifest=fetched.digest, layer=digest))
    return refs


def _size(desc: dict[str, Any]) -> int | None:
    size = desc.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _records_from_manifest(
    source: Source,
    fetched: Fetched,
    *,
    image: DiscoveredImage,
    platform: PlatformManifest,
    store: MemoryBlobStore,
    via: str,
) -> list[AttestationRecord]:
    """Classify one referrer (or tagged) manifest by its content and record what it holds."""
    doc = _json(fetched, "referrer manifest")
    artifact_type = doc.get("artifactType")
    out: list[AttestationRecord] = []
    for layer in _layers(doc):
        media_type = layer.get("mediaType")
        digest = str(layer.get("digest"))
        if media_type == mt.IN_TOTO and artifact_type != mt.COSIGN_SIGNATURE_ARTIFACT_TYPE:
            layout = "dhi-scout"
            declared = _annotation(layer, INTOTO_PREDICATE_ANNOTATION)
        elif media_type == mt.DSSE_ENVELOPE:
            layout = "cosign-att"
            declared = _annotation(layer, PREDICATE_TYPE_ANNOTATION)
        elif isinstance(media_type, str) and media_type.startswith(mt.SIGSTORE_BUNDLE_PREFIX):
            layout = "sigstore-bundle"
            declared = _annotation(doc, BUNDLE_PREDICATE_ANNOTATION)
        else:
            continue
        store.blobs[digest] = source.blob(digest, _size(layer))
        signatures: list[SignatureRef] = []
        if layout == "dhi-scout":
            signatures = _signature_refs(source, fetched, store)
        out.append(
            AttestationRecord(
                id=record_id(layout, platform.digest, fetched.digest, digest),
                layout=layout,  # type: ignore[arg-type]
                image=image.digest,
                platform=platform.platform or None,
                subject=platform.digest,
                manifest=fetched.digest,
                layer=digest,
                predicate_type=declared,
                source=f"{source.description} ({via})",
                signatures=tuple(signatures),
            )
        )
    if out:
        _keep_config(source, fetched, store)
    return out


def discover_attestations(
    image: DiscoveredImage,
    sources: Iterable[Source],
    *,
    store: MemoryBlobStore,
    image_source: Source,
    buildkit: list[tuple[dict[str, Any], str]],
    progress: Progress | None = None,
) -> None:
    """Find every attestation of every platform of ``image`` and add its records.

    Raises:
        DhiError: a registry failed in a way retries did not mend (the caller names the image).
    """
    seen: set[str] = set()
    source_list = list(sources)
    for platform in image.platforms:
        label = platform.platform or image.reference
        for source in source_list:
            if progress:
                progress(f"{label}: referrers in {source.description}")
            result = source.referrers(platform.digest)
            for desc in result.descriptors:
                if desc.artifact_type == mt.COSIGN_SIGNATURE_ARTIFACT_TYPE:
                    continue  # a signature of the image itself, not an attestation
                fetched = source.manifest(desc.digest)
                _keep(store, fetched)
                for rec in _records_from_manifest(
                    source, fetched, image=image, platform=platform, store=store, via=result.via
                ):
                    if rec.id not in seen:
                        seen.add(rec.id)
                        image.records.append(rec)
            tagged = source.tag(platform.digest.replace(":", "-") + ".att")
            if tagged is not None:
                _keep(store, tagged)
                for rec in _records_from_manifest(
                    source,
                    tagged,
                    image=image,
                    platform=platform,
                    store=store,
                    via="cosign .att tag",
                ):
                    if rec.id not in seen:
                        seen.add(rec.id)
                        image.records.append(rec)
        if not any(r.subject == platform.digest for r in image.records):
            image.notes.append(f"{label}: no attestations found")
    for bk_desc, subject in buildkit:
        fetched = image_source.manifest(str(bk_desc.get("digest")))
        _keep(store, fetched)
        platform = next(p for p in image.platforms if p.digest == subject)
        for layer in _layers(_json(fetched, "BuildKit attestation manifest")):
            if layer.get("mediaType") != mt.IN_TOTO:
                continue
            digest = str(layer.get("digest"))
            store.blobs[digest] = image_source.blob(digest, _size(layer))
            rec = AttestationRecord(
                id=record_id("buildkit", subject, fetched.digest, digest),
                layout="buildkit",
                image=image.digest,
                platform=platform.platform or None,
                subject=subject,
                manifest=fetched.digest,
                layer=digest,
                predicate_type=_annotation(layer, INTOTO_PREDICATE_ANNOTATION),
                source=f"{image_source.description} (index)",
            )
            if rec.id not in seen:
                seen.add(rec.id)
                image.records.append(rec)
