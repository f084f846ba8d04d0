"""The result of verifying a bundle: the one data model every report renders.

Plain frozen dataclasses with ``to_json`` (the schema is documented in
``docs/report-schema.md``); no rendering here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dhi_offline.encoding import format_rfc3339
from dhi_offline.steps import Step
from dhi_offline.verify.policy import Violation

CheckStatus = Literal["passed", "failed", "skipped"]
REPORT_SCHEMA_VERSION = 2
"""Version 2: the bundle plan's steps have one numbered name each (``docs/report-schema.md``)."""


@dataclass(frozen=True)
class Check:
    """One check of the verification plan, as run."""

    step: Step
    """The plan step, e.g. ``2 bundle signature`` (:attr:`Step.BUNDLE_SIGNATURE`), the same
    name a refusal at that step has."""
    name: str
    status: CheckStatus
    message: str = ""
    image: str | None = None
    platform: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "step": self.step,
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "image": self.image,
            "platform": self.platform,
        }


@dataclass(frozen=True)
class AttestationView:
    """One attestation of one platform, verified or not."""

    id: str
    layout: str
    predicate_type: str
    verified: bool
    problem: str | None = None
    signer: str | None = None
    key_id: str | None = None
    tlog_status: str = "absent"
    log_indexes: tuple[int, ...] = ()
    signing_times: tuple[datetime, ...] = ()
    tests: dict[str, int] | None = None
    package_count: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "layout": self.layout,
            "predicateType": self.predicate_type,
            "verified": self.verified,
            "problem": self.problem,
            "signer": self.signer,
            "keyId": self.key_id,
            "tlog": self.tlog_status,
            "logIndexes": list(self.log_indexes),
            "signingTimes": [format_rfc3339(t) for t in self.signing_times],
            "tests": self.tests,
            "packageCount": self.package_count,
        }


@dataclass(frozen=True)
class PlatformView:
    """One platform of an image and what its evidence shows."""

    platform: str
    digest: str
    attestations: tuple[AttestationView, ...]
    tests: dict[str, int] | None = None
    vulnerabilities_before_vex: dict[str, int] | None = None
    vulnerabilities: dict[str, int] | None = None
    suppressed_by_vex: tuple[str, ...] = ()
    violations: tuple[Violation, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "platform": self.platform,
            "digest": self.digest,
            "attestations": [a.to_json() for a in self.attestations],
            "tests": self.tests,
            "vulnerabilitiesBeforeVex": self.vulnerabilities_before_vex,
            "vulnerabilities": self.vulnerabilities,
            "suppressedByVex": list(self.suppressed_by_vex),
            "violations": [v.__dict__ for v in self.violations],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ImageView:
    """One image of the bundle."""

    reference: str
    digest: str
    media_type: str
    platforms: tuple[PlatformView, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "reference": self.reference,
            "digest": self.digest,
            "mediaType": self.media_type,
            "platforms": [p.to_json() for p in self.platforms],
        }


@dataclass(frozen=True)
class TrustSummary:
    """What was trusted for this verification, and which unsafe switches were on."""

    exporter_key_id: str
    exporter_key_name: str
    publisher_keys: tuple[tuple[str, str], ...]
    """(name, key id) of every publisher key that was pinned."""
    trusted_root: str
    """Where the trusted root came from."""
    trust_bundle_keys: bool = False
    allow_rollback: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "exporterKeyId": self.exporter_key_id,
            "exporterKeyName": self.exporter_key_name,
            "publisherKeys": [{"name": n, "keyId": k} for n, k in self.publisher_keys],
            "trustedRoot": self.trusted_root,
            "trustBundleKeys": self.trust_bundle_keys,
            "allowRollback": self.allow_rollback,
        }


