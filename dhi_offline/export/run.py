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

The core never prints: it reports through ``on_event``, always from the calling thread
(a worker's steps are replayed when its image is taken), in the same order whatever
``jobs`` is; the CLI renders.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dhi_offline import __version__
from dhi_offline.bundle import layout
from dhi_offline.bundle.manifest import ImageEntry, PlatformImage
from dhi_offline.bundle.sequence_state import next_sequence
from dhi_offline.bundle.signing import ExporterPrivateKey, public_key_of
from dhi_offline.bundle.writer import WrittenBundle, write_bundle
from dhi_offline.errors import (
    ConsistencyProofError,
    DhiError,
    InputError,
    RekorError,
    UsageError,
    VerificationError,
)
from dhi_offline.evidence.cosign import BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION, parse_legacy_bundle
from dhi_offline.evidence.encoding import loads_json, require_dict
from dhi_offline.evidence.records import (
    AttestationRecord,
    EvidenceIndex,
    MemoryBlobStore,
    TlogCompletion,
)
from dhi_offline.evidence.sigstore_bundle import BUNDLE_V03_MEDIA_TYPE, parse_bundle
from dhi_offline.export.discover import DiscoveredImage, discover_attestations, resolve_image
from dhi_offline.oci.content import Fetched, ReferrersResult
from dhi_offline.oci.mediatypes import Platform
from dhi_offline.oci.source import Source
from dhi_offline.tlog.checkpoint import parse_checkpoint
from dhi_offline.tlog.consistency import ConsistencyRecord, verify_consistency_record
from dhi_offline.tlog.rekor_client import (
    RekorClient,
    entry_to_bundle_tlog_entry,
    parse_log_entry,
    verify_rekor_entry,
)
from dhi_offline.trust.keyring import Keyring
from dhi_offline.trust.trusted_root import LogInstance, TrustedRoot
from dhi_offline.verify.attestation import AttestationResult, PublisherTrust, verify_attestation
from dhi_offline.verify.sigstore import Artifact, verify_sigstore_bundle

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


def _log_entries_needing_proof(
    record: AttestationRecord, store: MemoryBlobStore
) -> list[tuple[bytes, int, bytes]]:
    """(log id, log index, body) of every SET-only entry this record carries."""
    out: list[tuple[bytes, int, bytes]] = []
    annotations: list[str] = []
    if record.layout == "dhi-scout":
        for sig in record.signatures:
            doc = require_dict(
                loads_json(store.get(sig.manifest), what="signature manifest"),
                what="signature manifest",
            )
            for layer in doc.get("layers") or []:
                if isinstance(layer, dict) and layer.get("digest") == sig.layer:
                    ann = layer.get("annotations") or {}
                    if isinstance(ann, dict) and isinstance(ann.get(BUNDLE_ANNOTATION), str):
                        annotations.append(ann[BUNDLE_ANNOTATION])
    elif record.layout == "cosign-att":
        doc = require_dict(
            loads_json(store.get(record.manifest), what="attestation manifest"),
            what="attestation manifest",
        )
        for layer in doc.get("layers") or []:
            if isinstance(layer, dict) and layer.get("digest") == record.layer:
                ann = layer.get("annotations") or {}
                if isinstance(ann, dict) and isinstance(ann.get(BUNDLE_ANNOTATION), str):
                    annotations.append(ann[BUNDLE_ANNOTATION])
    elif record.layout == "sigstore-bundle":
        bundle = parse_bundle(store.get(record.layer))
        out.extend(
            (e.log_id, e.log_index, e.body)
            for e in bundle.tlog_entries
            if e.inclusion_proof is None
        )
    for a in annotations:
        legacy = parse_legacy_bundle(a)
        out.append((legacy.log_id, legacy.log_index, legacy.body))
    return out


_EntryKey = tuple[str, int]
"""(hex log id, log index) of a transparency-log entry."""


@dataclass(frozen=True)
class _CompletedEntry:
    """A SET-only entry as Rekor served it, with an inclusion proof, checked."""

    raw: bytes
    tree_size: int
    checkpoint: str | None
    """The signed checkpoint the inclusion proof leads to, if the entry carried one."""


@dataclass
class _ImageWork:
    """What one image's worker found: merged in request order by the main thread."""

    image: DiscoveredImage
    store: MemoryBlobStore
    wanted: list[_EntryKey] = field(default_factory=list)
    """Every SET-only entry of the image's records that a trusted log can complete, in
    record order, repeats included (the order completions are packed in)."""
    entries: dict[_EntryKey, _CompletedEntry] = field(default_factory=dict)
    problems: dict[_EntryKey, str] = field(default_factory=dict)
    """Why an entry could not be completed (a warning, not an error)."""
    late_error: DhiError | None = None
    """An error met while completing entries: raised after every image is discovered,
    as the sequential export raised it."""


class _Stopped(Exception):
    """Raised in a worker whose image no longer matters (an earlier image failed)."""


class _Gate:
    """Which images may still fetch: those before the first failed one (request order)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limit: int | None = None

    def fail(self, index: int) -> None:
        """Image ``index`` failed: the images after it stop."""
        with self._lock:
            self._limit = index if self._limit is None else min(self._limit, index)

    def stop_all(self) -> None:
        """Every image stops (the export is over)."""
        self.fail(-1)

    def check(self, index: int) -> None:
        """Raise :class:`_Stopped` if image ``index`` should stop."""
        with self._lock:
            stopped = self._limit is not None and index > self._limit
        if stopped:
            raise _Stopped


class _GatedSource:
    """A source that asks the gate before every request, so a stopped worker ends soon."""

    def __init__(self, source: Source, check: Callable[[], None]) -> None:
        self._source = source
        self._check = check
        self.description = source.description

    def resolve(self, tag_or_digest: str) -> Fetched:
        """As :meth:`Source.resolve`."""
        self._check()
        return self._source.resolve(tag_or_digest)

    def manifest(self, digest: str) -> Fetched:
        """As :meth:`Source.manifest`."""
        self._check()
        return self._source.manifest(digest)

    def blob(self, digest: str, size: int | None = None) -> bytes:
        """As :meth:`Source.blob`."""
        self._check()
        return self._source.blob(digest, size)

    def referrers(self, digest: str, artifact_type: str | None = None) -> ReferrersResult:
        """As :meth:`Source.referrers`."""
        self._check()
        return self._source.referrers(digest, artifact_type)

    def tag(self, tag: str) -> Fetched | None:
        """As :meth:`Source.tag`."""
        self._check()
        return self._source.tag(tag)


class _LogEntries:
    """Completes SET-only entries from Rekor for every worker (thread-safe).

    One Rekor client per log URL, shared. An entry one image has completed is not
    fetched again for another; which worker fetched it does not matter, because the
    main thread packs completions in record order (:func:`_merge_entries`).
    """

    def __init__(self, trusted_root: TrustedRoot, make: Callable[[str], RekorClient]) -> None:
        self._trusted_root = trusted_root
        self._make = make
        self._lock = threading.Lock()
        self._clients: dict[str, RekorClient] = {}
        self._completed: set[_EntryKey] = set()

    def client(self, base_url: str) -> RekorClient:
        """The client for the log at ``base_url``, made on first use."""
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                client = self._clients[base_url] = self._make(base_url)
            return client

    def close(self) -> None:
        """Close every client made."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def complete(
        self, records: list[AttestationRecord], work: _ImageWork, check: Callable[[], None]
    ) -> None:
        """Fetch an inclusion proof for every SET-only entry ``records`` carry, into ``work``."""
        for record in records:
            try:
                needed = _log_entries_needing_proof(record, work.store)
            except DhiError:
                continue  # malformed evidence: verification reports it
            for log_id, index, body in needed:
                logs = [t for t in self._trusted_root.tlog_by_id(log_id) if t.key is not None]
                if not logs:
                    continue
                key = (log_id.hex(), index)
                work.wanted.append(key)
                with self._lock:
                    if key in self._completed:
                        continue
                check()
                self._fetch(logs[0], key, body, work)

    def _fetch(self, log: LogInstance, key: _EntryKey, body: bytes, work: _ImageWork) -> None:
        index = key[1]
        try:
            entry = self.client(log.base_url).entry_by_index(index)
            checkpoint = verify_rekor_entry(entry, log, expected_body=body)
        except (RekorError, VerificationError) as e:
            work.problems[key] = (
                f"log entry {index} of {log.base_url} not completed: {e.one_line()}"
            )
            return
        envelope = entry.inclusion_proof.checkpoint if entry.inclusion_proof else None
        work.entries[key] = _CompletedEntry(entry.raw, checkpoint.tree_size, envelope or None)
        with self._lock:
            self._completed.add(key)


