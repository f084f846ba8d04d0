"""What every renderer says the same way: the verdict's reason, unsafe switches, log proof.

Kept in one place so that the text, CTRF and HTML reports cannot disagree on why a
verification failed or which unsafe switches were on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from dhi_offline.encoding import format_rfc3339
from dhi_offline.evidence.predicates import SEVERITIES
from dhi_offline.verify.policy import ALIASES, Violation
from dhi_offline.verify.result import AttestationView, Check, Refusal, VerificationReport

# C0 and C1 control characters and DEL: evidence may carry terminal escape sequences.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: object) -> str:
    """``text`` as a string with every control character shown as ``\\xNN``.

    Strings in a report may come from unverified evidence; a raw ESC could rewrite the
    terminal (or hide a FAIL), a raw newline could forge a report line.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def fmt_time(value: datetime) -> str:
    """RFC 3339 in UTC, the form every report uses."""
    return format_rfc3339(value)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 check``, ``2 checks``."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def all_violations(report: VerificationReport) -> tuple[Violation, ...]:
    """The report's violations, then any platform violation it does not already list.

    ``report.violations`` is the list the verdict uses; platform views hold the same
    violations by platform. A platform violation missing from the report-level list is
    still shown rather than hidden.
    """
    seen: list[Violation] = list(report.violations)
    for image in report.images:
        for platform in image.platforms:
            seen.extend(v for v in platform.violations if v not in seen)
    return tuple(seen)


def failed_checks(report: VerificationReport) -> tuple[Check, ...]:
    """The checks that failed, in plan order."""
    return tuple(c for c in report.checks if c.status == "failed")


def check_counts(checks: Iterable[Check]) -> dict[str, int]:
    """``{"passed": n, "failed": n, "skipped": n}``."""
    out = {"passed": 0, "failed": 0, "skipped": 0}
    for c in checks:
        out[c.status] = out.get(c.status, 0) + 1
    return out


def check_label(check: Check) -> str:
    """``step: name`` followed by ``[image platform]`` when the check is about one."""
    where = " ".join(p for p in (check.image, check.platform) if p)
    return f"{check.step}: {check.name}" + (f" [{where}]" if where else "")


def verdict_reason(report: VerificationReport) -> str:
    """One sentence saying why the verdict is what it is."""
    counts = check_counts(report.checks)
    total = len(report.checks)
    violations = all_violations(report)
    if report.passed:
        policy = f"policy {report.policy_name!r}" if report.policy_name else "no policy"
        if counts["skipped"]:
            checks = (
                f"{counts['passed']} of {plural(total, 'check')} passed, "
                f"{counts['skipped']} skipped"
            )
        else:
            checks = f"all {plural(total, 'check')} passed"
        return f"verified: {checks}; {policy}: no violation"
    parts: list[str] = []
    failed = failed_checks(report)
    if failed:
        first = failed[0]
        parts.append(
            f"{counts['failed']} of {plural(total, 'check')} failed "
            f"(first: {check_label(first)}" + (f": {first.message}" if first.message else "") + ")"
        )
    if violations:
        parts.append(f"{plural(len(violations), 'policy violation')}")
    return "; ".join(parts) or "not verified"


def unsafe_switches(report: VerificationReport | Refusal) -> list[str]:
    """Every unsafe switch in force, once each, saying what it did.

    ``report.unsafe`` is the one list: the verifier puts the exporter's flags, a
    backdated or future ``--at`` and each unsafe option there. An exporter flag missing
    from it (a report built by hand) is still shown, once.
    """
    out = list(report.unsafe)
    if isinstance(report, VerificationReport):
        named = {u.split(":", 1)[0] for u in out}
        out += [
            f"{flag}: set by the exporter (recorded in the bundle)"
            for flag in report.bundle_flags
            if flag not in named
        ]
    return out


def unsafe_names(report: VerificationReport | Refusal) -> list[str]:
    """The short names of the unsafe switches (``--allow-rollback``, ``--at``...)."""
    names = [u.split(":", 1)[0].split(" ", 1)[0] for u in unsafe_switches(report)]
    return list(dict.fromkeys(names))


def headline(report: VerificationReport | Refusal) -> str:
    """The verdict as every report heads it: ``PASS``, ``PASS (UNSAFE: ...)``, ``FAIL``,
    ``FAIL (refused at step ...)``."""
    if isinstance(report, Refusal):
        return f"FAIL (refused at step {report.step})"
    if report.verdict == "UNSAFE-PASS":
        return f"PASS (UNSAFE: {', '.join(unsafe_names(report))})"
    return report.verdict


def predicate_kind(predicate_type: str) -> str | None:
    """The policy alias of a predicate type (``tests``, ``sbom``...), if it has one."""
    for alias, matches in ALIASES.items():
        if matches(predicate_type):
            return alias
    return None


def severity_rows(counts: dict[str, int] | None) -> list[tuple[str, int]]:
    """Severity counts in severity order (critical first), unknown severities last."""
    if counts is None:
        return []
    known = [(s, counts[s]) for s in SEVERITIES if s in counts]
    return known + sorted((s, n) for s, n in counts.items() if s not in SEVERITIES)


def sbom_counts(atts: Iterable[AttestationView]) -> list[tuple[str, int]]:
    """(predicate type, package count) of every attestation that counted packages."""
    return [(a.predicate_type, a.package_count) for a in atts if a.package_count is not None]


def human_size(size: int) -> str:
    """``1234567`` as ``1.2 MiB (1234567 bytes)``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit} ({size} bytes)"
        value /= 1024
    return f"{value:.1f} GiB ({size} bytes)"
