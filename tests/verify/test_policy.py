"""Policy parsing (fail closed) and evaluation on DHI-shaped predicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from dhi_offline.errors import InputError, UsageError
from dhi_offline.evidence.predicates import (
    TESTS_PREDICATE,
    VULNS_PREDICATE,
    apply_vex,
    read_ctrf,
    read_openvex,
    read_vulnerabilities,
    sbom_package_count,
)
from dhi_offline.verify.policy import (
    Evidence,
    Policy,
    check_required_platforms,
    evaluate_platform,
    parse_duration,
    parse_policy,
)

DIGEST = "sha256:" + "ab" * 32
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def ctrf(failed: int = 0) -> dict[str, object]:
    # Docker's documented example: start/stop in seconds, no specVersion/tool/pending/other.
    tests = [{"name": "runs", "status": "passed", "duration": 1}]
    tests += [{"name": f"bad{i}", "status": "failed", "duration": 1} for i in range(failed)]
    return {
        "reportFormat": "CTRF",
        "results": {
            "summary": {
                "failed": failed,
                "passed": 1,
                "skipped": 0,
                "start": 1749216533,
                "stop": 1749216574,
                "tests": 1 + failed,
            },
            "tests": tests,
        },
    }


def vulns(*items: tuple[str, str]) -> dict[str, object]:
    return {
        "scanner": {
            "uri": "pkg:x/scanner",
            "result": [{"id": i, "severity": [{"method": "nvd", "score": s}]} for i, s in items],
        }
    }


def vex(
    *items: tuple[str, str], product: str = f"pkg:docker/dhi/python@{DIGEST}"
) -> dict[str, object]:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "statements": [
            {"vulnerability": {"name": v}, "status": st, "products": [{"@id": product}]}
            for v, st in items
        ],
    }


def default_policy() -> Policy:
    data = (resources.files("dhi_offline") / "data" / "policies" / "dhi-default.toml").read_bytes()
    return parse_policy(data, source="dhi-default")


def ev(ptype: str, predicate: object, tlog: str = "absent") -> Evidence:
    return Evidence(predicate_type=ptype, predicate=predicate, tlog_status=tlog)


FULL = [
    ev(TESTS_PREDICATE, ctrf()),
    ev(
        "https://cyclonedx.org/bom/v1.6",
        {"components": [{"name": "a", "components": [{"name": "b"}]}]},
    ),
    ev("https://slsa.dev/provenance/v1", {}),
    ev(VULNS_PREDICATE, vulns(("CVE-1", "9.8"), ("CVE-2", "LOW"))),
    ev("https://openvex.dev/ns/v0.2.0", vex(("CVE-1", "not_affected"))),
]


def test_default_policy_passes_complete_evidence_and_warns_on_ctrf_departures() -> None:
    out = evaluate_platform(
        default_policy(), image="img", platform="linux/amd64", subject=DIGEST, evidence=FULL, at=NOW
    )
    assert out.violations == []
    assert out.tests == {"tests": 1, "passed": 1, "failed": 0, "skipped": 0}
    assert out.vulnerabilities is not None
    assert (
        out.vulnerabilities.before["critical"] == 1 and out.vulnerabilities.after["critical"] == 0
    )
    assert any("seconds" in n for n in out.notes) and not any("seconds" in w for w in out.warnings)
    assert any("specVersion" in n for n in out.notes)


@pytest.mark.parametrize(
    ("drop", "rule"),
    [
        (0, "required attestation"),
        (1, "required attestation"),
        (2, "required attestation"),
        (3, "vulnerabilities"),
    ],
)
def test_missing_evidence_is_a_violation(drop: int, rule: str) -> None:
    evidence = [e for i, e in enumerate(FULL) if i != drop]
    out = evaluate_platform(
        default_policy(),
        image="img",
        platform="linux/arm64",
        subject=DIGEST,
        evidence=evidence,
        at=NOW,
    )
    assert any(v.rule == rule for v in out.violations)
    assert all(v.image == "img" and v.platform == "linux/arm64" for v in out.violations)


def test_failed_tests_and_unsuppressed_cves_name_image_platform_predicate_rule() -> None:
    evidence = [ev(TESTS_PREDICATE, ctrf(failed=2)), *FULL[1:4]]  # no VEX this time
    out = evaluate_platform(
        default_policy(),
        image="img",
        platform="linux/amd64",
        subject=DIGEST,
        evidence=evidence,
        at=NOW,
    )
    rules = {v.rule: v for v in out.violations}
    assert "bad0" in rules["tests passed"].message
    assert rules["max critical vulnerabilities"].predicate == VULNS_PREDICATE
    assert (
        rules["max critical vulnerabilities"].one_line().startswith("img linux/amd64: max critical")
    )


def test_vex_for_another_digest_does_not_suppress() -> None:
    other = vex(("CVE-1", "fixed"), product="pkg:docker/x@sha256:" + "cd" * 32)
    counts = apply_vex(
        read_vulnerabilities(vulns(("CVE-1", "CRITICAL"))),
        read_openvex(other),
        subject_digest=DIGEST,
    )
    assert counts.after["critical"] == 1
    unpinned = vex(("CVE-1", "fixed"), product="pkg:docker/dhi/python")
    counts = apply_vex(
        read_vulnerabilities(vulns(("CVE-1", "CRITICAL"))),
        read_openvex(unpinned),
        subject_digest=DIGEST,
    )
    assert counts.after["critical"] == 0 and counts.suppressed == ("CVE-1",)
    affected = vex(("CVE-1", "affected"))
    counts = apply_vex(
        read_vulnerabilities(vulns(("CVE-1", "7.5"))), read_openvex(affected), subject_digest=DIGEST
    )
    assert counts.after["high"] == 1


def test_ctrf_strictness() -> None:
    assert read_ctrf(ctrf()).ok and not read_ctrf(ctrf(failed=1)).ok
    lying = ctrf()
    lying["results"]["tests"].append({"name": "x", "status": "failed"})  # type: ignore[index]
    assert not read_ctrf(lying).ok  # summary says 0 failed, a test says failed
    with pytest.raises(Exception, match="CTRF"):
        read_ctrf({"reportFormat": "JUnit"})


def test_policy_is_fail_closed() -> None:
    with pytest.raises(UsageError, match="no rule"):
        parse_policy(b"name = 'empty'\n")
    with pytest.raises(UsageError, match="unknown key"):
        parse_policy(b"[tests]\nrequire_pased = true\n")
    with pytest.raises(UsageError, match="unknown key"):
        parse_policy(b"[test]\nrequire_passed = true\n")
    with pytest.raises(UsageError):
        parse_policy(b"[vulnerabilities]\nmax = { severe = 1 }\n")
    with pytest.raises(UsageError):
        parse_policy(b"[attestations]\nrequired = ['sboms']\n")
    with pytest.raises(InputError):
        parse_policy(b"[tests\n")


def test_required_platforms_and_age_and_tlog() -> None:
    policy = parse_policy(
        b"required_platforms = ['linux/amd64', 'linux/arm64']\n"
        b"require_tlog = true\nmax_evidence_age = '30d'\n"
    )
    missing = check_required_platforms(policy, image="img", platforms=["linux/amd64"])
    assert [v.platform for v in missing] == ["linux/arm64"]
    old = Evidence(TESTS_PREDICATE, ctrf(), "absent", (NOW - timedelta(days=31),))
    out = evaluate_platform(
        policy, image="img", platform="linux/amd64", subject=DIGEST, evidence=[old], at=NOW
    )
    assert {v.rule for v in out.violations} == {"transparency-log proof", "max evidence age"}
    assert parse_duration("1w2d") == timedelta(days=9)
    with pytest.raises(UsageError):
        parse_duration("30 days")


def test_sbom_counts() -> None:
    assert (
        sbom_package_count(
            "https://cyclonedx.org/bom/v1.5", {"components": [{"components": [{}]}, {}]}
        )
        == 3
    )
    assert sbom_package_count("https://spdx.dev/Document", {"packages": [{}, {}]}) == 2
