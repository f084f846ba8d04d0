"""``cosign-att``: cosign attestations (``cosign attest``).

A manifest under cosign's ``sha256-<hex>.att`` tag (or an OCI referrer) whose layers are
DSSE envelopes of in-toto statements, signed by the publisher key. A logged envelope
carries its Rekor entry in the layer's ``dev.sigstore.cosign/bundle`` annotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dhi_offline.evidence.cosign import (
    BUNDLE_ANNOTATION,
    PREDICATE_TYPE_ANNOTATION,
)
from dhi_offline.evidence.dsse import envelope_from_bytes, verify_envelope
from dhi_offline.evidence.intoto import Prepared, parse_statement
from dhi_offline.evidence.records import AttestationRecord, BlobStore
from dhi_offline.oci import mediatypes as mt
from dhi_offline.tlog.body import SignedContent
from dhi_offline.verify.layouts import checks
from dhi_offline.verify.layouts.interface import (
    AttestationResult,
    Layout,
    LogEntryRef,
    PublisherTrust,
    annotation,
)
from dhi_offline.verify.tlog import VerifiedLogEntry, verify_log_entry


class CosignAtt(Layout):
    """DSSE envelope layers signed by the publisher key."""

    name = "cosign-att"

    def recognises(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> bool:
        """A DSSE envelope layer."""
        return layer.get("mediaType") == mt.DSSE_ENVELOPE

    def predicate_type(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> str | None:
        """The layer's ``predicateType`` annotation (cosign's)."""
        return annotation(layer, PREDICATE_TYPE_ANNOTATION)

    def log_entries(self, record: AttestationRecord, blobs: BlobStore) -> list[LogEntryRef]:
        """The entry in the attestation layer's bundle annotation."""
        return checks.legacy_log_entries(
            blobs, record.manifest, record.layer, "attestation manifest"
        )

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
        """Steps (1) to (5), the signature the DSSE envelope's."""
        layer_desc, layer = checks.attestation_layer(record, blobs)
        envelope = envelope_from_bytes(layer)
        # (3): the DSSE signature by a pinned key.
        entry, signed = checks.try_keys(
            trust,
            lambda k: verify_envelope(envelope, k.key),
            lambda: checks.logged_key_id(annotation(layer_desc, BUNDLE_ANNOTATION)),
        )
        # (2): the statement inside.
        statement = parse_statement(envelope.payload, prepared=prepared)
        statement.require_subject(record.subject)
        # (4): the log entry from the annotation, bound to the exact uploaded envelope bytes.
        annotations = layer_desc.get("annotations") or {}
        entries: list[VerifiedLogEntry] = []
        times: list[datetime] = []
        if isinstance(annotations, dict) and annotations.get(BUNDLE_ANNOTATION):
            tlog_entry = checks.completed(
                checks.legacy_entry(str(annotations[BUNDLE_ANNOTATION])), completions
            )
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
