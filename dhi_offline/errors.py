"""The one exception hierarchy of dhi-offline.

Every failure the tool reports is a :class:`DhiError`. Its ``exit_code`` is what the
command line exits with: 1 for "this evidence does not verify / policy failed", 2 for
"the input could not be used at all". A :class:`VerificationError` always names the
step of the verification plan that failed (a :class:`~dhi_offline.steps.Step`), so a
one-line message tells the operator which check refused the evidence.
"""

from __future__ import annotations

from dhi_offline.steps import Step


class DhiError(Exception):
    """Base of every error dhi-offline raises on purpose."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def one_line(self) -> str:
        """The message as one line, as the CLI prints it."""
        return " ".join(self.message.split())


class UsageError(DhiError):
    """The command was called with options that cannot work together."""

    exit_code = 2


class InputError(DhiError):
    """An input file is missing, unreadable or not in a format we can parse at all."""

    exit_code = 2


class TrustMaterialError(InputError):
    """A key, keyring or trusted root is malformed: it cannot be used as trust."""


class VerificationError(DhiError):
    """Evidence did not verify. ``step`` names the check of the plan that refused it."""

    exit_code = 1
    step: Step = Step.VERIFICATION

    def __init__(self, message: str, *, step: Step | None = None) -> None:
        super().__init__(message)
        if step is not None:
            self.step = step

    def one_line(self) -> str:
        return f"{self.step}: {super().one_line()}"


class MalformedEvidenceError(VerificationError):
    """Signed evidence is structurally invalid (bad base64, missing fields, bad JSON)."""

    step = Step.EVIDENCE_FORMAT


class SignatureError(VerificationError):
    """A signature does not verify under the key it must verify under."""

    step = Step.SIGNATURE


class KeyMismatchError(VerificationError):
    """The evidence names or carries a key other than the one we trust."""

    step = Step.SIGNING_KEY


class SubjectMismatchError(VerificationError):
    """A statement or signature is about a different artifact than the one checked."""

    step = Step.SUBJECT


class TransparencyLogError(VerificationError):
    """A transparency-log entry is missing, unknown or inconsistent."""

    step = Step.TRANSPARENCY_LOG


class InclusionProofError(TransparencyLogError):
    """An RFC 6962 inclusion proof does not lead to the stated root."""

    step = Step.INCLUSION_PROOF


class ConsistencyProofError(TransparencyLogError):
    """An RFC 6962 consistency proof does not link two tree heads.

    Its step is ``consistency proof`` on the export side; the evidence bundle plan reports the
    bundle's proofs as ``4 consistency`` (``dhi_offline/verify/bundle.py``)."""

    step = Step.CONSISTENCY_PROOF


class CheckpointError(TransparencyLogError):
    """A checkpoint (signed note) is malformed, unsigned or does not match the proof.

    Its step is ``checkpoint`` for a log entry's proof; the evidence bundle plan reports the
    checkpoints a bundle carries as ``4 checkpoint`` (``dhi_offline/verify/bundle.py``)."""

    step = Step.CHECKPOINT


class SignedEntryTimestampError(TransparencyLogError):
    """A Rekor signed entry timestamp (inclusion promise) does not verify."""

    step = Step.SIGNED_ENTRY_TIMESTAMP


class LogEntryBindingError(TransparencyLogError):
    """A log entry body is about something other than what was signed (CVE-2022-36056)."""

    step = Step.LOG_ENTRY_BINDING


class TimestampError(VerificationError):
    """An RFC 3161 timestamp is invalid, or there are too few sources of verified time."""

    step = Step.TIMESTAMP


class CertificateError(VerificationError):
    """A signing certificate does not chain to a trusted CA at signing time."""

    step = Step.CERTIFICATE


class SCTError(CertificateError):
    """The certificate's signed certificate timestamp does not verify."""

    step = Step.CERTIFICATE_TRANSPARENCY


class IdentityError(VerificationError):
    """The certificate's identity or issuer is not the one expected."""

    step = Step.IDENTITY


class ValidityWindowError(VerificationError):
    """A key, log or authority was used outside the time it was trusted for."""

    step = Step.VALIDITY_WINDOW


class RekorError(DhiError):
    """A transparency log could not be reached or answered with an error (export side).

    ``url`` is the request that failed; ``status`` the last HTTP status, if any.
    """

    exit_code = 2

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class RegistryError(DhiError):
    """A registry or OCI layout could not give what was asked for.

    The message names the registry (or layout), the repository and the object
    requested, on one line; the transport's own exception is chained, never shown.
    """

    exit_code = 2


class RegistryAuthError(RegistryError):
    """The registry or its token server refused us: no, wrong or insufficient credentials."""


class RegistryNotFoundError(RegistryError):
    """The repository, tag, manifest or blob does not exist where it was looked for."""


class DigestMismatchError(RegistryError):
    """The bytes served do not match the digest or size they were requested by.

    A registry error by where it happens (the message names registry, repository and
    object), a verification failure by what it means: exit 1, as ``docs/cli.md`` says,
    and never retried.
    """

    exit_code = 1


class SizeLimitError(RegistryError):
    """An object is larger than the limit set for it; the download was stopped early."""


class BundleFormatError(VerificationError):
    """An evidence bundle (``.dhi.tar.zst``) is not a well-formed format-v1 bundle."""

    step = Step.BUNDLE_FORMAT


class ManifestSignatureError(BundleFormatError):
    """The bundle manifest is not signed, or not by a trusted exporter key."""

    step = Step.BUNDLE_SIGNATURE


class MemberIntegrityError(BundleFormatError):
    """A bundle member is unlisted, missing, duplicated, or differs from the manifest."""

    step = Step.BUNDLE_MEMBERS


class BundleLimitError(BundleFormatError):
    """A bundle exceeds a size, count or compression-ratio limit of the reader."""

    step = Step.BUNDLE_LIMITS


class TufError(VerificationError):
    """Sigstore TUF metadata does not verify from the pinned root: a root below its
    signature threshold or out of sequence, expired or rolled-back metadata, or a
    target whose length or hashes differ from what the targets role lists."""

    step = Step.TUF


class ExpiredBundleError(VerificationError):
    """The bundle is past its expiry at the reference time."""

    step = Step.EXPIRY


class RollbackError(VerificationError):
    """The bundle is older than one already imported from the same exporter."""

    step = Step.ROLLBACK


class ArchiveIntegrityError(VerificationError):
    """A stored bundle, receipt or log line was changed, removed or added after it was
    written, or the log does not end at the head the caller expected."""

    step = Step.ARCHIVE_INTEGRITY


class DistBuildError(DhiError):
    """The offline installer could not be built: pip could not download or build a wheel,
    or there is no source tree to build from. Nothing is left in the output directory."""

    exit_code = 2


class DistIntegrityError(VerificationError):
    """A file of an offline installer is missing, not listed in, or differs from its
    signed ``SHA256SUMS``, or the installer holds something other than plain files."""

    step = Step.INSTALLER_FILES