def _merge_entries(
    works: list[_ImageWork], on_event: Event
) -> tuple[
    dict[str, bytes], list[TlogCompletion], dict[_EntryKey, bytes], dict[str, tuple[int, str]]
]:
    """Completed entries in record order: members, completions, lookup, newest checkpoints.

    The order (and the newest checkpoint per log, the first of the largest tree) is the
    one a sequential export produces, whichever worker fetched an entry.
    """
    fetched: dict[_EntryKey, _CompletedEntry] = {}
    problems: dict[_EntryKey, str] = {}
    for work in works:
        for key, entry in work.entries.items():
            fetched.setdefault(key, entry)
        for key, problem in work.problems.items():
            problems.setdefault(key, problem)
    members: dict[str, bytes] = {}
    completions: list[TlogCompletion] = []
    lookup: dict[_EntryKey, bytes] = {}
    latest: dict[str, tuple[int, str]] = {}
    for work in works:
        for key in work.wanted:
            if key in lookup:
                continue
            completed = fetched.get(key)
            if completed is None:
                on_event("warning", problems.get(key, f"log entry {key[1]} not completed"))
                continue
            log_id_hex, index = key
            path = layout.tlog_entry_path(log_id_hex, index)
            members[path] = completed.raw
            lookup[key] = completed.raw
            completions.append(TlogCompletion(log_id=log_id_hex, log_index=index, path=path))
            if completed.checkpoint and completed.tree_size > latest.get(log_id_hex, (0, ""))[0]:
                latest[log_id_hex] = (completed.tree_size, completed.checkpoint)
        if work.late_error is not None:
            raise work.late_error
    return members, completions, lookup, latest


