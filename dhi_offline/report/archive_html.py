"""A self-contained HTML summary of the evidence archive (every import and its receipt)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from dhi_offline.archive.store import LogLine

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #d0d7de;padding:.4rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}.PASS{color:#116329;font-weight:bold}.FAIL{color:#a40e26;font-weight:bold}
pre{white-space:pre-wrap;font-size:.8rem;background:#f6f8fa;padding:.5rem}
"""


def render_archive_html(lines: Sequence[LogLine], receipts: Sequence[dict[str, Any]]) -> str:
    """One HTML page: a table of imports, each with its receipt."""
    rows = []
    for line, receipt in zip(lines, receipts, strict=True):
        images = "<br>".join(escape(str(i.get("reference", ""))) for i in receipt.get("images", []))
        rows.append(
            f"<tr><td>{line.index}</td><td>{escape(line.time)}</td>"
            f"<td class='{escape(line.verdict)}'>{escape(line.verdict)}</td><td>{images}</td>"
            f"<td><code>{escape(line.bundle)}</code></td>"
            f"<td><details><summary>receipt</summary><pre>{escape(json.dumps(receipt, indent=1, sort_keys=True))}</pre></details></td></tr>"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>dhi-offline evidence archive: {len(lines)} import(s)</title><style>{_CSS}</style></head><body>"
        f"<h1>Evidence archive</h1><p>{len(lines)} import(s); the hash chain, receipts and bundles "
        "were verified when this page was written.</p>"
        "<table><tr><th>#</th><th>time</th><th>verdict</th><th>images</th><th>bundle sha256</th><th>receipt</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
