"""Verification steps several layouts share (the plan is in ``verify.attestation``).

Every function takes evidence already read (bytes, parsed JSON) and either returns what
it verified or raises a :class:`~dhi_offline.errors.VerificationError` naming the step.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dhi_offline.encoding import loads_json, require_dict
from dhi_offline.errors import (
    DhiError,
    MalformedEvidenceError,
    SignatureError,
    SubjectMismatchError,
    TransparencyLogError,
)
from dhi_offline.evidence.cosign import BUNDLE_ANNOTATION, parse_legacy_bundle
from dhi_offline.evidence.intoto import Prepared, Statement, parse_statement
from dhi_offline.evidence.records import AttestationRecord, BlobStore
from dhi_offline.evidence.sigstore_bundle import TlogEntry
from dhi_offline.tlog.rekor_api import parse_rekor_entry
from dhi_offline.trust.keyring import KeyringEntry
from dhi_offline.trust.keys import load_pem
from dhi_offline.verify.layouts import fetch
from dhi_offline.verify.layouts.interface import LogEntryRef, PublisherTrust, annotation

T = TypeVar("T")


def manifest_json(blobs: BlobStore, digest: str, what: str) -> dict[str, Any]:
    """The stored manifest ``digest`` as a JSON object."""
    return require_dict(loads_json(blobs.get(digest), what=what), what=what)


def listed_layer(manifest: dict[str, Any], digest: str, what: str) -> dict[str, Any]:
    """The layer descriptor ``digest`` of ``manifest``, which must list it."""
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise MalformedEvidenceError(f"{what} has no layers")
    for layer in layers:
        if isinstance(layer, dict) and layer.get("digest") == digest:
            return layer
    raise MalformedEvidenceError(f"{what} does not list layer {digest[:19]}…")


def check_subject_field(manifest: dict[str, Any], digest: str, what: str) -> None:
    """A manifest's OCI ``subject``, when present, is ``digest``."""
    subject = manifest.get("subject")
    if subject is None:
        return
    if not isinstance(subject, dict) or subject.get("digest") != digest:
        raise SubjectMismatchError(f"{what} is a referrer of another manifest, not {digest[:19]}…")


def attestation_layer(record: AttestationRecord, blobs: BlobStore) -> tuple[dict[str, Any], bytes]:
    """Step (1): the attestation manifest is about the platform and lists the layer.

    Returns:
        The layer's descriptor and its bytes (checked against its digest by ``blobs``).
    """
    # (1): the attestation manifest.
    manifest = manifest_json(blobs, record.manifest, "attestation manifest")
    check_subject_field(manifest, record.subject, "attestation manifest")
    layer_desc = listed_layer(manifest, record.layer, "attestation manifest")
    return layer_desc, blobs.get(record.layer)


def bare_statement(
    record: AttestationRecord, blobs: BlobStore, prepared: Prepared | None
) -> Statement:
    """Steps (1) and (2) for a bare in-toto statement layer (``dhi-scout``, ``buildkit``)."""
    _, layer = attestation_layer(record, blobs)
    # (2): the bare statement.
    # blobs.get checked the layer against its digest: no need to hash it again.
    statement = parse_statement(
        layer, prepared=prepared, sha256=record.layer.removeprefix("sha256:")
    )
    statement.require_subject(record.subject)
    return statement


def completed(entry: TlogEntry, completions: Mapping[tuple[str, int], bytes]) -> TlogEntry:
    """Add the inclusion proof fetched at export to a SET-only entry, if there is one."""
    if entry.inclusion_proof is not None:
        return entry
    raw = completions.get((entry.log_id.hex(), entry.log_index))
    if raw is None:
        return entry
    fetched = parse_rekor_entry(raw)
    if fetched.body != entry.body or fetched.log_id != entry.log_id:
        raise TransparencyLogError(
            f"the Rekor entry stored for log index {entry.log_index} is not the signed entry"
        )
    return TlogEntry(
        log_index=entry.log_index,
        log_id=entry.log_id,
        kind=entry.kind,
        version=entry.version,
        integrated_time=entry.integrated_time,
        body=entry.body,
        signed_entry_timestamp=entry.signed_entry_timestamp,
        inclusion_proof=fetched.inclusion_proof,
    )


def legacy_entry(annotation: str) -> TlogEntry:
    """The log entry of a cosign ``dev.sigstore.cosign/bundle`` annotation (SET only)."""
    legacy = parse_legacy_bundle(annotation)
    kind, version = legacy.kind_version
    return TlogEntry(
        log_index=legacy.log_index,
        log_id=legacy.log_id,
        kind=kind,
        version=version,
        integrated_time=legacy.integrated_time,
        body=legacy.body,
        signed_entry_timestamp=legacy.signed_entry_timestamp,
        inclusion_proof=None,
    )


def logged_key_id(annotation: object) -> str | None:
    """The key id of the public key a cosign bundle annotation's Rekor entry records
    (hashedrekord, intoto), or None (no entry, a certificate, unreadable). Used only to
    name the signer in a refusal: it is never trusted."""
    if not isinstance(annotation, str) or not annotation:
        return None
    try:
        spec = json.loads(parse_legacy_bundle(annotation).body).get("spec", {})
        signature = spec.get("signature") if isinstance(spec.get("signature"), dict) else {}
        found = signature.get("publicKey") or spec.get("publicKey")
        b64 = found.get("content") if isinstance(found, dict) else found
        pem = base64.b64decode(str(b64), validate=True)
        if b"CERTIFICATE" in pem:
            return None
        return load_pem(pem).key_id
    except (DhiError, ValueError, TypeError, AttributeError, RecursionError):
        return None


def try_keys(
    trust: PublisherTrust,
    check: Callable[[KeyringEntry], T],
    signer: Callable[[], str | None] | None = None,
) -> tuple[KeyringEntry, T]:
    """The first keyring entry whose ``check`` passes the signature step, with its value.

    Only a signature failure moves on to the next key; any other failure is about the
    evidence itself and is raised at once. The refusal names every pinned key and, when
    ``signer`` can tell (a key id recorded in the evidence's log entry), the key that did
    sign.
    """
    entries = list(trust.keyring.entries)
    entries.sort(key=lambda e: e.key_id not in trust.last_signer)  # stable: keeps order
    for entry in entries:
        try:
            value = check(entry)
        except SignatureError:
            continue
        trust.last_signer[:] = [entry.key_id]
        return entry, value
    names = ", ".join(f"{e.name} {e.key_id[:12]}…" for e in trust.keyring.entries) or "none"
    signed_by = signer() if signer is not None else None
    who = (
        f"signed by key {signed_by[:16]}… (from its transparency-log entry), not pinned"
        if signed_by
        else "the signing key is not named by the evidence (no transparency-log entry)"
    )
    raise SignatureError(f"not signed by any pinned publisher key: {who}; pinned: {names}")


def legacy_log_entries(
    blobs: BlobStore, manifest: str, layer_digest: str, what: str
) -> list[LogEntryRef]:
    """The Rekor entry cosign logged for one layer of ``manifest`` (its bundle annotation)."""
    out: list[LogEntryRef] = []
    for layer in fetch.layers(manifest_json(blobs, manifest, what)):
        logged = annotation(layer, BUNDLE_ANNOTATION)
        if layer.get("digest") == layer_digest and logged is not None:
            legacy = parse_legacy_bundle(logged)
            out.append(LogEntryRef(legacy.log_id, legacy.log_index, legacy.body))
    return out