@dataclass(frozen=True)
class VerificationReport:
    """Everything a report shows about one verification of one bundle."""

    bundle_path: str
    bundle_sha256: str
    bundle_size: int
    format_version: int
    exporter_tool_version: str
    created: datetime
    expires: datetime
    sequence: int
    reference_time: datetime
    trust: TrustSummary
    images: tuple[ImageView, ...]
    checks: tuple[Check, ...]
    policy_name: str | None
    policy_sha256: str | None
    policy_rules: tuple[str, ...]
    violations: tuple[Violation, ...]
    warnings: tuple[str, ...]
    bundle_flags: tuple[str, ...]
    """Unsafe switches the exporter used (``allow-unverified``)."""
    unsafe: tuple[str, ...]
    """Unsafe switches of this verification (``--trust-bundle-keys``, ``--allow-rollback``)."""
    tool_version: str
    receipt: dict[str, Any] | None = field(default=None)
    notes: tuple[str, ...] = ()
    """Information that is not a problem, once per report (e.g. the CTRF departures
    Docker's documented test predicate makes)."""

    @property
    def verified(self) -> bool:
        """Every check passed (no attestation failed verification)."""
        return all(c.status != "failed" for c in self.checks)

    @property
    def passed(self) -> bool:
        """Verified and no policy violation: the image may run."""
        return self.verified and not self.violations

    @property
    def verdict(self) -> str:
        """``PASS``, ``UNSAFE-PASS`` (passed with an unsafe switch in force) or ``FAIL``.

        ``UNSAFE-PASS`` neither equals nor starts with ``PASS``: a script that tests for
        a clean pass cannot mistake it for one.
        """
        if not self.passed:
            return "FAIL"
        return "UNSAFE-PASS" if self.unsafe or self.bundle_flags else "PASS"

    @property
    def refused(self) -> bool:
        """Always False: the bundle got past steps 1-4 (see :class:`Refusal`)."""
        return False

    def with_receipt(self, receipt: dict[str, Any]) -> VerificationReport:
        """A copy carrying the archive receipt."""
        return VerificationReport(**{**self.__dict__, "receipt": receipt})

    def to_json(self) -> dict[str, Any]:
        """The JSON report (schema version :data:`REPORT_SCHEMA_VERSION`)."""
        return {
            "schemaVersion": REPORT_SCHEMA_VERSION,
            "tool": {"name": "dhi-offline", "version": self.tool_version},
            "verdict": self.verdict,
            "refusal": None,
            "verified": self.verified,
            "policyPassed": not self.violations,
            "referenceTime": format_rfc3339(self.reference_time),
            "bundle": {
                "path": self.bundle_path,
                "sha256": self.bundle_sha256,
                "size": self.bundle_size,
                "formatVersion": self.format_version,
                "exporterToolVersion": self.exporter_tool_version,
                "created": format_rfc3339(self.created),
                "expires": format_rfc3339(self.expires),
                "sequence": self.sequence,
                "flags": list(self.bundle_flags),
            },
            "trust": self.trust.to_json(),
            "unsafe": list(self.unsafe),
            "policy": {
                "name": self.policy_name,
                "sha256": self.policy_sha256,
                "rules": list(self.policy_rules),
            },
            "images": [i.to_json() for i in self.images],
            "checks": [c.to_json() for c in self.checks],
            "violations": [v.__dict__ for v in self.violations],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "receipt": self.receipt,
        }


@dataclass
class Progress:
    """What a verification established before it stopped, filled in as it goes.

    A refusal at steps 1-4 still reports what could be known: the exporter key and the
    signed manifest's fields once the manifest signature verified.
    """

    exporter_key_id: str | None = None
    exporter_key_name: str | None = None
    sequence: int | None = None
    created: datetime | None = None
    expires: datetime | None = None
    format_version: int | None = None


@dataclass(frozen=True)
class Refusal:
    """A bundle refused as a whole at steps 1-4 of the plan: the report of that attempt."""

    bundle_path: str
    bundle_sha256: str
    bundle_size: int
    reference_time: datetime
    step: Step
    """The plan step that refused the bundle, e.g. ``4 rollback`` (:attr:`Step.ROLLBACK`)."""
    reason: str
    """The one-line reason (the same line the CLI prints on stderr)."""
    progress: Progress
    unsafe: tuple[str, ...]
    tool_version: str
    receipt: dict[str, Any] | None = field(default=None)

    verified = False
    passed = False
    refused = True
    verdict = "FAIL"

    @property
    def signature_verified(self) -> bool:
        """The manifest signature verified before the refusal."""
        return self.progress.exporter_key_id is not None

    def with_receipt(self, receipt: dict[str, Any]) -> Refusal:
        """A copy carrying the archive receipt."""
        return Refusal(**{**self.__dict__, "receipt": receipt})

    def to_json(self) -> dict[str, Any]:
        """The JSON report of a refusal: the same top-level keys as a verification."""
        p = self.progress
        return {
            "schemaVersion": REPORT_SCHEMA_VERSION,
            "tool": {"name": "dhi-offline", "version": self.tool_version},
            "verdict": self.verdict,
            "refusal": {"step": self.step, "reason": self.reason},
            "verified": False,
            "policyPassed": None,
            "referenceTime": format_rfc3339(self.reference_time),
            "bundle": {
                "path": self.bundle_path,
                "sha256": self.bundle_sha256,
                "size": self.bundle_size,
                "signatureVerified": self.signature_verified,
                "formatVersion": p.format_version,
                "created": format_rfc3339(p.created) if p.created else None,
                "expires": format_rfc3339(p.expires) if p.expires else None,
                "sequence": p.sequence,
            },
            "trust": {"exporterKeyId": p.exporter_key_id, "exporterKeyName": p.exporter_key_name},
            "unsafe": list(self.unsafe),
            "images": [],
            "checks": [
                {
                    "step": self.step,
                    "name": "bundle refused",
                    "status": "failed",
                    "message": self.reason,
                    "image": None,
                    "platform": None,
                }
            ],
            "violations": [],
            "warnings": [],
            "notes": [],
            "receipt": self.receipt,
        }


Outcome = VerificationReport | Refusal
"""What one verification attempt produced: a full report, or a refusal at steps 1-4."""
