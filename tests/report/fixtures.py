"""Realistic verification reports for the renderer tests.

- :func:`passing_report`: one DHI image, two platforms, five verified attestations each
  (tests, SBOM, provenance, vulnerabilities, VEX), one attestation with a SET only and
  one with no transparency-log entry; policy passed; an archive receipt.
- :func:`failing_report`: an attestation that failed verification, policy violations,
  the unsafe ``--trust-bundle-keys`` switch, a bundle exported with
  ``allow-unverified``, and hostile strings (HTML, rich markup, terminal escapes) where
  evidence puts strings.

``python -m tests.report.fixtures`` prints the JSON report of :func:`passing_report`,
the example in ``docs/report-schema.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dhi_offline.steps import Step
from dhi_offline.verify.policy import Violation
from dhi_offline.verify.result import (
    AttestationView,
    Check,
    CheckStatus,
    ImageView,
    PlatformView,
    Progress,
    Refusal,
    TrustSummary,
    VerificationReport,
)

TESTS = "https://scout.docker.com/tests/v0.1"
SBOM = "https://cyclonedx.org/bom/v1.6"
PROVENANCE = "https://slsa.dev/provenance/v0.2"
VULNS = "https://scout.docker.com/vulnerabilities/v0.1"
VEX = "https://openvex.dev/ns/v0.2.0"

BUNDLE_SHA256 = "9f2c4b7e1a0d3c5e8f6a2b9d4c7e0f1a3b5c8d2e6f9a0b4c7d1e3f5a8b2c6d90"
IMAGE = "dhi.io/python:3.13-debian12"
IMAGE_DIGEST = "sha256:5b1e0d7c9a3f4e2b8c6d1a0f9e7b3c5d2a4f6e8b0c1d3e5f7a9b2c4d6e8f0a1b"
AMD64 = "sha256:70c8a1e4b2d6f3a9c5e7b1d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8"
ARM64 = "sha256:e3b9d5f1a7c3e9b5d1f7a3c9e5b1d7f3a9c5e1b7d3f9a5c1e7b3d9f5a1c7e3b9"
DHI2 = "118ba556dd52f4aec67018efd316c285c783cd3e54cc0f4527605715c643887c"
DHI1 = "1b431f0d467ecc9e3d97e5b446980599a99c3a386e42ea628b172db1051c737b"
EXPORTER = "4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
POLICY_SHA256 = "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2"
REFERENCE_TIME = datetime(2026, 8, 31, 7, 0, 0, tzinfo=UTC)
SIGNED = datetime(2026, 8, 29, 22, 14, 5, tzinfo=UTC)

HOSTILE_PREDICATE = "<script>alert(1)</script>"
HOSTILE_PROBLEM = 'signature: no pinned key verifies it "><img src=x onerror=alert(2)>'
HOSTILE_WARNING = "[bold green]PASS[/] \x1b[2J\x1b[1;1Hall good"

POLICY_RULES = (
    "required attestation: tests",
    "required attestation: sbom",
    "required attestation: provenance",
    "required attestation: vulnerabilities",
    "required platform: linux/amd64",
    "required platform: linux/arm64",
    "tests passed",
    "at most 0 critical vulnerabilities",
    "at most 0 high vulnerabilities",
)


def _digest(seed: int) -> str:
    return "sha256:" + f"{seed:02x}" * 32


def _attestations(
    platform_seed: int, *, absent: bool, set_only: bool
) -> tuple[AttestationView, ...]:
    """The five attestations of one platform, in the order DHI lists them."""

    def att(
        n: int,
        ptype: str,
        *,
        tlog: str = "inclusion-proof",
        tests: dict[str, int] | None = None,
        package_count: int | None = None,
    ) -> AttestationView:
        return AttestationView(
            id=_digest(platform_seed * 16 + n),
            layout="dhi-scout",
            predicate_type=ptype,
            verified=True,
            signer="dhi-2",
            key_id=DHI2,
            tlog_status=tlog,
            log_indexes=() if tlog == "absent" else (412_000_000 + platform_seed * 10 + n,),
            signing_times=() if tlog == "absent" else (SIGNED,),
            tests=tests,
            package_count=package_count,
        )

    return (
        att(1, TESTS, tests={"tests": 42, "passed": 41, "failed": 0, "skipped": 1}),
        att(2, SBOM, package_count=87 + platform_seed),
        att(3, PROVENANCE, tlog="set-only" if set_only else "inclusion-proof"),
        att(4, VULNS),
        att(5, VEX, tlog="absent" if absent else "inclusion-proof"),
    )


def _platform(name: str, digest: str, seed: int, *, absent: bool, set_only: bool) -> PlatformView:
    return PlatformView(
        platform=name,
        digest=digest,
        attestations=_attestations(seed, absent=absent, set_only=set_only),
        tests={"tests": 42, "passed": 41, "failed": 0, "skipped": 1},
        vulnerabilities_before_vex={"critical": 0, "high": 1, "medium": 2, "low": 5, "unknown": 0},
        vulnerabilities={"critical": 0, "high": 0, "medium": 1, "low": 5, "unknown": 0},
        suppressed_by_vex=("CVE-2025-4802", "CVE-2026-1128"),
        warnings=("CTRF: results.summary.start is in seconds, not milliseconds",),
    )


def _trust(*, trust_bundle_keys: bool = False) -> TrustSummary:
    return TrustSummary(
        exporter_key_id=EXPORTER,
        exporter_key_name="ops-exporter-2026",
        publisher_keys=(("dhi-1", DHI1), ("dhi-2", DHI2)),
        trusted_root="shipped: Sigstore public-good production",
        trust_bundle_keys=trust_bundle_keys,
    )


def _checks(platforms: tuple[PlatformView, ...], *, fail: str | None = None) -> tuple[Check, ...]:
    checks = [
        Check(Step.BUNDLE_FORMAT, "format version 1: zstd frame, tar headers, manifest", "passed"),
        Check(Step.BUNDLE_LIMITS, "sizes, counts and compression ratio within limits", "passed"),
        Check(Step.BUNDLE_SIGNATURE, "signed by exporter ops-exporter-2026", "passed"),
        Check(
            Step.BUNDLE_MEMBERS,
            "57 members, each listed once, size and SHA-256 as signed",
            "passed",
        ),
        Check(Step.EXPIRY, "valid until 2026-09-29T09:12:44Z", "passed"),
        Check(Step.ROLLBACK, "sequence 42 (last imported 41)", "passed"),
    ]
    for p in platforms:
        for a in p.attestations:
            status: CheckStatus = "passed" if a.verified else "failed"
            checks.append(
                Check(
                    Step.ATTESTATION,
                    a.predicate_type,
                    status,
                    message=(a.problem or "") if not a.verified else "",
                    image=IMAGE,
                    platform=p.platform,
                )
            )
            if a.tlog_status == "absent" and a.verified:
                checks.append(
                    Check(
                        Step.ATTESTATION,
                        "transparency log",
                        "skipped",
                        message="no log entry; DHI may skip Rekor",
                        image=IMAGE,
                        platform=p.platform,
                    )
                )
    checks.append(
        Check(
            Step.IMAGE,
            f"{IMAGE}: 2 platform manifest(s) match the stored index",
            "passed",
            image=IMAGE,
        )
    )
    if fail:
        checks.append(Check(Step.BUNDLE_SIGNATURE, "exporter key pinned", "failed", message=fail))
    return tuple(checks)


def passing_report() -> VerificationReport:
    """A report that passes: verified and no policy violation."""
    platforms = (
        _platform("linux/amd64", AMD64, 1, absent=True, set_only=False),
        _platform("linux/arm64", ARM64, 2, absent=False, set_only=True),
    )
    report = VerificationReport(
        bundle_path="/var/lib/dhi-offline/incoming/python-3.13-2026-08-30.dhi.tar.zst",
        bundle_sha256=BUNDLE_SHA256,
        bundle_size=3_481_207,
        format_version=1,
        exporter_tool_version="0.1.0",
        created=datetime(2026, 8, 30, 9, 12, 44, tzinfo=UTC),
        expires=datetime(2026, 9, 29, 9, 12, 44, tzinfo=UTC),
        sequence=42,
        reference_time=REFERENCE_TIME,
        trust=_trust(),
        images=(
            ImageView(
                reference=IMAGE,
                digest=IMAGE_DIGEST,
                media_type="application/vnd.oci.image.index.v1+json",
                platforms=platforms,
            ),
        ),
        checks=_checks(platforms),
        policy_name="dhi-default",
        policy_sha256=POLICY_SHA256,
        policy_rules=POLICY_RULES,
        violations=(),
        warnings=("evidence for linux/amd64 VEX is not in a transparency log",),
        bundle_flags=(),
        unsafe=(),
        tool_version="0.1.0",
    )
    return report.with_receipt(
        {
            "receiptVersion": 1,
            "bundleSha256": BUNDLE_SHA256,
            "sequence": 42,
            "importedAt": "2026-08-31T07:00:00Z",
            "verdict": "PASS",
            "policySha256": POLICY_SHA256,
            "storedAs": "archive/bundles/" + BUNDLE_SHA256 + ".dhi.tar.zst",
        }
    )


FAILING_VIOLATIONS = (
    Violation(IMAGE, "linux/amd64", TESTS, "tests passed", "2 failed: test_ssl_fips, test_locale"),
    Violation(
        IMAGE,
        "linux/amd64",
        VULNS,
        "max critical vulnerabilities",
        "1 critical after VEX (limit 0)",
    ),
    Violation(
        IMAGE, "linux/arm64", "sbom", "required attestation", "no verified attestation of this type"
    ),
)


def failing_report() -> VerificationReport:
    """A report that fails, with unsafe switches and hostile strings from evidence."""
    amd = _platform("linux/amd64", AMD64, 1, absent=True, set_only=False)
    bad_tests = AttestationView(
        id=_digest(0xA1),
        layout="dhi-scout",
        predicate_type=TESTS,
        verified=True,
        signer="dhi-2",
        key_id=DHI2,
        tlog_status="inclusion-proof",
        log_indexes=(412_000_101,),
        signing_times=(SIGNED,),
        tests={"tests": 42, "passed": 39, "failed": 2, "skipped": 1},
    )
    hostile = AttestationView(
        id=_digest(0xA9),
        layout="cosign-att",
        predicate_type=HOSTILE_PREDICATE,
        verified=False,
        problem=HOSTILE_PROBLEM,
    )
    amd = PlatformView(
        platform=amd.platform,
        digest=amd.digest,
        attestations=(bad_tests, *amd.attestations[1:], hostile),
        tests={"tests": 42, "passed": 39, "failed": 2, "skipped": 1},
        vulnerabilities_before_vex={"critical": 1, "high": 3, "medium": 2, "low": 5, "unknown": 1},
        vulnerabilities={"critical": 1, "high": 2, "medium": 2, "low": 5, "unknown": 1},
        suppressed_by_vex=("CVE-2026-1128",),
        violations=FAILING_VIOLATIONS[:2],
        warnings=(HOSTILE_WARNING,),
    )
    arm_atts = _attestations(2, absent=False, set_only=True)
    arm = PlatformView(
        platform="linux/arm64",
        digest=ARM64,
        attestations=tuple(a for a in arm_atts if a.predicate_type != SBOM),
        tests={"tests": 42, "passed": 41, "failed": 0, "skipped": 1},
        vulnerabilities_before_vex={"critical": 0, "high": 1, "medium": 2, "low": 5, "unknown": 0},
        vulnerabilities={"critical": 0, "high": 0, "medium": 1, "low": 5, "unknown": 0},
        suppressed_by_vex=("CVE-2025-4802", "CVE-2026-1128"),
        violations=FAILING_VIOLATIONS[2:],
    )
    platforms = (amd, arm)
    return VerificationReport(
        bundle_path="/media/usb0/python-3.13-2026-08-30.dhi.tar.zst",
        bundle_sha256=BUNDLE_SHA256,
        bundle_size=3_481_207,
        format_version=1,
        exporter_tool_version="0.1.0",
        created=datetime(2026, 8, 30, 9, 12, 44, tzinfo=UTC),
        expires=datetime(2026, 9, 29, 9, 12, 44, tzinfo=UTC),
        sequence=43,
        reference_time=REFERENCE_TIME,
        trust=_trust(trust_bundle_keys=True),
        images=(
            ImageView(
                reference=IMAGE,
                digest=IMAGE_DIGEST,
                media_type="application/vnd.oci.image.index.v1+json",
                platforms=platforms,
            ),
        ),
        checks=_checks(platforms),
        policy_name="dhi-default",
        policy_sha256=POLICY_SHA256,
        policy_rules=POLICY_RULES,
        violations=FAILING_VIOLATIONS,
        warnings=("exporter key taken from the bundle (--trust-bundle-keys)",),
        bundle_flags=("allow-unverified",),
        unsafe=("--trust-bundle-keys",),
        tool_version="0.1.0",
    )


def refusal_report(*, signed: bool = True) -> Refusal:
    """A bundle refused at step 4 (rollback) after its signature verified, or (with
    ``signed=False``) at the manifest signature, with hostile text in the reason."""
    progress = (
        Progress(
            exporter_key_id="ab" * 32,
            exporter_key_name="exporter.pub",
            sequence=41,
            created=datetime(2026, 8, 28, 9, 0, 0, tzinfo=UTC),
            expires=datetime(2026, 9, 27, 9, 0, 0, tzinfo=UTC),
            format_version=1,
        )
        if signed
        else Progress()
    )
    return Refusal(
        bundle_path="/media/usb0/python-3.13-2026-08-28.dhi.tar.zst",
        bundle_sha256=BUNDLE_SHA256,
        bundle_size=48_213_004,
        reference_time=REFERENCE_TIME,
        step=Step.ROLLBACK if signed else Step.BUNDLE_SIGNATURE,
        reason=(
            "sequence 41 is older than 43, already imported from exporter exporter.pub"
            if signed
            else "not signed by a trusted exporter key <script>alert(1)</script>\x1b[2J"
        ),
        progress=progress,
        unsafe=(),
        tool_version="0.1.0",
    )


if __name__ == "__main__":
    from dhi_offline.report.jsonreport import render_json

    print(render_json(passing_report()))
