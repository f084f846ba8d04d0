"""cosign signatures as stored in OCI registries, and their legacy Rekor bundle annotation.

A cosign signature layer carries the signed payload as its blob and the signature in
the ``dev.cosignproject.cosign/signature`` annotation (empty for attestations, whose
signature lives inside the DSSE envelope). When the signature was logged, cosign adds
``dev.sigstore.cosign/bundle``: ``{"SignedEntryTimestamp", "Payload": {"body",
"integratedTime", "logIndex", "logID"}}``. That annotation is the SET only; it has no
inclusion proof (the exporter completes it from Rekor).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from dhi_offline.encoding import (
    b64decode,
    loads_json,
    require_dict,
    require_int,
    require_str,
)
from dhi_offline.errors import MalformedEvidenceError

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
RFC3161_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp"
PREDICATE_TYPE_ANNOTATION = "predicateType"


@dataclass(frozen=True)
class LegacyRekorBundle:
    """The parsed ``dev.sigstore.cosign/bundle`` annotation."""

    signed_entry_timestamp: bytes
    body: bytes
    """The canonicalized entry body (decoded)."""
    integrated_time: int
    log_index: int
    log_id: bytes

    @property
    def kind_version(self) -> tuple[str, str]:
        """The entry's kind and apiVersion, read from the body."""
        doc = require_dict(loads_json(self.body, what="log entry body"), what="log entry body")
        return (
            require_str(doc.get("kind"), what="log entry kind"),
            require_str(doc.get("apiVersion"), what="log entry apiVersion"),
        )

    @property
    def body_b64(self) -> str:
        """The body in standard base64, as the SET signs it."""
        return base64.b64encode(self.body).decode()


def parse_legacy_bundle(annotation: str) -> LegacyRekorBundle:
    """Parse a ``dev.sigstore.cosign/bundle`` annotation value.

    Raises:
        MalformedEvidenceError: not the documented shape.
    """
    what = "cosign bundle annotation"
    doc = require_dict(loads_json(annotation, what=what), what=what)
    payload = require_dict(doc.get("Payload"), what=f"{what}.Payload")
    log_id_hex = require_str(payload.get("logID"), what=f"{what}.Payload.logID")
    try:
        log_id = bytes.fromhex(log_id_hex)
    except ValueError as e:
        raise MalformedEvidenceError(f"{what}: logID is not hex") from e
    if len(log_id) != 32:
        raise MalformedEvidenceError(f"{what}: logID is not a SHA-256")
    body = b64decode(payload.get("body"), what=f"{what}.Payload.body")
    if not body:
        raise MalformedEvidenceError(f"{what}: empty body")
    return LegacyRekorBundle(
        signed_entry_timestamp=b64decode(
            doc.get("SignedEntryTimestamp"), what=f"{what}.SignedEntryTimestamp"
        ),
        body=body,
        integrated_time=require_int(payload.get("integratedTime"), what=f"{what}.integratedTime"),
        log_index=require_int(payload.get("logIndex"), what=f"{what}.logIndex"),
        log_id=log_id,
    )


def signature_from_annotation(value: str) -> bytes:
    """Decode the base64 signature annotation (empty for attestations).

    Raises:
        MalformedEvidenceError: not base64.
    """
    return b64decode(value, what=SIGNATURE_ANNOTATION) if value else b""
