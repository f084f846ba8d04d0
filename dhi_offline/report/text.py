"""The terminal report: verdict first, then the bundle, trust, and the evidence per platform.

Every string from the report goes into a :class:`rich.text.Text` (never through rich
markup) after :func:`~dhi_offline.report._common.clean`, so evidence can neither inject
markup such as ``[green]PASS`` nor terminal escape sequences. Long values (digests,
predicate types) fold instead of being cut, so nothing is hidden at 80 columns.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from dhi_offline.report._common import (
    all_violations,
    check_counts,
    check_label,
    clean,
    fmt_time,
    headline,
    human_size,
    plural,
    predicate_kind,
    sbom_counts,
    severity_rows,
    unsafe_switches,
    verdict_reason,
)
from dhi_offline.verify.result import (
    AttestationView,
    ImageView,
    PlatformView,
    Refusal,
    VerificationReport,
)

_TLOG_STYLE = {"inclusion-proof": "green", "set-only": "yellow", "absent": "dim"}


def render_text(report: VerificationReport | Refusal, console: Console) -> None:
    """Write the human-readable report of ``report`` to ``console``.

    Order: the verdict line with its reason; the bundle; trust (with unsafe switches in
    bold red); the policy; per image and platform a table of its attestations and what
    the evidence shows (tests, CVEs before and after VEX, SBOM packages); the checks;
    every policy violation on one line; warnings. A :class:`Refusal` gets the verdict
    line, the step and reason, and what was established before the refusal.
    """
    if isinstance(report, Refusal):
        _refusal(report, console)
        return
    style = "bold green" if report.verdict == "PASS" else "bold red"
    console.print(
        Text.assemble((headline(report), style), "  ", (clean(verdict_reason(report)), style)),
        highlight=False,
    )
    _section(console, "Bundle")
    _pairs(
        console,
        [
            ("path", Text(clean(report.bundle_path))),
            ("sha256", Text(clean(report.bundle_sha256))),
            ("size", Text(human_size(report.bundle_size))),
            (
                "format",
                Text(
                    f"v{report.format_version}, exported by "
                    f"dhi-offline {clean(report.exporter_tool_version)}"
                ),
            ),
            ("sequence", Text(str(report.sequence))),
            ("created", Text(fmt_time(report.created))),
            ("expires", Text(fmt_time(report.expires))),
            (
                "exporter key",
                Text(
                    f"{clean(report.trust.exporter_key_name)} {clean(report.trust.exporter_key_id)}"
                ),
            ),
        ],
    )
    _section(console, "Trust")
    keys = Text("\n".join(f"{clean(n)} {clean(k)}" for n, k in report.trust.publisher_keys))
    rows: list[tuple[str, Text]] = [
        ("publisher keys", keys if keys.plain else Text("none", style="red")),
        ("trusted root", Text(clean(report.trust.trusted_root))),
        ("reference time", Text(fmt_time(report.reference_time))),
    ]
    unsafe = unsafe_switches(report)
    if unsafe:
        rows.append(("UNSAFE", Text("\n".join(clean(u) for u in unsafe), style="bold red")))
    _pairs(console, rows)
    _section(console, "Policy")
    if report.policy_name is None:
        console.print(Text("  no policy applied", style="yellow"))
    else:
        _pairs(
            console,
            [
                ("name", Text(clean(report.policy_name))),
                ("sha256", Text(clean(report.policy_sha256 or "-"))),
                ("rules", Text("\n".join(clean(r) for r in report.policy_rules) or "-")),
            ],
        )
    for image in report.images:
        _image(console, image)
    _checks(console, report)
    violations = all_violations(report)
    if violations:
        _section(console, f"Policy violations ({len(violations)})", style="bold red")
        for v in violations:
            console.print(Padding(Text(clean(v.one_line()), style="red"), (0, 0, 0, 2)))
    if report.warnings:
        _section(console, f"Warnings ({len(report.warnings)})", style="bold yellow")
        for w in report.warnings:
            console.print(Padding(Text(clean(w), style="yellow"), (0, 0, 0, 2)))
    if report.notes:
        _section(console, f"Notes ({len(report.notes)}, information only)", style="dim")
        for n in report.notes:
            console.print(Padding(Text(clean(n), style="dim"), (0, 0, 0, 2)))


def _refusal(report: Refusal, console: Console) -> None:
    console.print(
        Text.assemble((headline(report), "bold red"), "  ", (clean(report.reason), "bold red")),
        highlight=False,
    )
    _section(console, "Bundle")
    p = report.progress
    rows: list[tuple[str, Text]] = [
        ("path", Text(clean(report.bundle_path))),
        ("sha256", Text(clean(report.bundle_sha256))),
        ("size", Text(human_size(report.bundle_size))),
        ("refused at", Text(clean(report.step), style="bold red")),
        ("reason", Text(clean(report.reason))),
        ("reference time", Text(fmt_time(report.reference_time))),
    ]
    if p.exporter_key_id is not None:
        rows += [
            ("exporter key", Text(f"{clean(p.exporter_key_name)} {clean(p.exporter_key_id)}")),
            ("sequence", Text(str(p.sequence))),
            ("created", Text(fmt_time(p.created) if p.created else "-")),
            ("expires", Text(fmt_time(p.expires) if p.expires else "-")),
        ]
    else:
        rows.append(("signature", Text("not verified: nothing in the bundle is trusted")))
    if report.unsafe:
        rows.append(("UNSAFE", Text("\n".join(clean(u) for u in report.unsafe), style="bold red")))
    if report.receipt is not None:
        rows.append(("recorded", Text(f"archive log #{report.receipt.get('logIndex')} (refusal)")))
    _pairs(console, rows)


def _section(console: Console, title: str, *, style: str = "bold") -> None:
    console.print()
    console.print(Text(title, style=style), highlight=False)


def _pairs(console: Console, rows: list[tuple[str, Text]]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(Text("  " + key, style="bold red" if key == "UNSAFE" else "bold"), value)
    console.print(grid)


def _image(console: Console, image: ImageView) -> None:
    _section(console, f"Image {clean(image.reference)}")
    _pairs(
        console,
        [
            ("digest", Text(clean(image.digest))),
            ("media type", Text(clean(image.media_type))),
        ],
    )
    for platform in image.platforms:
        _platform(console, platform)


def _platform(console: Console, platform: PlatformView) -> None:
    console.print()
    console.print(
        Padding(
            Text.assemble(
                (clean(platform.platform), "bold cyan"), " ", (clean(platform.digest), "dim")
            ),
            (0, 0, 0, 2),
        ),
        highlight=False,
    )
    # On a terminal the table fills the width and folds long values; on a wide console
    # (a file or a pipe) it keeps each value whole on its line.
    wide = console.width > 200
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=not wide, show_edge=False)
    table.add_column("attestation", overflow="fold", ratio=None if wide else 5)
    table.add_column("signature", overflow="fold", width=None if wide else 16)
    table.add_column("log", width=None if wide else 15, no_wrap=True)
    table.add_column("result", overflow="fold", ratio=None if wide else 3, min_width=8)
    for att in platform.attestations:
        table.add_row(*_attestation_row(att))
    if not platform.attestations:
        table.add_row(Text("no attestation", style="red"), "", "", "")
    console.print(Padding(table, (0, 0, 0, 2)))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for key, value in _platform_facts(platform):
        grid.add_row(key, value)
    for w in platform.warnings:
        grid.add_row(Text("warning", style="bold yellow"), Text(clean(w), style="yellow"))
    console.print(Padding(grid, (0, 0, 0, 2)))


def _attestation_row(att: AttestationView) -> list[Text]:
    kind = predicate_kind(att.predicate_type)
    what = Text(clean(att.predicate_type))
    if kind:
        what = Text.assemble((kind, "bold"), "\n", what)
    signer = Text(clean(att.signer or "unsigned"))
    if att.key_id:
        signer.append(" " + clean(att.key_id[:8]), style="dim")
    signer.append("\n" + clean(att.layout), style="dim")
    tlog = Text(clean(att.tlog_status), style=_TLOG_STYLE.get(att.tlog_status, ""))
    for index in att.log_indexes:
        tlog.append(f"\n#{index}", style="dim")
    if att.verified:
        result = Text("verified", style="green")
    else:
        result = Text("FAILED: " + clean(att.problem or "not verified"), style="bold red")
    return [what, signer, tlog, result]


def _platform_facts(platform: PlatformView) -> list[tuple[str, Text]]:
    out: list[tuple[str, Text]] = []
    tests = platform.tests
    if tests is not None:
        failed = tests.get("failed", 0)
        out.append(
            (
                "tests",
                Text(
                    f"{tests.get('passed', 0)} passed, {failed} failed, "
                    f"{tests.get('skipped', 0)} skipped (of {tests.get('tests', 0)})",
                    style="red" if failed else "green",
                ),
            )
        )
    else:
        out.append(("tests", Text("no verified test report", style="yellow")))
    if platform.vulnerabilities is not None:
        after = ", ".join(f"{clean(s)} {n}" for s, n in severity_rows(platform.vulnerabilities))
        line = Text(after)
        if platform.vulnerabilities_before_vex is not None:
            before = ", ".join(
                f"{clean(s)} {n}" for s, n in severity_rows(platform.vulnerabilities_before_vex)
            )
            line.append(f"\nbefore VEX: {before}", style="dim")
        if platform.suppressed_by_vex:
            line.append(
                "\nsuppressed by VEX: " + ", ".join(clean(i) for i in platform.suppressed_by_vex),
                style="dim",
            )
        out.append(("CVEs", Text("after VEX: ").append_text(line)))
    else:
        out.append(("CVEs", Text("no verified vulnerability report", style="yellow")))
    sboms = sbom_counts(platform.attestations)
    if sboms:
        out.append(
            (
                "SBOM",
                Text(
                    "; ".join(f"{plural(n, 'package')} ({clean(t)})" for t, n in sboms),
                ),
            )
        )
    else:
        out.append(("SBOM", Text("no verified SBOM", style="yellow")))
    if platform.violations:
        out.append(
            (
                "policy",
                Text(
                    plural(len(platform.violations), "violation") + " (listed below)", style="red"
                ),
            )
        )
    else:
        out.append(("policy", Text("no violation", style="green")))
    return out


def _checks(console: Console, report: VerificationReport) -> None:
    counts = check_counts(report.checks)
    _section(
        console,
        f"Checks: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped",
        style="bold red" if counts["failed"] else "bold",
    )
    for check in report.checks:
        if check.status == "passed":
            continue
        style = "red" if check.status == "failed" else "dim"
        text = f"{check.status}: {check_label(check)}"
        if check.message:
            text += f": {check.message}"
        console.print(Padding(Text(clean(text), style=style), (0, 0, 0, 2)), highlight=False)
