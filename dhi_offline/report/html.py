"""The audit page: one self-contained HTML file an auditor opens, prints or archives.

Self-contained means inline CSS, no script, and no resource loaded from anywhere: the
page renders the same on an air-gapped host years later. A Content-Security-Policy of
``default-src 'none'`` (inline styles only) backs that up, and also stops any script
that escaping might have missed.

Every string taken from the report goes through :func:`_e` (control characters made
visible, then :func:`html.escape` with quotes): predicate types, image references,
problems and messages come from evidence that is attacker-controlled until verified, and
a failed report is exactly the one about evidence that was not.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

from dhi_offline.report._common import (
    all_violations,
    check_counts,
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
from dhi_offline.verify.policy import Violation
from dhi_offline.verify.result import (
    AttestationView,
    Check,
    ImageView,
    PlatformView,
    Refusal,
    VerificationReport,
)

_CSS = """
:root { --ink:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#f4f6f9; --card:#fff;
  --pass:#11743b; --pass-bg:#e3f5ea; --fail:#b3261e; --fail-bg:#fdecea;
  --warn:#8a5a00; --warn-bg:#fff4d6; --skip:#5b6475; --skip-bg:#eceff4; }
* { box-sizing:border-box; }
html { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans",Arial,sans-serif; }
main { max-width:1200px; margin:0 auto; padding:0 24px 32px; }
code,.mono { font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;
  font-size:12.5px; word-break:break-all; }
.nowrap { white-space:nowrap; }
.banner { color:#fff; padding:22px 24px 18px; }
.banner.pass { background:var(--pass); } .banner.fail { background:var(--fail); }
.banner.unsafe { background:#9a4a00; }
.banner .inner { max-width:1200px; margin:0 auto; padding:0 24px; }
.banner .verdict { font-size:40px; font-weight:800; letter-spacing:.06em; line-height:1; }
.banner .reason { font-size:17px; margin-top:8px; overflow-wrap:anywhere; }
.banner .facts { margin-top:10px; font-size:13px; opacity:.92; overflow-wrap:anywhere; }
.banner .kicker { font-size:12px; text-transform:uppercase; letter-spacing:.12em; opacity:.85;
  margin-bottom:6px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:16px 20px; margin-top:18px; }
h2 { font-size:17px; margin:0 0 12px; }
h3 { font-size:15px; margin:18px 0 8px; }
h4 { font-size:12px; margin:0 0 6px; text-transform:uppercase; letter-spacing:.08em;
  color:var(--muted); }
.unsafe { background:var(--fail-bg); border:2px solid var(--fail); color:var(--fail); }
.unsafe h2 { color:var(--fail); font-size:19px; }
.unsafe li { font-weight:700; font-size:15px; }
.violations { border-left:6px solid var(--fail); }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:5px 18px; margin:0; }
dl.kv dt { color:var(--muted); font-weight:600; }
dl.kv dd { margin:0; overflow-wrap:anywhere; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:18px; }
.grid2 > section { margin-top:0; }
table { border-collapse:collapse; width:100%; }
th,td { text-align:left; vertical-align:top; padding:6px 8px; border-bottom:1px solid var(--line);
  overflow-wrap:break-word; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted);
  background:#f8f9fb; }
tr.bad td { background:var(--fail-bg); }
.pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:700;
  white-space:nowrap; }
.pill.passed,.pill.verified,.pill.inclusion-proof { background:var(--pass-bg); color:var(--pass); }
.pill.failed { background:var(--fail-bg); color:var(--fail); }
.pill.set-only { background:var(--warn-bg); color:var(--warn); }
.pill.skipped,.pill.absent { background:var(--skip-bg); color:var(--skip); }
.kind { display:inline-block; font-size:11px; font-weight:700; text-transform:uppercase;
  letter-spacing:.06em; color:var(--muted); }
.small { font-size:12px; color:var(--muted); }
.problem { color:var(--fail); font-weight:600; }
.image { border-top:4px solid #3b5bdb; }
.platform { border:1px solid var(--line); border-radius:6px; padding:12px 14px; margin-top:14px; }
.platform h3 { margin-top:0; }
.cards { display:grid; grid-template-columns:repeat(3,1fr); gap:12px; margin-top:12px; }
.card { border:1px solid var(--line); border-radius:6px; padding:10px 12px; background:#fbfcfd; }
.big { font-size:22px; font-weight:800; }
.big.pass { color:var(--pass); } .big.fail { color:var(--fail); } .big.skip { color:var(--skip); }
.counts span { margin-right:14px; }
.stats { display:flex; gap:22px; margin-bottom:6px; }
.stat { color:var(--muted); font-size:12px; }
ul.plain { margin:6px 0 0; padding-left:20px; }
ul.warn li { color:var(--warn); }
ul.bad li { color:var(--fail); font-weight:600; }
pre { background:#0f1420; color:#e6e9ef; padding:12px 14px; border-radius:6px; overflow:auto;
  font:12px/1.45 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace; white-space:pre-wrap;
  overflow-wrap:anywhere; }
footer { max-width:1200px; margin:0 auto; padding:8px 24px 28px; color:var(--muted);
  font-size:12px; }
@media (max-width:800px) { .grid2,.cards { grid-template-columns:1fr; } }
@media print { body { background:#fff; } section { break-inside:avoid; } }
"""


def _e(value: object) -> str:
    """Escape anything from the report for HTML text and attribute values."""
    return html.escape(clean(value), quote=True)


def _head(report: VerificationReport | Refusal, verdict_class: str) -> list[str]:
    name = report.bundle_path.rsplit("/", 1)[-1] or report.bundle_path
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(headline(report))}: dhi-offline verification of {_e(name)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f'<header class="banner {verdict_class}"><div class="inner">',
        '<div class="kicker">dhi-offline verification report</div>',
        f'<div class="verdict">{_e(headline(report))}</div>',
    ]


def _render_refusal(report: Refusal) -> str:
    p = report.progress
    rows = [
        ("path", _mono(report.bundle_path)),
        ("sha256", _mono(report.bundle_sha256)),
        ("size", _e(human_size(report.bundle_size))),
        ("refused at step", _e(report.step)),
        ("reason", _e(report.reason)),
        ("reference time", _e(fmt_time(report.reference_time))),
    ]
    if p.exporter_key_id is not None:
        rows += [
            ("exporter key", f"{_e(p.exporter_key_name)}<br>" + _mono(p.exporter_key_id)),
            ("sequence", _e(p.sequence)),
            ("created", _e(fmt_time(p.created) if p.created else "-")),
            ("expires", _e(fmt_time(p.expires) if p.expires else "-")),
        ]
    else:
        rows.append(("signature", "not verified: nothing in the bundle is trusted"))
    parts = [
        *_head(report, "fail"),
        f'<div class="reason">{_e(report.reason)}</div>',
        '<div class="facts">'
        f'bundle <span class="mono">{_e(report.bundle_sha256)}</span> · '
        f"reference time {_e(fmt_time(report.reference_time))} · verified: no</div>",
        "</div></header>",
        "<main>",
        _unsafe(report),
        "<section><h2>Bundle refused</h2><p>The bundle was refused as a whole before its "
        "evidence was read; nothing it claims was trusted.</p>" + _kv(rows) + "</section>",
        _receipt(report),
        "</main>",
        f"<footer>Generated by dhi-offline {_e(report.tool_version)} at reference time "
        f"{_e(fmt_time(report.reference_time))}.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(p for p in parts if p)


def render_html(report: VerificationReport | Refusal) -> str:
    """The audit page of ``report``: one HTML document with everything inline."""
    if isinstance(report, Refusal):
        return _render_refusal(report)
    verdict_class = {"PASS": "pass", "UNSAFE-PASS": "unsafe"}.get(report.verdict, "fail")
    parts = [
        *_head(report, verdict_class),
        f'<div class="reason">{_e(verdict_reason(report))}</div>',
        '<div class="facts">'
        f'bundle <span class="mono">{_e(report.bundle_sha256)}</span> · '
        f"reference time {_e(fmt_time(report.reference_time))} · "
        f"verified: {'yes' if report.verified else 'no'} · "
        f"policy: {'passed' if not report.violations else 'violated'}</div>",
        "</div></header>",
        "<main>",
        _unsafe(report),
        _violations_section(all_violations(report)),
        '<div class="grid2" style="margin-top:18px">',
        _bundle(report),
        _trust_and_policy(report),
        "</div>",
        *(_image(image) for image in report.images),
        _checks(report.checks),
        _list_section("Warnings", report.warnings, "warn"),
        _receipt(report),
        "</main>",
        f"<footer>Generated by dhi-offline {_e(report.tool_version)} at reference time "
        f"{_e(fmt_time(report.reference_time))}. Report schema in docs/report-schema.md; "
        "the JSON report carries the same data.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(p for p in parts if p)


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already escaped HTML."""
    inner = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="kv">{inner}</dl>'


def _mono(value: object) -> str:
    return f'<span class="mono">{_e(value)}</span>'


def _pill(status: str) -> str:
    return f'<span class="pill {_e(status)}">{_e(status)}</span>'


def _unsafe(report: VerificationReport | Refusal) -> str:
    switches = unsafe_switches(report)
    if not switches:
        return ""
    items = "".join(f"<li>{_e(s)}</li>" for s in switches)
    return (
        '<section class="unsafe"><h2>UNSAFE switches were in force</h2>'
        "<p>These switches weaken what this report proves; a PASS with them is not the "
        f"same as a PASS without.</p><ul>{items}</ul></section>"
    )


def _violations_table(violations: Iterable[Violation], *, where: bool = True) -> str:
    """A table of violations; ``where=False`` leaves out image and platform."""
    head = "<th>image</th><th>platform</th>" if where else ""
    rows = "".join(
        "<tr>"
        + (f"<td>{_e(v.image)}</td><td>{_e(v.platform)}</td>" if where else "")
        + f"<td>{_e(v.rule)}</td><td>{_mono(v.predicate)}</td><td>{_e(v.message)}</td></tr>"
        for v in violations
    )
    return f"<table><tr>{head}<th>rule</th><th>predicate</th><th>message</th></tr>{rows}</table>"


def _violations_section(violations: tuple[Violation, ...]) -> str:
    if not violations:
        return ""
    return (
        f'<section class="violations"><h2>Policy violations ({len(violations)})</h2>'
        f"{_violations_table(violations)}</section>"
    )


def _bundle(report: VerificationReport) -> str:
    return (
        "<section><h2>Bundle</h2>"
        + _kv(
            [
                ("path", _mono(report.bundle_path)),
                ("sha256", _mono(report.bundle_sha256)),
                ("size", _e(human_size(report.bundle_size))),
                ("format", f"version {_e(report.format_version)}"),
                ("exported by", f"dhi-offline {_e(report.exporter_tool_version)}"),
                ("sequence", _e(report.sequence)),
                ("created", _e(fmt_time(report.created))),
                ("expires", _e(fmt_time(report.expires))),
                (
                    "exporter key",
                    f"{_e(report.trust.exporter_key_name)}<br>"
                    + _mono(report.trust.exporter_key_id),
                ),
                ("flags", _e(", ".join(report.bundle_flags) or "none")),
                ("reference time", _e(fmt_time(report.reference_time))),
            ]
        )
        + "</section>"
    )


def _trust_and_policy(report: VerificationReport) -> str:
    keys = (
        "<br>".join(f"{_e(n)} {_mono(k)}" for n, k in report.trust.publisher_keys)
        or '<span class="problem">none</span>'
    )
    trust = _kv(
        [
            ("publisher keys", keys),
            ("trusted root", _e(report.trust.trusted_root)),
            ("trust bundle keys", "YES (unsafe)" if report.trust.trust_bundle_keys else "no"),
            ("allow rollback", "YES (unsafe)" if report.trust.allow_rollback else "no"),
        ]
    )
    if report.policy_name is None:
        policy = '<p class="problem">No policy was applied.</p>'
    else:
        rules = "".join(f"<li>{_e(r)}</li>" for r in report.policy_rules) or "<li>none</li>"
        policy = _kv(
            [
                ("name", _e(report.policy_name)),
                ("sha256", _mono(report.policy_sha256 or "-")),
                ("rules", f'<ul class="plain" style="margin:0">{rules}</ul>'),
            ]
        )
    return (
        f'<section><h2>Trust</h2>{trust}<h2 style="margin-top:16px">Policy</h2>{policy}</section>'
    )


def _image(image: ImageView) -> str:
    head = _kv(
        [
            ("digest", _mono(image.digest)),
            ("media type", _mono(image.media_type)),
            ("platforms", _e(len(image.platforms))),
        ]
    )
    platforms = "".join(_platform(p) for p in image.platforms)
    return f'<section class="image"><h2>Image {_e(image.reference)}</h2>{head}{platforms}</section>'


def _platform(platform: PlatformView) -> str:
    rows = "".join(_attestation_row(a) for a in platform.attestations) or (
        '<tr class="bad"><td colspan="6">no attestation</td></tr>'
    )
    table = (
        "<table><tr><th>attestation</th><th>layout</th><th>signer</th>"
        "<th>transparency log</th><th>signing times</th><th>result</th></tr>"
        f"{rows}</table>"
    )
    extra = ""
    if platform.violations:
        extra += (
            f'<h4 style="margin-top:14px">Policy violations ({len(platform.violations)})</h4>'
            + _violations_table(platform.violations, where=False)
        )
    if platform.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in platform.warnings)
        extra += f'<h4 style="margin-top:14px">Warnings</h4><ul class="plain warn">{items}</ul>'
    return (
        f'<div class="platform"><h3>{_e(platform.platform)} '
        f'<span class="small mono">{_e(platform.digest)}</span></h3>'
        f'{table}<div class="cards">{_tests_card(platform)}{_vulns_card(platform)}'
        f"{_sbom_card(platform)}</div>{extra}</div>"
    )


def _attestation_row(att: AttestationView) -> str:
    kind = predicate_kind(att.predicate_type)
    what = (f'<span class="kind">{_e(kind)}</span><br>' if kind else "") + (
        f'{_mono(att.predicate_type)}<br><span class="small mono">{_e(att.id)}</span>'
    )
    signer = _e(att.signer or "-")
    if att.key_id:
        signer += f'<br><span class="small mono">{_e(att.key_id)}</span>'
    log = _pill(att.tlog_status)
    if att.log_indexes:
        log += "<br>" + _e("index " + ", ".join(str(i) for i in att.log_indexes))
    times = "<br>".join(
        f'<span class="nowrap">{_e(fmt_time(t))}</span>' for t in att.signing_times
    ) or ('<span class="small">no verified time</span>')
    if att.verified:
        result = _pill("verified")
    else:
        result = (
            f'{_pill("failed")}<br><span class="problem">{_e(att.problem or "not verified")}</span>'
        )
    row_class = "" if att.verified else ' class="bad"'
    return (
        f"<tr{row_class}><td>{what}</td><td>{_e(att.layout)}</td>"
        f"<td>{signer}</td><td>{log}</td><td>{times}</td><td>{result}</td></tr>"
    )


def _tests_card(platform: PlatformView) -> str:
    tests = platform.tests
    if tests is None:
        return (
            '<div class="card"><h4>Tests</h4><p class="problem">no verified test report</p></div>'
        )
    failed = tests.get("failed", 0)
    stats = (
        ("passed", tests.get("passed", 0), "pass"),
        ("failed", failed, "fail" if failed else "skip"),
        ("skipped", tests.get("skipped", 0), "skip"),
    )
    blocks = "".join(
        f'<div class="stat"><div class="big {css}">{_e(n)}</div>{label}</div>'
        for label, n, css in stats
    )
    return (
        f'<div class="card"><h4>Tests</h4><div class="stats">{blocks}</div>'
        f'<div class="small">{_e(plural(tests.get("tests", 0), "test"))} in the signed CTRF '
        "report</div></div>"
    )


def _vulns_card(platform: PlatformView) -> str:
    if platform.vulnerabilities is None:
        return (
            '<div class="card"><h4>Vulnerabilities</h4>'
            '<p class="problem">no verified vulnerability report</p></div>'
        )
    before = platform.vulnerabilities_before_vex or {}
    rows = "".join(
        f"<tr><td>{_e(sev)}</td><td>{_e(before.get(sev, '-'))}</td><td><b>{_e(n)}</b></td></tr>"
        for sev, n in severity_rows(platform.vulnerabilities)
    )
    suppressed = (
        '<div class="small">suppressed by VEX: '
        + ", ".join(f'<span class="nowrap">{_e(i)}</span>' for i in platform.suppressed_by_vex)
        + "</div>"
        if platform.suppressed_by_vex
        else '<div class="small">nothing suppressed by VEX</div>'
    )
    return (
        '<div class="card"><h4>Vulnerabilities</h4><table><tr><th>severity</th>'
        f"<th>before VEX</th><th>after VEX</th></tr>{rows}</table>{suppressed}</div>"
    )


def _sbom_card(platform: PlatformView) -> str:
    counts = sbom_counts(platform.attestations)
    if not counts:
        return '<div class="card"><h4>SBOM</h4><p class="problem">no verified SBOM</p></div>'
    items = "".join(
        f'<div><span class="big">{_e(n)}</span> packages<br><span class="small mono">{_e(t)}'
        "</span></div>"
        for t, n in counts
    )
    return f'<div class="card"><h4>SBOM</h4>{items}</div>'


def _checks(checks: tuple[Check, ...]) -> str:
    counts = check_counts(checks)
    rows = "".join(_check_row(c) for c in checks)
    return (
        f"<section><h2>Checks ({len(checks)})</h2>"
        f'<p class="counts"><span>{_pill("passed")} {counts["passed"]}</span>'
        f"<span>{_pill('failed')} {counts['failed']}</span>"
        f"<span>{_pill('skipped')} {counts['skipped']}</span></p>"
        "<table><tr><th>status</th><th>step</th><th>check</th><th>image / platform</th>"
        f"<th>message</th></tr>{rows}</table></section>"
    )


def _check_row(check: Check) -> str:
    row_class = ' class="bad"' if check.status == "failed" else ""
    where = " ".join(p for p in (check.image, check.platform) if p)
    return (
        f'<tr{row_class}><td>{_pill(check.status)}</td><td class="nowrap">{_e(check.step)}</td>'
        f"<td>{_e(check.name)}</td><td>{_e(where)}</td><td>{_e(check.message)}</td></tr>"
    )


def _list_section(title: str, items: tuple[str, ...], css: str) -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{_e(i)}</li>" for i in items)
    return (
        f'<section><h2>{_e(title)} ({len(items)})</h2><ul class="plain {css}">{lis}</ul></section>'
    )


def _receipt(report: VerificationReport | Refusal) -> str:
    if report.receipt is None:
        return ""
    text = json.dumps(report.receipt, indent=2, sort_keys=True, ensure_ascii=True)
    return (
        "<section><h2>Archive receipt</h2>"
        '<p class="small">Recorded when the bundle was imported into the evidence archive.</p>'
        f"<pre>{html.escape(text, quote=False)}</pre></section>"
    )
