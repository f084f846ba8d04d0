"""Verification of one attestation record against pinned publisher keys, offline.

The same function runs at export (before packing) and at import. Plan per record:

1. The attestation manifest is the stored bytes of its digest, lists the layer, and its
   ``subject`` (when present) is the platform manifest the record is for.
2. The statement: a bare in-toto statement (``dhi-scout``, ``buildkit``), a DSSE
   envelope (``cosign-att``) or a sigstore bundle (``sigstore-bundle``); its subject must
   be the platform manifest's digest (no mix-and-match between images or platforms).
3. The signature, by a key of the pinned publisher keyring:
   - ``dhi-scout``: a cosign simple-signing payload naming the attestation manifest's
     digest, signed by the key (cosign ``verify --key`` on the attestation manifest);
   - ``cosign-att``: the DSSE envelope signed by the key;
   - ``sigstore-bundle``: the whole sigstore bundle plan (``verify/sigstore.py``);
   - ``buildkit``: unsigned, reported as such.
4. The transparency log, when the evidence carries an entry: the entry bound to this
   signature (CVE-2022-36056), its SET, and the inclusion proof and checkpoint, either
   carried or completed from Rekor at export. No entry is recorded as "absent", not an
   error: Docker Hardened Images may skip Rekor. Policy decides whether that is enough.
5. The key's validity window at every verified signing time (or at the reference time
   when no time was verified: an inactive key then fails).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from dhi_offline.errors import (
    DhiError,
    MalformedEvidenceError,
    SignatureError,
    SubjectMismatchError,
    TransparencyLogError,
    VerificationError,
)
from dhi_offline.evidence.cosign import (
    BUNDLE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    parse_legacy_bundle,
    signature_from_annotation,
)
from dhi_offline.evidence.dsse import envelope_from_bytes, verify_envelope
from dhi_offline.evidence.encoding import loads_json, require_dict
from dhi_offline.evidence.intoto import Prepared, Statement, parse_statement
from dhi_offline.evidence.records import AttestationRecord, BlobStore
from dhi_offline.evidence.sigstore_bundle import TlogEntry, parse_bundle
from dhi_offline.evidence.simplesigning import (
    SIMPLE_SIGNING_MEDIA_TYPE,
    parse_simple_signing,
    require_manifest_digest,
)
from dhi_offline.tlog.body import SignedContent
from dhi_offline.tlog.entry import parse_rekor_entry
from dhi_offline.trust.keyring import Keyring, KeyringEntry
from dhi_offline.trust.keys import load_pem
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.sigstore import Artifact, VerifiedBundle, verify_sigstore_bundle
from dhi_offline.verify.tlog import VerifiedLogEntry, verify_log_entry

TlogStatus = Literal["inclusion-proof", "set-only", "absent"]
T = TypeVar("T")


@dataclass(frozen=True)
class PublisherTrust:
    """What the verifier trusts for publisher evidence."""

    keyring: Keyring
    trusted_root: TrustedRoot
    last_signer: list[str] = field(default_factory=list, compare=False, repr=False)
    """Key id that verified the previous signature: tried first (a bundle's attestations
    usually share one signer); every key is still tried before a signature is refused."""


@dataclass(frozen=True)
class AttestationResult:
    """A verified attestation."""

    record: AttestationRecord
    statement: Statement
    signer: str
    """Keyring entry name, or "unsigned" for BuildKit attestations."""
    key_id: str | None
    signing_times: tuple[datetime, ...]
    log_entries: tuple[VerifiedLogEntry, ...]

    @property
    def predicate_type(self) -> str:
        """The predicate type of the signed statement."""
        return self.statement.predicate_type

    @property
    def tlog_status(self) -> TlogStatus:
        """How the transparency log vouches for this attestation."""
        if any(e.inclusion_proof for e in self.log_entries):
            return "inclusion-proof"
        if self.log_entries:
            return "set-only"
        return "absent"


def _manifest(blobs: BlobStore, digest: str, what: str) -> dict[str, Any]:
    return require_dict(loads_json(blobs.get(digest), what=what), what=what)


def _layer(manifest: dict[str, Any], digest: str, what: str) -> dict[str, Any]:
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise MalformedEvidenceError(f"{what} has no layers")
    for layer in layers:
        if isinstance(layer, dict) and layer.get("digest") == digest:
            return layer
    raise MalformedEvidenceError(f"{what} does not list layer {digest[:19]}…")


def _check_subject_field(manifest: dict[str, Any], digest: str, what: str) -> None:
    subject = manifest.get("subject")
    if subject is None:
        return
    if not isinstance(subject, dict) or subject.get("digest") != digest:
        raise SubjectMismatchError(f"{what} is a referrer of another manifest, not {digest[:19]}…")


def _completed(entry: TlogEntry, completions: Mapping[tuple[str, int], bytes]) -> TlogEntry:
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


def _legacy_entry(annotation: str) -> TlogEntry:
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


def _try_keys(
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


def verify_attestation(
    record: AttestationRecord,
    *,
    blobs: BlobStore,
    trust: PublisherTrust,
    at: datetime,
    completions: Mapping[tuple[str, int], bytes] | None = None,
    prepared: Prepared | None = None,
) -> AttestationResult:
    """Verify one record (see the module docstring for the plan).

    Args:
        at: the reference time (``--at`` or now), used for keys when no time is verified.
        completions: Rekor responses stored at export, by (log id hex, log index).
        prepared: statements whose top level was parsed ahead, by their exact bytes.

    Raises:
        VerificationError: a subclass naming the failed step.
    """
    completions = completions or {}
    where = f"attestation {record.id} ({record.platform or 'image'})"
    try:
        if record.layout == "sigstore-bundle":
            return _sigstore_bundle(record, blobs, trust, at, completions)
        # (1): the attestation manifest.
        manifest = _manifest(blobs, record.manifest, "attestation manifest")
        _check_subject_field(manifest, record.subject, "attestation manifest")
        layer_desc = _layer(manifest, record.layer, "attestation manifest")
        layer = blobs.get(record.layer)
        if record.layout == "cosign-att":
            return _cosign_att(
                record,
                layer=layer,
                layer_desc=layer_desc,
                trust=trust,
                at=at,
                completions=completions,
                prepared=prepared,
            )
        # (2): the bare statement.
        # blobs.get checked the layer against its digest: no need to hash it again.
        statement = parse_statement(
            layer, prepared=prepared, sha256=record.layer.removeprefix("sha256:")
        )
        statement.require_subject(record.subject)
        if record.layout == "buildkit":
            return AttestationResult(record, statement, "unsigned", None, (), ())
        return _dhi_scout(
            record, statement=statement, blobs=blobs, trust=trust, at=at, completions=completions
        )
    except VerificationError as e:
        raise type(e)(f"{where}: {e.message}", step=e.step) from e
    except DhiError as e:
        raise MalformedEvidenceError(f"{where}: {e.message}") from e


def _dhi_scout(
    record: AttestationRecord,
    *,
    statement: Statement,
    blobs: BlobStore,
    trust: PublisherTrust,
    at: datetime,
    completions: Mapping[tuple[str, int], bytes],
) -> AttestationResult:
    # (3): a cosign signature over the attestation manifest, by a pinned key.
    if not record.signatures:
        raise SignatureError("the attestation manifest has no cosign signature")
    last: VerificationError = SignatureError("the attestation manifest has no cosign signature")
    for ref in record.signatures:
        try:
            sig_manifest = _manifest(blobs, ref.manifest, "signature manifest")
            _check_subject_field(sig_manifest, record.manifest, "signature manifest")
            desc = _layer(sig_manifest, ref.layer, "signature manifest")
            if desc.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
                raise MalformedEvidenceError("signature layer is not a simple-signing payload")
            annotations = desc.get("annotations") or {}
            if not isinstance(annotations, dict):
                raise MalformedEvidenceError("signature layer annotations are not an object")
            payload = blobs.get(ref.layer)
            simple = parse_simple_signing(payload)
            require_manifest_digest(simple, record.manifest)
            signature = signature_from_annotation(str(annotations.get(SIGNATURE_ANNOTATION, "")))
            if not signature:
                raise SignatureError("signature layer carries no signature")

            def check(k: KeyringEntry, sig: bytes = signature, data: bytes = payload) -> None:
                k.key.verify(sig, data)

            def signer(logged: object = annotations.get(BUNDLE_ANNOTATION)) -> str | None:
                return logged_key_id(logged)

            entry, _ = _try_keys(trust, check, signer)
            # (4): the transparency log, when the signature was logged.
            entries: list[VerifiedLogEntry] = []
            times: list[datetime] = []
            bundle_annotation = annotations.get(BUNDLE_ANNOTATION)
            if bundle_annotation:
                tlog_entry = _completed(_legacy_entry(str(bundle_annotation)), completions)
                content = SignedContent(
                    signature=signature,
                    key=entry.key,
                    artifact_digest=hashlib.sha256(payload).digest(),
                )
                verified, when = verify_log_entry(tlog_entry, content, trust.trusted_root)
                entries.append(verified)
                if when is not None:
                    times.append(when)
            # (5): the key's window.
            entry.check_signing_times(times, fallback=at)
            return AttestationResult(
                record, statement, entry.name, entry.key_id, tuple(times), tuple(entries)
            )
        except VerificationError as e:
            last = e
    raise last


def _cosign_att(
    record: AttestationRecord,
    *,
    layer: bytes,
    layer_desc: dict[str, Any],
    trust: PublisherTrust,
    at: datetime,
    completions: Mapping[tuple[str, int], bytes],
    prepared: Prepared | None,
) -> AttestationResult:
    envelope = envelope_from_bytes(layer)
    # (3): the DSSE signature by a pinned key.
    annotations_of_layer = layer_desc.get("annotations") or {}
    entry, signed = _try_keys(
        trust,
        lambda k: verify_envelope(envelope, k.key),
        lambda: logged_key_id(
            annotations_of_layer.get(BUNDLE_ANNOTATION)
            if isinstance(annotations_of_layer, dict)
            else None
        ),
    )
    # (2): the statement inside.
    statement = parse_statement(envelope.payload, prepared=prepared)
    statement.require_subject(record.subject)
    # (4): the log entry from the annotation, bound to the exact uploaded envelope bytes.
    annotations = layer_desc.get("annotations") or {}
    entries: list[VerifiedLogEntry] = []
    times: list[datetime] = []
    if isinstance(annotations, dict) and annotations.get(BUNDLE_ANNOTATION):
        tlog_entry = _completed(_legacy_entry(str(annotations[BUNDLE_ANNOTATION])), completions)
        content = SignedContent(
            signature=signed.sig, key=entry.key, envelope=envelope, envelope_bytes=layer
        )
        verified, when = verify_log_entry(tlog_entry, content, trust.trusted_root)
        entries.append(verified)
        if when is not None:
            times.append(when)
    # (5): the key's window.
    entry.check_signing_times(times, fallback=at)
    return AttestationResult(
        record, statement, entry.name, entry.key_id, tuple(times), tuple(entries)
    )


def _sigstore_bundle(
    record: AttestationRecord,
    blobs: BlobStore,
    trust: PublisherTrust,
    at: datetime,
    completions: Mapping[tuple[str, int], bytes],
) -> AttestationResult:
    manifest = _manifest(blobs, record.manifest, "bundle manifest")
    _check_subject_field(manifest, record.subject, "bundle manifest")
    _layer(manifest, record.layer, "bundle manifest")
    bundle = parse_bundle(blobs.get(record.layer))
    # SET-only entries gain the inclusion proof fetched at export, if there is one.
    bundle = dataclasses.replace(
        bundle, tlog_entries=tuple(_completed(e, completions) for e in bundle.tlog_entries)
    )
    if bundle.is_keyless:
        raise SignatureError(
            "keyless sigstore bundles need a certificate identity policy; "
            "only publisher-key bundles are verified here"
        )

    def check(k: KeyringEntry) -> VerifiedBundle:
        return verify_sigstore_bundle(
            bundle,
            artifact=Artifact.from_digest(record.subject),
            trusted_root=trust.trusted_root,
            key=k.key,
            require_tlog=False,
            require_time=False,
        )

    entry, result = _try_keys(trust, check)
    if result.statement is None:
        raise MalformedEvidenceError("the sigstore bundle does not hold an in-toto statement")
    entry.check_signing_times(list(result.signing_times), fallback=at)
    return AttestationResult(
        record,
        result.statement,
        entry.name,
        entry.key_id,
        result.signing_times,
        result.log_entries,
    )
