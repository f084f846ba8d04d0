"""The export job: images in, one signed evidence bundle out.

Order of work, per image: resolve to digests for every platform; discover attestations
in the image's repository and in the attestation registry; complete SET-only log
entries with inclusion proofs and checkpoints from Rekor. Then, for all images: link
each log's newest checkpoint to the one packed last time; verify every attestation with
the same code the import side runs; write one signed, deterministic bundle of what
verified (and, with ``--allow-unverified``, what did not, flagged).

Concurrency (``ExportConfig.jobs``): up to ``jobs`` images are fetched at once, one
worker thread per image, each with its own blob store. The main thread takes the
results in request order and everything after that is sequential, so the bundle is the
same bytes whatever ``jobs`` is and whichever thread finishes first. A failed image
stops the images after it (they no longer matter) and the export then fails with the
error of the first failed image in request order: the error a sequential export gives.

The parts live beside this module: ``discover`` (images and their attestations, by
layout), ``rekor`` (completing SET-only entries, linking checkpoints),
``sigstore_bundles`` (``evidence/sigstore/*.sigstore.json``), ``state`` (sequences and
checkpoints under one lock), ``gate`` (stopping workers for ``jobs``).

The core never prints: it reports through ``on_event``, always from the calling thread
(a worker's steps are replayed when its image is taken), in the same order whatever
``jobs`` is; the CLI renders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dhi_offline import __version__
from dhi_offline.bundle import layout
from dhi_offline.bundle.manifest import ImageEntry, PlatformImage
from dhi_offline.bundle.signing import ExporterPrivateKey, public_key_of
from dhi_offline.bundle.writer import WrittenBundle, write_bundle
from dhi_offline.errors import DhiError, UsageError, VerificationError
from dhi_offline.evidence.records import (
    AttestationRecord,
    EvidenceIndex,
    MemoryBlobStore,
    TlogCompletion,
)
from dhi_offline.export.discover import DiscoveredImage, discover_attestations, resolve_image
from dhi_offline.export.gate import Gate, GatedSource
from dhi_offline.export.rekor import Completion, LogEntries, link_checkpoints, merge_entries
from dhi_offline.export.sigstore_bundles import sigstore_bundles
from dhi_offline.export.state import load_checkpoints, next_sequence, save_checkpoints
from dhi_offline.oci.mediatypes import Platform
from dhi_offline.oci.source import Source
from dhi_offline.tlog.rekor_client import RekorClient
from dhi_offline.trust.keyring import Keyring
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.attestation import AttestationResult, PublisherTrust, verify_attestation

Event = Callable[[str, str], None]
"""``on_event(kind, message)``: kind is ``image``, ``step``, ``warning`` or ``failed``.

``image`` names the image the export takes next (in request order); it is called from
the thread that called :func:`run_export`, as every other event."""

MAX_JOBS = 64
"""Most images fetched at once (``--jobs``)."""


@dataclass(frozen=True)
class ImageRequest:
    """One image to export, already turned into sources by the caller."""

    reference: str
    tag_or_digest: str
    source: Source
    attestation_sources: tuple[Source, ...]


@dataclass(frozen=True)
class ExportConfig:
    """Everything the export needs besides the images."""

    output: Path
    signing_key: ExporterPrivateKey
    keyring: Keyring
    trusted_root: TrustedRoot
    now: datetime
    expires: timedelta
    state_dir: Path
    platforms: tuple[Platform, ...] | None = None
    rekor: Callable[[str], RekorClient] | None = None
    """Makes a Rekor client for a log base URL; None means ``--no-rekor``."""
    allow_unverified: bool = False
    source_date_epoch: int | None = None
    jobs: int = 1
    """Images fetched at once (1 to :data:`MAX_JOBS`); 1 fetches them one after another."""
    tuf_members: tuple[tuple[str, bytes], ...] = ()
    """Verified Sigstore TUF metadata (``export.tuf.collect``), written under ``tuf/``;
    with them the bundle is format version 2."""


@dataclass
class ExportResult:
    """What the export did."""

    bundle: WrittenBundle
    sequence: int
    images: list[DiscoveredImage]
    verified: list[AttestationResult]
    failed: list[tuple[AttestationRecord, str]]
    completed_entries: int
    warnings: list[str] = field(default_factory=list)
    flags: tuple[str, ...] = ()

    @property
    def tlog_coverage(self) -> dict[str, int]:
        """Verified attestations by how the transparency log vouches for them."""
        out = {"inclusion-proof": 0, "set-only": 0, "absent": 0}
        for r in self.verified:
            out[r.tlog_status] += 1
        return out

    @property
    def by_predicate(self) -> dict[str, int]:
        """Verified attestations per predicate type."""
        out: dict[str, int] = {}
        for r in self.verified:
            out[r.predicate_type] = out.get(r.predicate_type, 0) + 1
        return dict(sorted(out.items()))


@dataclass
class _ImageWork:
    """What one image's worker found: merged in request order by the main thread."""

    image: DiscoveredImage
    store: MemoryBlobStore
    completion: Completion = field(default_factory=Completion)


