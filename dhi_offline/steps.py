"""The one vocabulary of verification steps.

Every step name a report, receipt, JSON document or one-line error shows is a member of
:class:`Step`: the ``step`` of each :class:`~dhi_offline.errors.VerificationError`
subclass, the ``step`` of each :class:`~dhi_offline.verify.result.Check` and of a
:class:`~dhi_offline.verify.result.Refusal`. The values are the strings printed, so a
``Step`` compares, hashes, formats and serialises exactly like that string.

A numbered value is a step of the evidence bundle plan (``docs/trust.md``), by the plan's number:
the same name labels its check when it passes and its refusal when it fails. Unnumbered
values name the typed error of code that more than one plan shares (the single-bundle
plan that also verifies each attestation, the TUF chain, the export side).
``docs/verification.md`` ("Step names") lists every member, in this order;
``tests/test_steps.py`` keeps the two, and the plans in ``docs/trust.md`` and
``docs/verification.md``, from drifting apart.
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class Step(StrEnum):
    """A step of a verification plan, by the name reports print."""

    VERIFICATION = "verification"
    """Fallback of :class:`~dhi_offline.errors.VerificationError` (no plan step given)."""

    # The evidence bundle plan (dhi_offline/verify/bundle.py), steps 1-3: bundle/reader.py.
    BUNDLE_FORMAT = "1 bundle format"
    """Check and refusal: a well-formed evidence bundle (zstd frame, tar headers, paths,
    manifest)."""
    BUNDLE_LIMITS = "1 bundle limits"
    """Check and refusal: sizes, counts, zstd window and compression ratio within limits."""
    BUNDLE_SIGNATURE = "2 bundle signature"
    """Check and refusal: the manifest is signed by a pinned exporter key."""
    BUNDLE_MEMBERS = "3 bundle members"
    """Check and refusal: every member listed once, none missing, size and SHA-256 as signed."""

    # Step 4: freshness and history.
    TUF = "TUF"
    """Refusal: the bundle's Sigstore TUF chain does not verify from the pinned root (also
    ``trust update-root``, and the export side)."""
    EXPIRY = "4 expiry"
    """Check and refusal: the bundle has not expired at the reference time."""
    ROLLBACK = "4 rollback"
    """Check and refusal: the sequence is not lower than the last one imported."""
    BUNDLE_CHECKPOINT = "4 checkpoint"
    """Check and refusal: a checkpoint the bundle carries is well-formed and signed by its
    log."""
    BUNDLE_CONSISTENCY = "4 consistency"
    """Check and refusal: the bundle's consistency proofs verify, and link the checkpoint
    seen before to this one (a different tree of the same size is a fork)."""

    # Steps 5 and 6: recorded in the report, never a refusal of the whole bundle.
    IMAGE = "5 image"
    """Check: an image's stored index and platform manifests."""
    ATTESTATION = "6 attestation"
    """Check: one attestation; a failure's message names one of the steps below."""

    # One signed statement or sigstore bundle (verify/sigstore.py, verify/attestation.py,
    # evidence/, tlog/).
    EVIDENCE_FORMAT = "evidence format"
    """Refusal: signed evidence is structurally invalid."""
    SIGNING_KEY = "signing key"
    """Refusal: the evidence names or carries a key other than the one trusted."""
    SIGNATURE = "signature"
    """Refusal: a signature does not verify under the key it must verify under."""
    DSSE = "DSSE"
    """Refusal: no signature of a DSSE envelope verifies with the key."""
    SUBJECT = "subject"
    """Refusal: the statement or signature is about another artifact."""
    TRANSPARENCY_LOG = "transparency log"
    """Refusal: a log entry is missing, from an unknown log, or inconsistent."""
    LOG_ENTRY_BINDING = "log entry binding"
    """Refusal: a log entry's body is about something else (CVE-2022-36056)."""
    SIGNED_ENTRY_TIMESTAMP = "signed entry timestamp"
    """Refusal: a Rekor signed entry timestamp does not verify."""
    INCLUSION_PROOF = "inclusion proof"
    """Refusal: an RFC 6962 inclusion proof does not lead to the stated root."""
    CHECKPOINT = "checkpoint"
    """Refusal: a log entry's checkpoint is malformed, unsigned or not its proof's (also the
    export side, checking what a log serves)."""
    TIMESTAMP = "timestamp"
    """Refusal: an RFC 3161 timestamp is invalid, or too few verified times."""
    CERTIFICATE = "certificate"
    """Refusal: the signing certificate does not chain to a trusted CA at signing time."""
    CERTIFICATE_TRANSPARENCY = "certificate transparency"
    """Refusal: the certificate's SCT does not verify."""
    IDENTITY = "identity"
    """Refusal: the certificate's identity or issuer is not the one expected."""
    VALIDITY_WINDOW = "validity window"
    """Refusal: a key, log or authority was used outside the time it was trusted for."""

    # Other plans.
    CONSISTENCY_PROOF = "consistency proof"
    """Refusal: a log cannot prove one tree head extends another, or forked (export side;
    on the host, the bundle's proofs are step ``4 consistency``)."""
    ARCHIVE_INTEGRITY = "archive integrity"
    """Refusal: the evidence archive was changed after it was written (archive/store.py)."""
    INSTALLER_FILES = "installer files"
    """Refusal: an offline installer's files differ from its signed SHA256SUMS (dist/)."""
