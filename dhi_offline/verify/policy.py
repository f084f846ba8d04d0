"""Policy: what verified evidence must show before an image may run.

A policy is a TOML file (every key is documented in ``docs/policy.md``). It is
fail-closed: an empty policy, an unknown key or a misspelt section is an error, never a
silent pass. Rules apply per image and platform to *verified* attestations only, and
every violation names the image, platform, predicate and rule.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from dhi_offline.errors import DhiError, InputError, UsageError
from dhi_offline.evidence.predicates import (
    SCOUT_VULNS_PREDICATE,
    SEVERITIES,
    TESTS_PREDICATE,
    VULNS_PREDICATE,
    VulnerabilityCounts,
    apply_vex,
    is_provenance,
    is_sbom,
    is_vex,
    read_ctrf,
    read_openvex,
    read_vulnerabilities,
)
from dhi_offline.files import read_file


# Aliases usable in `attestations.required`, for predicates that come in several types.
def _is_tests(t: str) -> bool:
    return t == TESTS_PREDICATE


def _is_vulns(t: str) -> bool:
    return t in (VULNS_PREDICATE, SCOUT_VULNS_PREDICATE)


ALIASES: dict[str, Callable[[str], bool]] = {
    "tests": _is_tests,
    "sbom": is_sbom,
    "provenance": is_provenance,
    "vex": is_vex,
    "vulnerabilities": _is_vulns,
}
_KEYS: dict[str, type] = {
    "name": str,
    "required_platforms": list,
    "require_tlog": bool,
    "max_evidence_age": str,
    "attestations": dict,
    "tests": dict,
    "vulnerabilities": dict,
}
_SECTION_KEYS: dict[str, dict[str, type]] = {
    "attestations": {"required": list},
    "tests": {"require_passed": bool},
    "vulnerabilities": {"max": dict, "apply_vex": bool},
}
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``... as a timedelta.

    Raises:
        UsageError: not a duration.
    """
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text or total <= 0:
        raise UsageError(f"{text!r} is not a duration such as 30d, 12h or 1w")
    return timedelta(seconds=total)


@dataclass(frozen=True)
class Policy:
    """A parsed policy."""

    name: str
    required_predicates: tuple[str, ...] = ()
    required_platforms: tuple[str, ...] = ()
    require_tests_passed: bool = False
    max_vulnerabilities: dict[str, int] = field(default_factory=dict)
    apply_vex: bool = True
    require_tlog: bool = False
    max_evidence_age: timedelta | None = None
    sha256: str = ""
    """Hash of the policy file, recorded in receipts."""

    def rules(self) -> list[str]:
        """Human-readable list of the rules in force."""
        out = [f"required attestation: {p}" for p in self.required_predicates]
        out += [f"required platform: {p}" for p in self.required_platforms]
        if self.require_tests_passed:
            out.append("tests passed")
        out += [f"at most {n} {s} vulnerabilities" for s, n in self.max_vulnerabilities.items()]
        if self.require_tlog:
            out.append("transparency-log proof required")
        if self.max_evidence_age is not None:
            out.append(f"evidence younger than {self.max_evidence_age}")
        return out


BUILTIN_POLICIES = ("dhi-default",)
"""Policies shipped in the package, usable by name."""


def load_policy(name_or_path: str) -> Policy:
    """A built-in policy by name, or a TOML file.

    Raises:
        InputError: the file cannot be read.
        UsageError: the policy is malformed.
    """
    if name_or_path in BUILTIN_POLICIES:
        return parse_policy(builtin_policy_text(name_or_path), source=name_or_path)
    path = Path(name_or_path)
    if not path.exists() and "/" not in name_or_path and not name_or_path.endswith(".toml"):
        raise UsageError(
            f"no built-in policy {name_or_path!r} and no such file (built-in: "
            f"{', '.join(BUILTIN_POLICIES)}; 'dhi-offline policy show NAME' prints one)"
        )
    return parse_policy(read_file(path, what="policy", limit=1024 * 1024), source=str(path))


def builtin_policy_text(name: str) -> bytes:
    """The TOML of a built-in policy, as shipped.

    Raises:
        UsageError: no built-in policy has that name.
    """
    if name not in BUILTIN_POLICIES:
        raise UsageError(f"no built-in policy {name!r} (built-in: {', '.join(BUILTIN_POLICIES)})")
    return (resources.files("dhi_offline") / "data" / "policies" / f"{name}.toml").read_bytes()


