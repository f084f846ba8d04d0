"""Readers for the predicates policy looks into: CTRF tests, vulnerabilities, VEX, SBOMs.

Liberal in what they accept (Docker's documented CTRF example departs from the CTRF
schema: times in seconds, no ``specVersion``/``tool``/``pending``/``other``) and explicit
about every departure, which is returned as a warning rather than ignored. They only
read predicates of statements that already verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dhi_offline.errors import MalformedEvidenceError

TESTS_PREDICATE = "https://scout.docker.com/tests/v0.1"
VULNS_PREDICATE = "https://in-toto.io/attestation/vulns/v0.1"
SCOUT_VULNS_PREDICATE = "https://scout.docker.com/vulnerabilities/v0.1"
OPENVEX_PREFIX = "https://openvex.dev/ns"
CYCLONEDX_PREFIX = "https://cyclonedx.org/bom"
SPDX_PREFIX = "https://spdx.dev/Document"
SCOUT_SBOM_PREDICATE = "https://scout.docker.com/sbom/v0.1"
PROVENANCE_PREDICATES = frozenset(
    {
        "https://slsa.dev/provenance/v0.2",
        "https://slsa.dev/provenance/v1",
        "https://scout.docker.com/provenance/v0.1",
    }
)
SEVERITIES = ("critical", "high", "medium", "low", "unknown")
# A CTRF start/stop below this is read as Unix seconds, not milliseconds (year 5138).
_MS_THRESHOLD = 10**11


def is_sbom(predicate_type: str) -> bool:
    """CycloneDX (any version), SPDX or Docker Scout SBOM."""
    return (
        predicate_type.startswith((CYCLONEDX_PREFIX, SPDX_PREFIX))
        or predicate_type == SCOUT_SBOM_PREDICATE
    )


def is_provenance(predicate_type: str) -> bool:
    """SLSA provenance v0.2/v1 or Docker Scout provenance."""
    return predicate_type in PROVENANCE_PREDICATES


def is_vex(predicate_type: str) -> bool:
    """OpenVEX, any version."""
    return predicate_type.startswith(OPENVEX_PREFIX)


@dataclass(frozen=True)
class TestSummary:
    """What a CTRF test report says."""

    tests: int
    passed: int
    failed: int
    skipped: int
    failed_names: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Departures from the CTRF schema that Docker's documented test predicate itself
    makes (no ``specVersion`` or ``results.tool``, no ``pending``/``other``, times in
    seconds): information, not warnings."""

    @property
    def ok(self) -> bool:
        """No failure in the summary and no test with status ``failed``."""
        return self.failed == 0 and not self.failed_names