def run_export(requests: list[ImageRequest], config: ExportConfig, on_event: Event) -> ExportResult:
    """Run the export (see the module docstring).

    Raises:
        DhiError: an image could not be resolved or read, or the bundle not written;
            nothing is left at the output path then. With several images failing, the
            error is that of the first in request order, whatever ``config.jobs`` is.
    """
    if not 1 <= config.jobs <= MAX_JOBS:
        raise UsageError(f"jobs must be between 1 and {MAX_JOBS}, got {config.jobs}")
    entries = LogEntries(config.trusted_root, config.rekor) if config.rekor else None
    try:
        works = _export_images(requests, config, entries, on_event)
        store = MemoryBlobStore()
        for work in works:
            store.blobs.update(work.store.blobs)
        merged = merge_entries([w.completion for w in works], lambda m: on_event("warning", m))
        tlog_members, completions, lookup = merged.members, merged.completions, merged.lookup
        if entries is not None:
            previous = load_checkpoints(config.state_dir)
            link_checkpoints(merged.latest, tlog_members, previous, config.trusted_root, entries)
    finally:
        if entries is not None:
            entries.close()
    if completions:
        on_event("step", f"completed {len(completions)} log entries with inclusion proofs")
    images = [w.image for w in works]
    records = [r for img in images for r in img.records]

    trust = PublisherTrust(keyring=config.keyring, trusted_root=config.trusted_root)
    verified: list[AttestationResult] = []
    failed: list[tuple[AttestationRecord, str]] = []
    kept: list[AttestationRecord] = []
    for record in records:
        try:
            result = verify_attestation(
                record, blobs=store, trust=trust, at=config.now, completions=lookup
            )
        except VerificationError as e:
            failed.append((record, e.one_line()))
            on_event("failed", e.one_line())
            if config.allow_unverified:
                kept.append(
                    AttestationRecord(
                        **{
                            **record.__dict__,
                            "exporter_status": "unverified",
                            "exporter_problem": e.one_line(),
                        }
                    )
                )
            continue
        verified.append(result)
        kept.append(record)

    extra = sigstore_bundles(verified, store, lookup, config.keyring, config.trusted_root)
    members = _members(
        images=images,
        kept=kept,
        store=store,
        completions=completions,
        tlog_members={**tlog_members, **extra},
        config=config,
    )
    flags = ("allow-unverified",) if config.allow_unverified and failed else ()
    signer = public_key_of(config.signing_key)
    sequence = next_sequence(signer.key_id, config.state_dir)
    written = write_bundle(
        config.output,
        tool_version=__version__,
        created=config.now,
        expires=config.now + config.expires,
        sequence=sequence,
        images=[_image_entry(img) for img in images],
        members=members,
        private_key=config.signing_key,
        source_date_epoch=config.source_date_epoch,
        flags=flags,
    )
    save_checkpoints(config.state_dir, tlog_members)
    return ExportResult(
        bundle=written,
        sequence=sequence,
        images=images,
        verified=verified,
        failed=failed,
        completed_entries=len(completions),
        flags=flags,
    )


