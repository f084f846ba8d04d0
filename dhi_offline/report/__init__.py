"""Renderers of a :class:`~dhi_offline.verify.result.VerificationReport`.

Each renderer takes the finished report and returns a string (or writes to the rich
console it is given); none of them prints on its own or decides anything. The formats:

- :func:`render_text`: the terminal summary (rich);
- :func:`render_json`: the machine-readable report (``docs/report-schema.md``);
- :func:`render_ctrf`: the verification run as a CTRF test report, for CI dashboards;
- :func:`render_html`: one self-contained HTML page for an auditor.

Everything in a report that came from the bundle is attacker-controlled until verified
(and a failed report is exactly the one that was not): every renderer escapes it for its
own medium (terminal control codes and rich markup, HTML).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhi_offline.report.ctrf import render_ctrf
    from dhi_offline.report.html import render_html
    from dhi_offline.report.jsonreport import render_json
    from dhi_offline.report.text import render_text

__all__ = ["render_ctrf", "render_html", "render_json", "render_text"]

# Each renderer is imported when first used: a JSON report must not load rich (the text
# renderer) nor the HTML page's code at start-up (tests/cli/test_startup.py).
_MODULES = {
    "render_ctrf": "ctrf",
    "render_html": "html",
    "render_json": "jsonreport",
    "render_text": "text",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