def parse_policy(data: bytes, *, source: str = "policy") -> Policy:
    """Parse a TOML policy strictly.

    Raises:
        InputError: not TOML.
        UsageError: unknown keys, wrong types, or a policy with no rule at all.
    """
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{source}: not valid TOML ({e})") from e
    _check_keys(doc, _KEYS, source)
    for section, keys in _SECTION_KEYS.items():
        if section in doc:
            _check_keys(doc[section], keys, f"{source} [{section}]")
    required = tuple(doc.get("attestations", {}).get("required", []))
    for r in required:
        if not isinstance(r, str) or not (r in ALIASES or "://" in r):
            raise UsageError(
                f"{source}: required attestation {r!r} is neither a URI "
                f"nor one of {sorted(ALIASES)}"
            )
    platforms = tuple(doc.get("required_platforms", []))
    if not all(isinstance(p, str) and p.count("/") in (1, 2) for p in platforms):
        raise UsageError(f"{source}: required_platforms must be like linux/amd64")
    max_v: dict[str, int] = {}
    for sev, n in doc.get("vulnerabilities", {}).get("max", {}).items():
        if sev not in SEVERITIES or isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise UsageError(
                f"{source}: vulnerabilities.max.{sev} must be a severity with a count >= 0"
            )
        max_v[sev] = n
    age = doc.get("max_evidence_age")
    policy = Policy(
        name=str(doc.get("name", source)),
        required_predicates=required,
        required_platforms=platforms,
        require_tests_passed=bool(doc.get("tests", {}).get("require_passed", False)),
        max_vulnerabilities=max_v,
        apply_vex=bool(doc.get("vulnerabilities", {}).get("apply_vex", True)),
        require_tlog=bool(doc.get("require_tlog", False)),
        max_evidence_age=parse_duration(age) if age is not None else None,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if not policy.rules():
        raise UsageError(f"{source}: the policy has no rule; an empty policy is not a pass")
    return policy


def _check_keys(obj: object, allowed: dict[str, type], where: str) -> None:
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: expected a table")
    for key, value in obj.items():
        if key not in allowed:
            raise UsageError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        if not isinstance(value, allowed[key]):
            raise UsageError(f"{where}: {key} must be a {allowed[key].__name__}")


@dataclass(frozen=True)
class Evidence:
    """One verified attestation as policy sees it."""

    predicate_type: str
    predicate: Any
    tlog_status: str
    signing_times: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class Violation:
    """A rule an image platform breaks."""

    image: str
    platform: str
    predicate: str
    rule: str
    message: str

    def one_line(self) -> str:
        """``image platform: rule (predicate): message``."""
        return f"{self.image} {self.platform}: {self.rule} ({self.predicate}): {self.message}"


@dataclass
class PlatformOutcome:
    """Policy's view of one platform: violations, warnings and the figures reports show."""

    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Information that is not a problem (see ``TestSummary.notes``)."""
    tests: dict[str, int] | None = None
    vulnerabilities: VulnerabilityCounts | None = None


def evaluate_platform(
    policy: Policy,
    *,
    image: str,
    platform: str,
    subject: str,
    evidence: list[Evidence],
    at: datetime,
) -> PlatformOutcome:
    """Apply ``policy`` to the verified evidence of one image platform."""
    out = PlatformOutcome()

    def violate(predicate: str, rule: str, message: str) -> None:
        out.violations.append(Violation(image, platform, predicate, rule, message))

    types = [e.predicate_type for e in evidence]
    for req in policy.required_predicates:
        match = ALIASES.get(req)
        if not any(match(t) if match else t == req for t in types):
            violate(req, "required attestation", "no verified attestation of this type")

    tests = [e for e in evidence if e.predicate_type == TESTS_PREDICATE]
    if tests:
        totals = {"tests": 0, "passed": 0, "failed": 0, "skipped": 0}
        for e in tests:
            try:
                summary = read_ctrf(e.predicate)
            except DhiError as err:
                violate(TESTS_PREDICATE, "tests passed", f"unreadable test report: {err.message}")
                continue
            out.warnings.extend(summary.warnings)
            out.notes.extend(summary.notes)
            for k in totals:
                totals[k] += getattr(summary, k)
            if policy.require_tests_passed and not summary.ok:
                names = ", ".join(summary.failed_names[:5]) or "summary.failed > 0"
                violate(TESTS_PREDICATE, "tests passed", f"{summary.failed} failed: {names}")
        out.tests = totals
    elif policy.require_tests_passed:
        violate(TESTS_PREDICATE, "tests passed", "no verified test report")

    vuln_evidence = [
        e for e in evidence if e.predicate_type in (VULNS_PREDICATE, SCOUT_VULNS_PREDICATE)
    ]
    if vuln_evidence:
        findings = []
        for e in vuln_evidence:
            try:
                findings.extend(read_vulnerabilities(e.predicate))
            except DhiError as err:
                violate(e.predicate_type, "vulnerabilities", f"unreadable report: {err.message}")
        statements = []
        if policy.apply_vex:
            for e in evidence:
                if is_vex(e.predicate_type):
                    try:
                        statements.extend(read_openvex(e.predicate))
                    except DhiError as err:
                        out.warnings.append(f"VEX ignored: {err.message}")
        counts = apply_vex(findings, statements, subject_digest=subject)
        out.vulnerabilities = counts
        for sev, limit in policy.max_vulnerabilities.items():
            if counts.after[sev] > limit:
                violate(
                    vuln_evidence[0].predicate_type,
                    f"max {sev} vulnerabilities",
                    f"{counts.after[sev]} {sev} after VEX (limit {limit})",
                )
    elif policy.max_vulnerabilities:
        violate(VULNS_PREDICATE, "vulnerabilities", "no verified vulnerability report")

    if policy.require_tlog:
        for e in evidence:
            if e.tlog_status == "absent":
                violate(e.predicate_type, "transparency-log proof", "not in a transparency log")

    if policy.max_evidence_age is not None:
        for e in evidence:
            if e.signing_times and at - min(e.signing_times) > policy.max_evidence_age:
                violate(
                    e.predicate_type,
                    "max evidence age",
                    f"signed {min(e.signing_times).isoformat()}",
                )
    return out


def check_required_platforms(
    policy: Policy, *, image: str, platforms: list[str]
) -> list[Violation]:
    """Violations for platforms the policy requires and the image does not have."""
    return [
        Violation(image, p, "-", "required platform", "platform not in the bundle")
        for p in policy.required_platforms
        if p not in platforms
    ]