def _link_checkpoints(
    latest: dict[str, tuple[int, str]],
    members: dict[str, bytes],
    config: ExportConfig,
    entries: _LogEntries,
) -> None:
    """Pack each log's newest checkpoint, linked to the one packed last time.

    Raises:
        ConsistencyProofError: the log forked, or cannot prove one tree extends the other.
    """
    previous = load_checkpoints(config.state_dir)
    for log_id_hex, (size, envelope) in latest.items():
        members[layout.checkpoint_path(log_id_hex)] = envelope.encode()
        old = previous.get(log_id_hex)
        known = config.trusted_root.tlog_by_id(bytes.fromhex(log_id_hex))
        if old is None or not known:
            continue
        log = known[0]
        seen = parse_checkpoint(old)
        if seen.tree_size == size:
            if seen.root_hash != parse_checkpoint(envelope).root_hash:
                raise ConsistencyProofError(
                    f"{log.base_url} signed two different trees of size {size}: the log forked"
                )
            continue
        # Prove the smaller tree is a prefix of the larger, whichever came first.
        small, large = (old, envelope) if seen.tree_size < size else (envelope, old)
        try:
            proof = entries.client(log.base_url).consistency_proof(
                parse_checkpoint(small).tree_size, parse_checkpoint(large).tree_size
            )
        except RekorError as e:
            # Two signed tree heads we cannot link: packing either would hide a fork.
            raise ConsistencyProofError(
                f"{log.base_url} cannot prove its tree of size {parse_checkpoint(small).tree_size} "
                f"is a prefix of its tree of size {parse_checkpoint(large).tree_size}: {e.message}"
            ) from e
        link = ConsistencyRecord(old_checkpoint=small, new_checkpoint=large, hashes=proof.hashes)
        # A log that cannot prove one tree extends the other has forked.
        verify_consistency_record(link, log)
        if seen.tree_size < size:
            members[layout.consistency_path(log_id_hex, seen.tree_size, size)] = (
                link.to_json_bytes()
            )


def _sigstore_bundles(
    verified: list[AttestationResult],
    store: MemoryBlobStore,
    lookup: dict[tuple[str, int], bytes],
    config: ExportConfig,
) -> dict[str, bytes]:
    """A sigstore bundle v0.3 for every Rekor-backed cosign signature that verified.

    Each bundle is verified with the same key before it is packed: what other clients
    are given to check must check out here first.
    """
    out: dict[str, bytes] = {}
    for result in verified:
        record = result.record
        if record.layout != "dhi-scout" or result.key_id is None:
            continue
        key_entry = config.keyring.by_id(result.key_id)
        if key_entry is None:
            continue
        for sig in record.signatures:
            try:
                bundle = _bundle_for_signature(
                    sig.manifest, sig.layer, store, lookup, result.key_id
                )
                if bundle is None:
                    continue
                verify_sigstore_bundle(
                    parse_bundle(bundle),
                    artifact=Artifact.from_bytes(store.get(sig.layer)),
                    trusted_root=config.trusted_root,
                    key=key_entry.key,
                )
            except DhiError:
                continue
            out[layout.sigstore_bundle_path(record.id)] = bundle
            break
    return out


