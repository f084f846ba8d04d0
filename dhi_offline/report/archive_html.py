"""A self-contained HTML summary of the evidence archive, for the auditor: when and by
which version it was generated, the archive path and head, and for every attempt its
verdict with the root cause of a FAIL (refusal step, failed checks, violations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from dhi_offline.archive.store import LogLine
from dhi_offline.report._common import clean

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #d0d7de;padding:.4rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}.PASS{color:#116329;font-weight:bold}.FAIL{color:#a40e26;font-weight:bold}
.UNSAFE-PASS{color:#9a4a00;font-weight:bold}code{overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}
pre{white-space:pre-wrap;font-size:.8rem;background:#f6f8fa;padding:.5rem}
ul{margin:.2rem 0;padding-left:1.2rem}
"""


@dataclass(frozen=True)
class ArchivePage:
    """What the page says about itself and the archive."""

    archive: str
    head: str
    generated: str
    tool_version: str


def _e(value: object) -> str:
    return escape(clean(value), quote=True)


def root_cause(receipt: dict[str, Any]) -> list[str]:
    """Why an attempt failed: the refusal step, else failed checks, then violations."""
    refused = receipt.get("refused")
    if isinstance(refused, dict):
        return [f"refused at {refused.get('step')}: {refused.get('reason')}"]
    out = [f"failed: {c}" for c in receipt.get("failedChecks") or []]
    out += [f"violation: {v}" for v in receipt.get("violations") or []]
    return out


def render_archive_html(
    page: ArchivePage, lines: Sequence[LogLine], receipts: Sequence[dict[str, Any]]
) -> str:
    """One HTML page: the archive's facts, then a row per attempt with its receipt."""
    rows = []
    for line, receipt in zip(lines, receipts, strict=True):
        images = "<br>".join(_e(i.get("reference", "")) for i in receipt.get("images", []))
        cause = root_cause(receipt) if not line.accepted else []
        unsafe = [f"UNSAFE: {u}" for u in receipt.get("unsafe") or []]
        notes = "".join(f"<li>{_e(c)}</li>" for c in [*cause, *unsafe])
        receipt_text = escape(json.dumps(receipt, indent=1, sort_keys=True, ensure_ascii=True))
        rows.append(
            f"<tr><td>{line.index}</td><td>{_e(line.time)}</td>"
            f"<td class='{_e(line.verdict)}'>{_e(line.verdict)}</td><td>{images or '-'}</td>"
            f"<td>{f'<ul>{notes}</ul>' if notes else ''}</td>"
            f"<td><code>{_e(line.bundle)}</code></td>"
            f"<td><details><summary>receipt</summary><pre>{receipt_text}</pre></details></td></tr>"
        )
    facts = "".join(
        f"<dt>{k}</dt><dd>{v}</dd>"
        for k, v in (
            ("archive", f"<code>{_e(page.archive)}</code>"),
            ("head", f"<code>{_e(page.head)}</code>"),
            ("attempts", str(len(lines))),
            ("generated", _e(page.generated)),
            ("by", f"dhi-offline {_e(page.tool_version)}"),
        )
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>dhi-offline evidence archive: {len(lines)} attempt(s)</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Evidence archive</h1><dl>{facts}</dl>"
        "<p>The hash chain, every receipt and every kept bundle were verified when this page "
        "was generated. Compare the head with one recorded elsewhere "
        "(<code>dhi-offline archive verify --expect-head INDEX:HASH</code>): lines removed "
        "from the end are detected only that way.</p>"
        "<table><tr><th>#</th><th>time</th><th>verdict</th><th>images</th>"
        "<th>root cause</th><th>bundle sha256</th><th>receipt</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