def _int(obj: dict[str, Any], key: str, what: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvidenceError(f"{what}.{key}: expected a non-negative integer")
    return value


def read_ctrf(predicate: object) -> TestSummary:
    """Read a CTRF test report leniently, collecting departures from the schema.

    Raises:
        MalformedEvidenceError: not CTRF at all (no ``reportFormat: CTRF``, no
            ``results.summary`` counts, or tests without name/status).
    """
    if not isinstance(predicate, dict) or predicate.get("reportFormat") != "CTRF":
        raise MalformedEvidenceError("tests predicate is not a CTRF report (reportFormat)")
    warnings: list[str] = []
    notes: list[str] = []
    results = predicate.get("results")
    if not isinstance(results, dict):
        raise MalformedEvidenceError("CTRF report has no results")
    summary = results.get("summary")
    if not isinstance(summary, dict):
        raise MalformedEvidenceError("CTRF report has no results.summary")
    tests_n = _int(summary, "tests", "results.summary")
    passed = _int(summary, "passed", "results.summary")
    failed = _int(summary, "failed", "results.summary")
    skipped = summary.get("skipped", 0)
    skipped = skipped if isinstance(skipped, int) and not isinstance(skipped, bool) else 0
    if "specVersion" not in predicate:
        notes.append("CTRF: no specVersion")
    if not isinstance(results.get("tool"), dict):
        notes.append("CTRF: no results.tool")
    for key in ("pending", "other"):
        if key not in summary:
            notes.append(f"CTRF: results.summary.{key} missing")
    for key in ("start", "stop"):
        value = summary.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < _MS_THRESHOLD:
            notes.append(f"CTRF: results.summary.{key} is in seconds, not milliseconds")
    tests = results.get("tests", [])
    if not isinstance(tests, list):
        raise MalformedEvidenceError("CTRF results.tests must be a list")
    failed_names: list[str] = []
    statuses = {"passed", "failed", "skipped", "pending", "other"}
    for i, t in enumerate(tests):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise MalformedEvidenceError(f"CTRF results.tests[{i}] has no name")
        status = t.get("status")
        if status not in statuses:
            raise MalformedEvidenceError(f"CTRF test {t['name']!r} has status {status!r}")
        if status == "failed":
            failed_names.append(t["name"])
        if "duration" not in t:
            warnings.append(f"CTRF: test {t['name']!r} has no duration")
    if len(tests) != tests_n:
        warnings.append(f"CTRF: summary counts {tests_n} tests, the report lists {len(tests)}")
    return TestSummary(
        tests=tests_n,
        passed=passed,
        failed=failed,
        skipped=skipped,
        failed_names=tuple(failed_names),
        warnings=tuple(dict.fromkeys(warnings)),
        notes=tuple(dict.fromkeys(notes)),
    )


@dataclass(frozen=True)
class Vulnerability:
    """One finding: an id (CVE/GHSA...) and a severity level."""

    id: str
    severity: str


def _level(score: object) -> str | None:
    if isinstance(score, str):
        text = score.strip().lower()
        if text in SEVERITIES:
            return text
        if text == "moderate":
            return "medium"
        if text in ("negligible", "none", "info", "informational"):
            return "low"
        try:
            score = float(text)
        except ValueError:
            return None
    if isinstance(score, int | float) and not isinstance(score, bool):
        # CVSS v3 qualitative ratings.
        if score >= 9.0:
            return "critical"
        if score >= 7.0:
            return "high"
        if score >= 4.0:
            return "medium"
        return "low"
    return None


def _severity(item: dict[str, Any]) -> str:
    sev = item.get("severity")
    candidates: list[object] = []
    if isinstance(sev, list):
        for s in sev:
            if isinstance(s, dict):
                candidates.append(s.get("score", s.get("severity")))
            else:
                candidates.append(s)
    else:
        candidates.append(sev)
    levels = [lv for lv in (_level(c) for c in candidates) if lv]
    if not levels:
        return "unknown"
    return min(levels, key=SEVERITIES.index)  # the most severe rating wins


def read_vulnerabilities(predicate: object) -> list[Vulnerability]:
    """Findings of an in-toto vulns v0.1 predicate (``scanner.result[]``).

    Docker Scout's own vulnerability predicate is not publicly specified
    (UNCONFIRMED); objects with an ``id``/``cve`` and a ``severity`` anywhere under
    ``vulnerabilities`` or ``scanner.result`` are read the same way.

    Raises:
        MalformedEvidenceError: no list of findings where one is expected.
    """
    if not isinstance(predicate, dict):
        raise MalformedEvidenceError("vulnerability predicate must be an object")
    items: object = None
    scanner = predicate.get("scanner")
    if isinstance(scanner, dict):
        items = scanner.get("result")
    if items is None:
        items = predicate.get("vulnerabilities")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise MalformedEvidenceError("vulnerability predicate: findings must be a list")
    out: list[Vulnerability] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        vid = item.get("id") or item.get("cve") or item.get("name")
        if isinstance(vid, str) and vid:
            out.append(Vulnerability(id=vid, severity=_severity(item)))
    return out


@dataclass(frozen=True)
class VexStatement:
    """One OpenVEX statement."""

    vulnerability: str
    aliases: tuple[str, ...]
    status: str
    products: tuple[str, ...]
    justification: str | None = None


def read_openvex(predicate: object) -> list[VexStatement]:
    """Statements of an OpenVEX document (v0.2.0, and the older string forms).

    Raises:
        MalformedEvidenceError: no ``statements`` list.
    """
    if not isinstance(predicate, dict) or not isinstance(predicate.get("statements"), list):
        raise MalformedEvidenceError("VEX predicate has no statements list")
    out: list[VexStatement] = []
    for st in predicate["statements"]:
        if not isinstance(st, dict):
            continue
        vuln = st.get("vulnerability")
        aliases: list[str] = []
        if isinstance(vuln, dict):
            name = vuln.get("name") or vuln.get("@id") or ""
            raw_aliases = vuln.get("aliases")
            if isinstance(raw_aliases, list):
                aliases = [a for a in raw_aliases if isinstance(a, str)]
        else:
            name = vuln if isinstance(vuln, str) else ""
        products: list[str] = []
        raw_products = st.get("products")
        if isinstance(raw_products, list):
            for p in raw_products:
                if isinstance(p, str):
                    products.append(p)
                elif isinstance(p, dict):
                    pid = p.get("@id")
                    if isinstance(pid, str):
                        products.append(pid)
                    ids = p.get("identifiers")
                    if isinstance(ids, dict):
                        products.extend(v for v in ids.values() if isinstance(v, str))
        status = st.get("status")
        if isinstance(name, str) and name and isinstance(status, str):
            just = st.get("justification")
            out.append(
                VexStatement(
                    vulnerability=name,
                    aliases=tuple(aliases),
                    status=status,
                    products=tuple(products),
                    justification=just if isinstance(just, str) else None,
                )
            )
    return out


SUPPRESSING_STATUSES = frozenset({"not_affected", "fixed"})


@dataclass(frozen=True)
class VulnerabilityCounts:
    """Findings by severity, before and after VEX."""

    before: dict[str, int]
    after: dict[str, int]
    suppressed: tuple[str, ...] = field(default_factory=tuple)


def apply_vex(
    findings: list[Vulnerability], statements: list[VexStatement], *, subject_digest: str
) -> VulnerabilityCounts:
    """Count findings by severity, then without those VEX marks ``not_affected``/``fixed``.

    The VEX document is itself an attestation about this image (its in-toto subject was
    verified), so a statement applies unless every product it names pins *another*
    digest (``...@sha256:<other>``). The last statement about a vulnerability wins, as
    OpenVEX orders statements by time.
    """
    hexpart = subject_digest.partition(":")[2]

    def applies(products: tuple[str, ...]) -> bool:
        if not products:
            return True
        return any(hexpart in p or "sha256" not in p for p in products)

    status: dict[str, str] = {}
    for st in statements:
        if not applies(st.products):
            continue
        for vid in (st.vulnerability, *st.aliases):
            status[vid] = st.status
    before = dict.fromkeys(SEVERITIES, 0)
    after = dict.fromkeys(SEVERITIES, 0)
    suppressed: list[str] = []
    for f in {(v.id, v.severity): v for v in findings}.values():
        before[f.severity] += 1
        if status.get(f.id) in SUPPRESSING_STATUSES:
            suppressed.append(f.id)
        else:
            after[f.severity] += 1
    return VulnerabilityCounts(before=before, after=after, suppressed=tuple(sorted(suppressed)))


def sbom_package_count(predicate_type: str, predicate: object) -> int | None:
    """Number of components (CycloneDX, nested included) or packages (SPDX)."""
    if not isinstance(predicate, dict):
        return None
    if predicate_type.startswith(CYCLONEDX_PREFIX):
        # A list at a time: an SBOM holds tens of thousands of components.
        count = 0
        lists = [predicate.get("components")]
        while lists:
            comps = lists.pop()
            if not isinstance(comps, list):
                continue
            dicts = [c for c in comps if isinstance(c, dict)]
            count += len(dicts)
            lists += [c["components"] for c in dicts if c.get("components")]
        return count
    if predicate_type.startswith(SPDX_PREFIX):
        packages = predicate.get("packages")
        return len(packages) if isinstance(packages, list) else None
    return None
