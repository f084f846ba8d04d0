"""The export job: images in, one signed evidence bundle out.

Order of work, per image: resolve to digests for every platform; discover attestations
in the image's repository and in the attestation registry; complete SET-only log
entries with inclusion proofs and checkpoints from Rekor; verify every attestation with
the same code the import side runs; then write one signed, deterministic bundle of
what verified (and, with ``--allow-unverified``, what did not, flagged).

The core never prints: it reports through ``on_event``; the CLI renders.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
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
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.attestation import AttestationResult, PublisherTrust, verify_attestation
from dhi_offline.verify.sigstore import Artifact, verify_sigstore_bundle

Event = Callable[[str, str], None]
"""``on_event(kind, message)``: kind is ``image``, ``step``, ``warning`` or ``failed``."""


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


def _complete_entries(
    records: Iterable[AttestationRecord],
    store: MemoryBlobStore,
    config: ExportConfig,
    on_event: Event,
) -> tuple[dict[str, bytes], list[TlogCompletion], dict[tuple[str, int], bytes]]:
    """Fetch inclusion proofs for SET-only entries; returns members, completions, lookup."""
    members: dict[str, bytes] = {}
    completions: list[TlogCompletion] = []
    lookup: dict[tuple[str, int], bytes] = {}
    if config.rekor is None:
        return members, completions, lookup
    clients: dict[str, RekorClient] = {}
    latest: dict[str, tuple[int, str]] = {}
    for record in records:
        try:
            needed = _log_entries_needing_proof(record, store)
        except DhiError:
            continue  # malformed evidence: verification reports it
        for log_id, index, body in needed:
            key = (log_id.hex(), index)
            if key in lookup:
                continue
            logs = [t for t in config.trusted_root.tlog_by_id(log_id) if t.key is not None]
            if not logs:
                continue
            log = logs[0]
            client = clients.get(log.base_url) or config.rekor(log.base_url)
            clients[log.base_url] = client
            try:
                entry = client.entry_by_index(index)
                checkpoint = verify_rekor_entry(entry, log, expected_body=body)
            except (RekorError, VerificationError) as e:
                on_event(
                    "warning", f"log entry {index} of {log.base_url} not completed: {e.one_line()}"
                )
                continue
            path = layout.tlog_entry_path(log_id.hex(), index)
            members[path] = entry.raw
            lookup[key] = entry.raw
            completions.append(TlogCompletion(log_id=log_id.hex(), log_index=index, path=path))
            envelope = entry.inclusion_proof.checkpoint if entry.inclusion_proof else None
            if envelope and checkpoint.tree_size > latest.get(log_id.hex(), (0, ""))[0]:
                latest[log_id.hex()] = (checkpoint.tree_size, envelope)
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
        client = clients.get(log.base_url) or config.rekor(log.base_url)
        clients[log.base_url] = client
        try:
            proof = client.consistency_proof(
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
    for client in clients.values():
        client.close()
    if completions:
        on_event("step", f"completed {len(completions)} log entries with inclusion proofs")
    return members, completions, lookup


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
            nothing is left at the output path then.
    """
    store = MemoryBlobStore()
    images: list[DiscoveredImage] = []
    for req in requests:
        on_event("image", req.reference)
        try:
            image, buildkit = resolve_image(
                req.source,
                req.tag_or_digest,
                reference=req.reference,
                platforms=list(config.platforms) if config.platforms else None,
                store=store,
            )
            discover_attestations(
                image,
                [req.source, *req.attestation_sources],
                store=store,
                image_source=req.source,
                buildkit=buildkit,
                progress=lambda m: on_event("step", m),
            )
        except DhiError as e:
            raise type(e)(f"{req.reference}: {e.message}") from e
        images.append(image)
        for note in image.notes:
            on_event("warning", f"{req.reference}: {note}")

    records = [r for img in images for r in img.records]
    tlog_members, completions, lookup = _complete_entries(records, store, config, on_event)

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
    members: list[tuple[str, bytes]] = [(layout.blob_path(d), store.get(d)) for d in sorted(needed)]
    members += sorted(tlog_members.items())
    index = EvidenceIndex(attestations=tuple(kept), completions=tuple(completions))
    members.append((layout.EVIDENCE, index.to_json_bytes()))
    members.append(
        (layout.KEYRING, json.dumps(config.keyring.to_json(), sort_keys=True, indent=1).encode())
    )
    if config.trusted_root.raw:
        members.append((layout.TRUSTED_ROOT, config.trusted_root.raw))
    return members
