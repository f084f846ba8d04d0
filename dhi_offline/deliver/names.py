"""Every name the site's verdict uses in a registry: predicate type, annotations, tags.

The admission configs (:mod:`dhi_offline.deliver.admission`) and the push
(:mod:`dhi_offline.deliver.push`) both read these, so what is written and what is
checked cannot drift apart. ``docs/admission.md`` documents each one.
"""

from __future__ import annotations

from typing import Final

from dhi_offline.evidence.cosign import PREDICATE_TYPE_ANNOTATION, SIGNATURE_ANNOTATION
from dhi_offline.oci import mediatypes as mt

VSA_PREDICATE_TYPE: Final = "https://slsa.dev/verification_summary/v1"
"""SLSA Verification Summary Attestation v1."""

INTOTO_STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
INTOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"

VERIFIER_ID: Final = "https://github.com/dhi-offline/dhi-offline"
"""``predicate.verifier.id`` of every VSA dhi-offline writes."""

BUNDLE_PREDICATE_FIELD: Final = "https://github.com/dhi-offline/dhi-offline/bundle"
"""Extra VSA predicate field: the bundle's sha256, the reasons of a FAILED result and the
unsafe switches, for the auditor (VSA consumers ignore fields they do not know)."""

PASSED: Final = "PASSED"
FAILED: Final = "FAILED"
"""``predicate.verificationResult`` values (SLSA VSA v1)."""

UNSAFE_LEVEL_PREFIX: Final = "DHI_OFFLINE_UNSAFE"
"""A ``verifiedLevels`` entry ``DHI_OFFLINE_UNSAFE_<SWITCH>`` marks a verification made
with an unsafe switch (``--at``, ``--trust-bundle-keys``, ...). Admission configs reject
a VSA carrying one; such a push gets no image signature."""

POLICY_LEVEL_PREFIX: Final = "DHI_OFFLINE_POLICY_"
"""``verifiedLevels`` entry naming the site policy that passed (``DHI_OFFLINE_POLICY_<name>``)."""

# Annotations on the manifests (and .att layers) the push writes.
ANNOTATION_PREFIX: Final = "dev.dhi-offline"
ANN_BUNDLE_SHA256: Final = "dev.dhi-offline.bundle.sha256"
ANN_POLICY_SHA256: Final = "dev.dhi-offline.policy.sha256"
ANN_SITE_KEY_ID: Final = "dev.dhi-offline.site-key-id"
ANN_VERDICT: Final = "dev.dhi-offline.verdict"
ANN_UNSAFE: Final = "dev.dhi-offline.unsafe"
ANN_EXPORTER_KEY_ID: Final = "dev.dhi-offline.exporter-key-id"
ANN_SEQUENCE: Final = "dev.dhi-offline.sequence"

# cosign's and the sigstore bundle spec's names, defined once where the readers use them.
COSIGN_SIGNATURE_ANNOTATION: Final = SIGNATURE_ANNOTATION
COSIGN_PREDICATE_TYPE_ANNOTATION: Final = PREDICATE_TYPE_ANNOTATION
SIGSTORE_BUNDLE_CONTENT_ANNOTATION: Final = mt.SIGSTORE_BUNDLE_CONTENT_ANNOTATION
SIGSTORE_BUNDLE_PREDICATE_ANNOTATION: Final = mt.SIGSTORE_BUNDLE_PREDICATE_ANNOTATION

# The bundle as an OCI artifact (docs/format.md, "The bundle in a registry").
BUNDLE_ARTIFACT_TYPE: Final = "application/vnd.dhi-offline.bundle.v1"
BUNDLE_REPOSITORY: Final = "dhi-offline/bundles"
"""Default repository, under ``--to REGISTRY/PREFIX``, that holds pushed bundles."""


def signature_tag(digest: str) -> str:
    """cosign's tag for the signatures of ``digest``: ``sha256-<hex>.sig``."""
    return digest.replace(":", "-") + ".sig"


def attestation_tag(digest: str) -> str:
    """cosign's tag for the attestations of ``digest``: ``sha256-<hex>.att``."""
    return digest.replace(":", "-") + ".att"


def bundle_tag(exporter_key_id: str, sequence: int) -> str:
    """The tag of a pushed bundle: ``<first 16 hex of the exporter key id>-<sequence>``."""
    return f"{exporter_key_id[:16]}-{sequence}"
