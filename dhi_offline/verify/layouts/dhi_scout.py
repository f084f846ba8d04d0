"""``dhi-scout``: Docker Hardened Images / Docker Scout attestations.

Stored as OCI referrers of the platform manifest (or under cosign's ``.att`` tag), each
a manifest with a bare in-toto statement layer. Its signatures are cosign
simple-signing payloads naming the attestation manifest's digest, stored in turn as
referrers of the attestation manifest or under its ``sha256-<hex>.sig`` tag (what
``cosign verify --key`` checks). A logged signature carries its Rekor entry in the
``dev.sigstore.cosign/bundle`` annotation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dhi_offline.errors import MalformedEvidenceError, SignatureError, VerificationError
from dhi_offline.evidence.cosign import (
    BUNDLE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    signature_from_annotation,
)
from dhi_offline.evidence.intoto import Prepared
from dhi_offline.evidence.records import AttestationRecord, BlobStore, SignatureRef
from dhi_offline.evidence.simplesigning import (
    SIMPLE_SIGNING_MEDIA_TYPE,
    parse_simple_signing,
    require_manifest_digest,
)
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.content import Fetched
from dhi_offline.tlog.body import SignedContent
from dhi_offline.trust.keyring import KeyringEntry
from dhi_offline.verify.layouts import checks, fetch
from dhi_offline.verify.layouts.interface import (
    AttestationResult,
    Found,
    Layout,
    LogEntryRef,
    PublisherTrust,
    annotation,
)
from dhi_offline.verify.tlog import VerifiedLogEntry, verify_log_entry

INTOTO_PREDICATE_ANNOTATION = mt.INTOTO_PREDICATE_ANNOTATION


class DhiScout(Layout):
    """In-toto statement referrers signed by cosign signature referrers (or ``.sig``)."""

    name = "dhi-scout"

    def recognises(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> bool:
        """An in-toto layer, in a manifest that is not itself a cosign signature."""
        return (
            layer.get("mediaType") == mt.IN_TOTO
            and manifest.get("artifactType") != mt.COSIGN_SIGNATURE_ARTIFACT_TYPE
        )

    def predicate_type(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> str | None:
        """The layer's ``in-toto.io/predicate-type`` annotation."""
        return annotation(layer, INTOTO_PREDICATE_ANNOTATION)

    def signatures(self, found: Found, fetched: Fetched) -> tuple[SignatureRef, ...]:
        """cosign signatures of an attestation manifest: referrers, then the ``.sig`` tag."""
        source, store = found.source, found.store
        refs: list[SignatureRef] = []
        candidates: list[Fetched] = []
        result = source.referrers(fetched.digest, mt.COSIGN_SIGNATURE_ARTIFACT_TYPE)
        for desc in result.descriptors:
            if desc.artifact_type not in (None, mt.COSIGN_SIGNATURE_ARTIFACT_TYPE):
                continue
            candidates.append(source.manifest(desc.digest))
        tagged = source.tag(fetched.digest.replace(":", "-") + ".sig")
        if tagged is not None:
            candidates.append(tagged)
        for sig_fetched in candidates:
            fetch.keep(store, sig_fetched)
            fetch.keep_config(source, sig_fetched, store)
            for layer in fetch.layers(fetch.fetched_json(sig_fetched, "signature manifest")):
                if layer.get("mediaType") != mt.COSIGN_SIMPLE_SIGNING:
                    continue
                digest = str(layer.get("digest"))
                store.blobs[digest] = source.blob(digest, fetch.declared_size(layer))
                refs.append(SignatureRef(manifest=sig_fetched.digest, layer=digest))
        return tuple(refs)

    def log_entries(self, record: AttestationRecord, blobs: BlobStore) -> list[LogEntryRef]:
        """The entry of every logged signature (its bundle annotation)."""
        return [
            entry
            for sig in record.signatures
            for entry in checks.legacy_log_entries(
                blobs, sig.manifest, sig.layer, "signature manifest"
            )
        ]

    def verify(
        self,
        record: AttestationRecord,
        *,
        blobs: BlobStore,
        trust: PublisherTrust,
        at: datetime,
        completions: Mapping[tuple[str, int], bytes],
        prepared: Prepared | None,
    ) -> AttestationResult:
        """Steps (1) to (5), the signature a cosign simple-signing payload."""
        statement = checks.bare_statement(record, blobs, prepared)
        # (3): a cosign signature over the attestation manifest, by a pinned key.
        if not record.signatures:
            raise SignatureError("the attestation manifest has no cosign signature")
        last: VerificationError = SignatureError("the attestation manifest has no cosign signature")
        for ref in record.signatures:
            try:
                sig_manifest = checks.manifest_json(blobs, ref.manifest, "signature manifest")
                checks.check_subject_field(sig_manifest, record.manifest, "signature manifest")
                desc = checks.listed_layer(sig_manifest, ref.layer, "signature manifest")
                if desc.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
                    raise MalformedEvidenceError("signature layer is not a simple-signing payload")
                annotations = desc.get("annotations") or {}
                if not isinstance(annotations, dict):
                    raise MalformedEvidenceError("signature layer annotations are not an object")
                payload = blobs.get(ref.layer)
                simple = parse_simple_signing(payload)
                require_manifest_digest(simple, record.manifest)
                signature = signature_from_annotation(
                    str(annotations.get(SIGNATURE_ANNOTATION, ""))
                )
                if not signature:
                    raise SignatureError("signature layer carries no signature")

                def check(k: KeyringEntry, sig: bytes = signature, data: bytes = payload) -> None:
                    k.key.verify(sig, data)

                def signer(logged: object = annotations.get(BUNDLE_ANNOTATION)) -> str | None:
                    return checks.logged_key_id(logged)

                entry, _ = checks.try_keys(trust, check, signer)
                # (4): the transparency log, when the signature was logged.
                entries: list[VerifiedLogEntry] = []
                times: list[datetime] = []
                bundle_annotation = annotations.get(BUNDLE_ANNOTATION)
                if bundle_annotation:
                    tlog_entry = checks.completed(
                        checks.legacy_entry(str(bundle_annotation)), completions
                    )
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