def _bundle_for_signature(
    manifest_digest: str,
    layer_digest: str,
    store: MemoryBlobStore,
    lookup: dict[tuple[str, int], bytes],
    key_id: str,
) -> bytes | None:
    doc = require_dict(
        loads_json(store.get(manifest_digest), what="signature manifest"), what="signature manifest"
    )
    for layer in doc.get("layers") or []:
        if not isinstance(layer, dict) or layer.get("digest") != layer_digest:
            continue
        ann = layer.get("annotations") or {}
        if not isinstance(ann, dict) or not isinstance(ann.get(BUNDLE_ANNOTATION), str):
            return None
        legacy = parse_legacy_bundle(ann[BUNDLE_ANNOTATION])
        raw = lookup.get((legacy.log_id.hex(), legacy.log_index))
        if raw is None:
            return None
        payload = store.get(layer_digest)
        bundle = {
            "mediaType": BUNDLE_V03_MEDIA_TYPE,
            "verificationMaterial": {
                "publicKey": {"hint": key_id},
                "tlogEntries": [entry_to_bundle_tlog_entry(parse_log_entry(raw))],
            },
            "messageSignature": {
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": base64.b64encode(hashlib.sha256(payload).digest()).decode(),
                },
                "signature": str(ann.get(SIGNATURE_ANNOTATION, "")),
            },
        }
        return json.dumps(bundle, sort_keys=True, indent=1).encode() + b"\n"
    return None


CHECKPOINT_STATE = "checkpoints.json"


def load_checkpoints(state_dir: Path) -> dict[str, str]:
    """The newest checkpoint this exporter packed per log (hex log id -> note)."""
    try:
        doc = json.loads((state_dir / CHECKPOINT_STATE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as e:
        raise InputError(f"exporter state {state_dir / CHECKPOINT_STATE} is unreadable: {e}") from e
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise InputError(f"exporter state {state_dir / CHECKPOINT_STATE} is malformed")
    return doc


def save_checkpoints(state_dir: Path, members: dict[str, bytes]) -> None:
    """Remember the checkpoints just packed, for the next export's consistency proofs."""
    current = load_checkpoints(state_dir)
    for path, data in members.items():
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "tlog" and parts[2] == "checkpoint.txt":
            note = data.decode()
            old = current.get(parts[1])
            # Never move the remembered tree head backwards.
            if old is None or parse_checkpoint(note).tree_size > parse_checkpoint(old).tree_size:
                current[parts[1]] = note
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{CHECKPOINT_STATE}.tmp"
    tmp.write_text(json.dumps(current, sort_keys=True, indent=1))
    tmp.replace(state_dir / CHECKPOINT_STATE)


def run_export(requests: list[ImageRequest], config: ExportConfig, on_event: Event) -> ExportResult:
    """Run the export (see the module docstring).

    Raises:
        DhiError: an image could not be resolved or read, or the bundle not written;
            nothing is left at the output path then. With several images failing, the
            error is that of the first in request order, whatever ``config.jobs`` is.
    """
    if not 1 <= config.jobs <= MAX_JOBS:
        raise UsageError(f"jobs must be between 1 and {MAX_JOBS}, got {config.jobs}")
    entries = _LogEntries(config.trusted_root, config.rekor) if config.rekor else None
    try:
        works = _export_images(requests, config, entries, on_event)
        store = MemoryBlobStore()
        for work in works:
            store.blobs.update(work.store.blobs)
        tlog_members, completions, lookup, latest = _merge_entries(works, on_event)
        if entries is not None:
            _link_checkpoints(latest, tlog_members, config, entries)
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

    extra = _sigstore_bundles(verified, store, lookup, config)
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
    entries: _LogEntries | None,
    on_event: Event,
) -> list[_ImageWork]:
    """Every image fetched (``config.jobs`` at once), in request order.

    Raises:
        DhiError: the error of the first image, in request order, that failed.
    """
    gate = _Gate()
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
    entries: _LogEntries | None
    gate: _Gate


def _export_image(
    index: int, req: ImageRequest, shared: _Shared, step: Callable[[str], None]
) -> _ImageWork:
    """Resolve, discover and complete the log entries of one image (a worker's job)."""
    config, entries, gate = shared.config, shared.entries, shared.gate

    def check() -> None:
        gate.check(index)

    store = MemoryBlobStore()
    source = _GatedSource(req.source, check)
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
            [source, *(_GatedSource(s, check) for s in req.attestation_sources)],
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
            entries.complete(image.records, work, check)
        except DhiError as e:
            work.late_error = e
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
