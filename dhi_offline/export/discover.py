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
from dhi_offline.evidence.records import AttestationRecord, MemoryBlobStore
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.mediatypes import Platform
from dhi_offline.oci.source import Fetched, Source
from dhi_offline.verify.layouts import LAYOUTS, Found
from dhi_offline.verify.layouts import buildkit as bk
from dhi_offline.verify.layouts.fetch import fetched_json, keep, keep_config, layers

_IN_REFERRERS = tuple(layout for layout in LAYOUTS.values() if layout.in_referrers)
"""The layouts a referrer or tagged manifest may hold, in the order they are tried."""


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


def _platform_text(obj: object) -> str | None:
    if not isinstance(obj, dict):
        return None
    try:
        return str(Platform.from_json(obj))
    except DhiError:
        return None


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
    keep(store, top)
    doc = fetched_json(top, "image manifest")
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
            described = bk.described_manifest(desc)
            if described is not None:
                buildkit.append((desc, described))
                continue
            plat = _platform_text(desc.get("platform"))
            if plat is None or plat.startswith("unknown/"):
                continue
            if wanted is not None and plat not in wanted:
                continue
            fetched = source.manifest(str(desc.get("digest")))
            keep(store, fetched)
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


def _records_from_manifest(
    source: Source,
    fetched: Fetched,
    *,
    image: DiscoveredImage,
    platform: PlatformManifest,
    store: MemoryBlobStore,
    via: str,
) -> list[AttestationRecord]:
    """Classify one referrer (or tagged) manifest by its content and record what it holds.

    Each layer is recorded by the first layout that recognises it (``LAYOUTS`` order).
    """
    doc = fetched_json(fetched, "referrer manifest")
    found = Found(
        source=source,
        store=store,
        image=image.digest,
        platform=platform.platform or None,
        subject=platform.digest,
        via=via,
    )
    out: list[AttestationRecord] = []
    for layer in layers(doc):
        layout = next((x for x in _IN_REFERRERS if x.recognises(doc, layer)), None)
        if layout is not None:
            out.append(layout.record(found, fetched, doc, layer))
    if out:
        keep_config(source, fetched, store)
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
                keep(store, fetched)
                for rec in _records_from_manifest(
                    source, fetched, image=image, platform=platform, store=store, via=result.via
                ):
                    if rec.id not in seen:
                        seen.add(rec.id)
                        image.records.append(rec)
            tagged = source.tag(platform.digest.replace(":", "-") + ".att")
            if tagged is not None:
                keep(store, tagged)
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
    buildkit_layout = LAYOUTS[bk.BuildKit.name]
    for bk_desc, subject in buildkit:
        fetched = image_source.manifest(str(bk_desc.get("digest")))
        keep(store, fetched)
        platform = next(p for p in image.platforms if p.digest == subject)
        found = Found(
            source=image_source,
            store=store,
            image=image.digest,
            platform=platform.platform or None,
            subject=subject,
            via="index",
        )
        doc = fetched_json(fetched, "BuildKit attestation manifest")
        for layer in layers(doc):
            if not buildkit_layout.recognises(doc, layer):
                continue
            rec = buildkit_layout.record(found, fetched, doc, layer)
            if rec.id not in seen:
                seen.add(rec.id)
                image.records.append(rec)
