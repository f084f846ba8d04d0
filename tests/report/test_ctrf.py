"""The CTRF report: what a CI dashboard shows of a verification run."""

from __future__ import annotations

import json
from typing import Any

from dhi_offline.report import render_ctrf
from dhi_offline.verify.result import VerificationReport
from tests.report import fixtures as fx

REFERENCE_MS = int(fx.REFERENCE_TIME.timestamp() * 1000)


def _ctrf(report: VerificationReport) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render_ctrf(report))
    return doc


def test_root_and_summary(passing: VerificationReport) -> None:
    doc = _ctrf(passing)
    assert doc["reportFormat"] == "CTRF" and doc["specVersion"] == "0.0.0"
    assert doc["results"]["tool"] == {"name": "dhi-offline", "version": "0.1.0"}
    summary = doc["results"]["summary"]
    assert summary == {
        "tests": 18,
        "passed": 17,
        "failed": 0,
        "skipped": 1,
        "pending": 0,
        "other": 0,
        "start": REFERENCE_MS,
        "stop": REFERENCE_MS,
        "duration": 0,
    }
    assert all(isinstance(v, int) for v in summary.values())
    assert doc["results"]["extra"]["verdict"] == "PASS"


def test_one_test_per_check(passing: VerificationReport) -> None:
    tests = _ctrf(passing)["results"]["tests"]
    assert len(tests) == len(passing.checks)
    first = tests[0]
    assert first["name"] == "1 bundle format: format version 1: zstd frame, tar headers, manifest"
    assert first["status"] == "passed" and first["duration"] == 0 and "suite" not in first
    per_platform = [t for t in tests if t["name"].startswith("6 attestation: ")]
    assert len(per_platform) == 11
    sample = per_platform[0]
    assert sample["name"] == (f"6 attestation: {fx.TESTS} [{fx.IMAGE} linux/amd64]") and sample[
        "suite"
    ] == [fx.IMAGE, "linux/amd64"]
    skipped = [t for t in tests if t["status"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["message"] == "no log entry; DHI may skip Rekor"
    image_only = tests[-1]
    assert image_only["suite"] == [fx.IMAGE] and image_only["name"].endswith(f"[{fx.IMAGE}]")


def test_failures_and_violations_are_failed_tests(failing: VerificationReport) -> None:
    doc = _ctrf(failing)
    tests = doc["results"]["tests"]
    failed = [t for t in tests if t["status"] == "failed"]
    summary = doc["results"]["summary"]
    assert summary["failed"] == len(failed) == 1 + 3 + 2  # check, violations, unsafe switches
    assert summary["tests"] == len(tests) == len(failing.checks) + 3 + 2
    assert summary["passed"] + summary["failed"] + summary["skipped"] == summary["tests"]
    check = next(t for t in failed if t["extra"]["kind"] == "check")
    assert check["message"] == fx.HOSTILE_PROBLEM
    assert check["name"].startswith("6 attestation: " + fx.HOSTILE_PREDICATE)
    violations = [t for t in failed if t["extra"]["kind"] == "violation"]
    assert [t["name"] for t in violations] == [
        f"policy: tests passed ({fx.TESTS}) [{fx.IMAGE} linux/amd64]",
        f"policy: max critical vulnerabilities ({fx.VULNS}) [{fx.IMAGE} linux/amd64]",
        f"policy: required attestation (sbom) [{fx.IMAGE} linux/arm64]",
    ]
    assert violations[1]["message"] == "1 critical after VEX (limit 0)"
    assert violations[2]["suite"] == [fx.IMAGE, "linux/arm64"]
    extra = doc["results"]["extra"]
    assert extra["verdict"] == "FAIL"
    assert extra["unsafe"] == ["--trust-bundle-keys"] and extra["bundleFlags"] == [
        "allow-unverified"
    ]


def test_deterministic(failing: VerificationReport) -> None:
    assert render_ctrf(failing) == render_ctrf(failing)