def _export_images(
    requests: list[ImageRequest],
    config: ExportConfig,
    entries: LogEntries | None,
    on_event: Event,
) -> list[_ImageWork]:
    """Every image fetched (``config.jobs`` at once), in request order.

    Raises:
        DhiError: the error of the first image, in request order, that failed.
    """
    gate = Gate()
    shared = _Shared(config, entries, gate)
    works: list[_ImageWork] = []
    if config.jobs == 1 or len(requests) < 2:
        for index, req in enumerate(requests):
            on_event("image", req.reference)
            work = _export_image(index, req, shared, lambda m: on_event("step", m))
            _report_notes(work, req, on_event)
            works.append(work)
        return works
    steps: list[list[str]] = [[] for _ in requests]
    pool = ThreadPoolExecutor(
        max_workers=min(config.jobs, len(requests)), thread_name_prefix="dhi-export"
    )
    try:
        futures: list[Future[_ImageWork]] = [
            pool.submit(_export_image, index, req, shared, steps[index].append)
            for index, req in enumerate(requests)
        ]
        for index, (req, future) in enumerate(zip(requests, futures, strict=True)):
            on_event("image", req.reference)
            try:
                work = future.result()
            finally:
                if future.done():  # the worker has ended: its steps are all there
                    for message in steps[index]:
                        on_event("step", message)
            _report_notes(work, req, on_event)
            works.append(work)
    finally:
        # Done, or failed: no worker may go on fetching for an export that is over.
        gate.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
    return works


def _report_notes(work: _ImageWork, req: ImageRequest, on_event: Event) -> None:
    for note in work.image.notes:
        on_event("warning", f"{req.reference}: {note}")


@dataclass(frozen=True)
class _Shared:
    """What every worker shares (each part thread-safe or read-only)."""

    config: ExportConfig
    entries: LogEntries | None
    gate: Gate


def _export_image(
    index: int, req: ImageRequest, shared: _Shared, step: Callable[[str], None]
) -> _ImageWork:
    """Resolve, discover and complete the log entries of one image (a worker's job)."""
    config, entries, gate = shared.config, shared.entries, shared.gate

    def check() -> None:
        gate.check(index)

    store = MemoryBlobStore()
    source = GatedSource(req.source, check)
    try:
        image, buildkit = resolve_image(
            source,
            req.tag_or_digest,
            reference=req.reference,
            platforms=list(config.platforms) if config.platforms else None,
            store=store,
        )
        discover_attestations(
            image,
            [source, *(GatedSource(s, check) for s in req.attestation_sources)],
            store=store,
            image_source=source,
            buildkit=buildkit,
            progress=step,
        )
    except DhiError as e:
        gate.fail(index)
        raise type(e)(f"{req.reference}: {e.message}") from e
    work = _ImageWork(image=image, store=store)
    if entries is not None:
        try:
            entries.complete(image.records, store, work.completion, check)
        except DhiError as e:
            work.completion.late_error = e
    return work


def _image_entry(image: DiscoveredImage) -> ImageEntry:
    platforms = tuple(
        PlatformImage(platform=p.platform, digest=p.digest) for p in image.platforms if p.platform
    )
    return ImageEntry(
        reference=image.reference,
        digest=image.digest,
        media_type=image.media_type,
        platforms=platforms,
    )


def _config_digest(manifest: bytes) -> str | None:
    """The config digest a manifest names, or None (unparsable, or no config)."""
    try:
        doc = json.loads(manifest)
    except ValueError:
        return None
    config = doc.get("config") if isinstance(doc, dict) else None
    digest = config.get("digest") if isinstance(config, dict) else None
    return digest if isinstance(digest, str) else None


def _members(
    *,
    images: list[DiscoveredImage],
    kept: list[AttestationRecord],
    store: MemoryBlobStore,
    completions: list[TlogCompletion],
    tlog_members: dict[str, bytes],
    config: ExportConfig,
) -> list[tuple[str, bytes]]:
    """Every member of the bundle: only what the kept evidence and the images need."""
    needed: set[str] = set()
    for img in images:
        needed.add(img.digest)
        needed.update(p.digest for p in img.platforms)
    for r in kept:
        needed.update((r.manifest, r.layer))
        for s in r.signatures:
            needed.update((s.manifest, s.layer))
        # The config of each evidence manifest too, so push can write it unchanged.
        for manifest in (r.manifest, *(s.manifest for s in r.signatures)):
            config_blob = _config_digest(store.get(manifest))
            if config_blob is not None and config_blob in store.blobs:
                needed.add(config_blob)
    members: list[tuple[str, bytes]] = [(layout.blob_path(d), store.get(d)) for d in sorted(needed)]
    members += sorted(tlog_members.items())
    index = EvidenceIndex(attestations=tuple(kept), completions=tuple(completions))
    members.append((layout.EVIDENCE, index.to_json_bytes()))
    members.append(
        (layout.KEYRING, json.dumps(config.keyring.to_json(), sort_keys=True, indent=1).encode())
    )
    if config.trusted_root.raw:
        members.append((layout.TRUSTED_ROOT, config.trusted_root.raw))
    members += config.tuf_members
    return members
