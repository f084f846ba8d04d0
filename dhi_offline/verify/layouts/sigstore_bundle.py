"""``sigstore-bundle``: sigstore bundles stored as OCI referrers (cosign 3, GitHub).

A referrer manifest whose layer is a sigstore bundle (``application/vnd.dev.sigstore.
bundle...``) holding a DSSE envelope of an in-toto statement about the platform
manifest, its verification material and transparency-log entries. The whole bundle is
verified by ``verify/sigstore.py``; only publisher-key bundles are accepted here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dhi_offline.errors import MalformedEvidenceError, SignatureError
from dhi_offline.evidence.intoto import Prepared
from dhi_offline.evidence.records import AttestationRecord, BlobStore
from dhi_offline.evidence.sigstore_bundle import parse_bundle
from dhi_offline.oci import mediatypes as mt
from dhi_offline.trust.keyring import KeyringEntry
from dhi_offline.verify.layouts import checks
from dhi_offline.verify.layouts.interface import (
    AttestationResult,
    Layout,
    LogEntryRef,
    PublisherTrust,
    annotation,
)
from dhi_offline.verify.sigstore import Artifact, VerifiedSigstoreBundle, verify_sigstore_bundle

BUNDLE_PREDICATE_ANNOTATION = mt.SIGSTORE_BUNDLE_PREDICATE_ANNOTATION


class SigstoreBundle(Layout):
    """Sigstore bundle referrers signed by the publisher key."""

    name = "sigstore-bundle"

    def recognises(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> bool:
        """A sigstore bundle layer, whatever the bundle version."""
        media_type = layer.get("mediaType")
        return isinstance(media_type, str) and media_type.startswith(mt.SIGSTORE_BUNDLE_PREFIX)

    def predicate_type(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> str | None:
        """The manifest's ``dev.sigstore.bundle.predicateType`` annotation."""
        return annotation(manifest, BUNDLE_PREDICATE_ANNOTATION)

    def log_entries(self, record: AttestationRecord, blobs: BlobStore) -> list[LogEntryRef]:
        """The bundle's entries that carry no inclusion proof."""
        bundle = parse_bundle(blobs.get(record.layer))
        return [
            LogEntryRef(e.log_id, e.log_index, e.body)
            for e in bundle.tlog_entries
            if e.inclusion_proof is None
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
        """Step (1) on the bundle manifest, then the sigstore bundle plan with each key."""
        manifest = checks.manifest_json(blobs, record.manifest, "bundle manifest")
        checks.check_subject_field(manifest, record.subject, "bundle manifest")
        checks.listed_layer(manifest, record.layer, "bundle manifest")
        bundle = parse_bundle(blobs.get(record.layer))
        # SET-only entries gain the inclusion proof fetched at export, if there is one.
        bundle = dataclasses.replace(
            bundle,
            tlog_entries=tuple(checks.completed(e, completions) for e in bundle.tlog_entries),
        )
        if bundle.is_keyless:
            raise SignatureError(
                "keyless sigstore bundles need a certificate identity policy; "
                "only publisher-key bundles are verified here"
            )

        def check(k: KeyringEntry) -> VerifiedSigstoreBundle:
            return verify_sigstore_bundle(
                bundle,
                artifact=Artifact.from_digest(record.subject),
                trusted_root=trust.trusted_root,
                key=k.key,
                require_tlog=False,
                require_time=False,
            )

        entry, result = checks.try_keys(trust, check)
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
