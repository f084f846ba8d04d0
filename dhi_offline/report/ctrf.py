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
from typing import Any

from dhi_offline.report._common import all_violations, check_counts, fmt_time, verdict_reason
from dhi_offline.verify.policy import Violation
from dhi_offline.verify.result import Check, VerificationReport

CTRF_SPEC_VERSION = "0.0.0"
"""The CTRF specification version the document follows."""


def render_ctrf(report: VerificationReport) -> str:
    """The CTRF JSON document of ``report``: one test per check, one per policy violation."""
    at_ms = int(report.reference_time.timestamp() * 1000)
    tests = [_check_test(c) for c in report.checks]
    tests += [_violation_test(v) for v in all_violations(report)]
    counts = check_counts(report.checks)
    counts["failed"] += len(tests) - len(report.checks)
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
                "reason": verdict_reason(report),
                "verified": report.verified,
                "policyPassed": not report.violations,
                "bundle": {
                    "path": report.bundle_path,
                    "sha256": report.bundle_sha256,
                    "sequence": report.sequence,
                },
                "policy": {"name": report.policy_name, "sha256": report.policy_sha256},
                "unsafe": list(report.unsafe),
                "bundleFlags": list(report.bundle_flags),
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
