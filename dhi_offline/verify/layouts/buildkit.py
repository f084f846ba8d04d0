"""``buildkit``: BuildKit attestation manifests inside the image index (unsigned).

BuildKit stores provenance and SBOM statements as manifests of the image index itself,
marked ``vnd.docker.reference.type: attestation-manifest`` and naming the platform
manifest they describe. Nothing signs them: they are verified for integrity and
subject, and reported as unsigned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dhi_offline.evidence.intoto import Prepared
from dhi_offline.evidence.records import AttestationRecord, BlobStore
from dhi_offline.oci import mediatypes as mt
from dhi_offline.verify.layouts import checks
from dhi_offline.verify.layouts.dhi_scout import INTOTO_PREDICATE_ANNOTATION
from dhi_offline.verify.layouts.interface import (
    AttestationResult,
    Layout,
    PublisherTrust,
    annotation,
)

REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"


def described_manifest(desc: Mapping[str, Any]) -> str | None:
    """The platform manifest an index entry attests (as a string, "" when unnamed), or
    None when the entry is not a BuildKit attestation manifest."""
    annotations = desc.get("annotations") or {}
    if isinstance(annotations, dict) and annotations.get(REFERENCE_TYPE) == "attestation-manifest":
        return str(annotations.get(REFERENCE_DIGEST, ""))
    return None


class BuildKit(Layout):
    """In-toto statement layers of index attestation manifests, unsigned."""

    name = "buildkit"
    in_referrers = False  # found in the image index (``described_manifest``)

    def recognises(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> bool:
        """An in-toto layer."""
        return layer.get("mediaType") == mt.IN_TOTO

    def predicate_type(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> str | None:
        """The layer's ``in-toto.io/predicate-type`` annotation."""
        return annotation(layer, INTOTO_PREDICATE_ANNOTATION)

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
        """Steps (1) and (2); nothing to check a signature or a log entry with."""
        statement = checks.bare_statement(record, blobs, prepared)
        return AttestationResult(record, statement, "unsigned", None, (), ())
