"""The verification run as a CTRF test report (Common Test Report Format, spec 0.0.0).

A CI dashboard that reads CTRF shows each check of the verification plan as a test, and
each policy violation as a failed test. The document keeps to the CTRF JSON schema
(``additionalProperties: false`` everywhere but ``extra``): required root ``results``,
``reportFormat`` and ``specVersion``; ``results.tool``, ``results.summary`` with every
required count, ``start``/``stop`` as integer milliseconds since the epoch; tests with
``name``, ``status`` and an integer ``duration``. Both are checked in
``tests/report/test_ctrf_validates.py`` with the ``ctrf`` npm package's validator.

The run's time is the report's reference time (the one clock of the verification), so
``start == stop`` and every duration is 0: the report describes a verdict at an instant,
not how long the checks took.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dhi_offline.report._common import (
    all_violations,
    check_counts,
    fmt_time,
    headline,
    unsafe_switches,
    verdict_reason,
)
from dhi_offline.verify.policy import Violation
from dhi_offline.verify.result import Check, Refusal, VerificationReport

CTRF_SPEC_VERSION = "0.0.0"
"""The CTRF specification version the document follows."""


def render_ctrf(report: VerificationReport | Refusal) -> str:
    """The CTRF JSON document of ``report``: one test per check, one per policy violation,
    one failed test per unsafe switch in force; a refusal is one failed test naming the
    step that refused the bundle."""
    at_ms = int(report.reference_time.timestamp() * 1000)
    if isinstance(report, Refusal):
        checks = [Check(report.step, "bundle refused", "failed", report.reason)]
        violations: tuple[Violation, ...] = ()
        reason = report.reason
        extra_bundle: dict[str, Any] = {
            "path": report.bundle_path,
            "sha256": report.bundle_sha256,
            "sequence": report.progress.sequence,
        }
        policy: dict[str, Any] = {"name": None, "sha256": None}
        flags: list[str] = []
        policy_passed: bool | None = None
    else:
        checks = list(report.checks)
        violations = all_violations(report)
        reason = verdict_reason(report)
        extra_bundle = {
            "path": report.bundle_path,
            "sha256": report.bundle_sha256,
            "sequence": report.sequence,
        }
        policy = {"name": report.policy_name, "sha256": report.policy_sha256}
        flags = list(report.bundle_flags)
        policy_passed = not report.violations
    tests = [_check_test(c) for c in checks]
    tests += [_violation_test(v) for v in violations]
    tests += [_unsafe_test(u) for u in unsafe_switches(report)]
    counts = check_counts(checks)
    counts["failed"] += len(tests) - len(checks)
    doc: dict[str, Any] = {
        "reportFormat": "CTRF",
        "specVersion": CTRF_SPEC_VERSION,
        "timestamp": fmt_time(report.reference_time),
        "generatedBy": f"dhi-offline {report.tool_version}",
        "results": {
            "tool": {"name": "dhi-offline", "version": report.tool_version},
            "summary": {
                "tests": len(tests),
                "passed": counts["passed"],
                "failed": counts["failed"],
                "skipped": counts["skipped"],
                "pending": 0,
                "other": 0,
                "start": at_ms,
                "stop": at_ms,
                "duration": 0,
            },
            "tests": tests,
            "extra": {
                "verdict": report.verdict,
                "headline": headline(report),
                "reason": reason,
                "refused": report.refused,
                "verified": report.verified,
                "policyPassed": policy_passed,
                "bundle": extra_bundle,
                "policy": policy,
                "unsafe": list(report.unsafe),
                "bundleFlags": flags,
            },
        },
    }
    return json.dumps(doc, indent=2, sort_keys=True)


def _suite(image: str | None, platform: str | None) -> list[str]:
    return [p for p in (image, platform) if p]


def _check_test(check: Check) -> dict[str, Any]:
    where = " ".join(_suite(check.image, check.platform))
    test: dict[str, Any] = {
        "name": f"{check.step}: {check.name}" + (f" [{where}]" if where else ""),
        "status": check.status,
        "duration": 0,
        "extra": {"kind": "check", "step": check.step},
    }
    if check.status == "failed":
        test["message"] = check.message or "failed"
    elif check.message:
        test["message"] = check.message
    if where:
        test["suite"] = _suite(check.image, check.platform)
    return test


def _unsafe_test(switch: str) -> dict[str, Any]:
    # A failed test, so a dashboard that counts failures cannot show an unsafe run green.
    return {
        "name": f"UNSAFE: {switch.split(':', 1)[0]}",
        "status": "failed",
        "duration": 0,
        "message": switch,
        "extra": {"kind": "unsafe"},
    }


def _violation_test(v: Violation) -> dict[str, Any]:
    where = " ".join(_suite(v.image, v.platform))
    test: dict[str, Any] = {
        "name": f"policy: {v.rule} ({v.predicate})" + (f" [{where}]" if where else ""),
        "status": "failed",
        "duration": 0,
        "message": v.message,
        "extra": {"kind": "violation", "rule": v.rule, "predicate": v.predicate},
    }
    suite = _suite(v.image, v.platform)
    if suite:
        test["suite"] = suite
    return test


def render_ctrf_note(name: str, passed: bool, message: str, tool_version: str) -> str:
    """A one-test CTRF document for a result that is not a verification (``import`` of
    a bundle already in the archive)."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    status = "passed" if passed else "failed"
    doc = {
        "reportFormat": "CTRF",
        "specVersion": CTRF_SPEC_VERSION,
        "generatedBy": f"dhi-offline {tool_version}",
        "results": {
            "tool": {"name": "dhi-offline", "version": tool_version},
            "summary": {
                "tests": 1,
                "passed": int(passed),
                "failed": int(not passed),
                "skipped": 0,
                "pending": 0,
                "other": 0,
                "start": now_ms,
                "stop": now_ms,
                "duration": 0,
            },
            "tests": [{"name": name, "status": status, "duration": 0, "message": message}],
        },
    }
    return json.dumps(doc, indent=2, sort_keys=True)
