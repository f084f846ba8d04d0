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

from dhi_offline.report.ctrf import render_ctrf
from dhi_offline.report.html import render_html
from dhi_offline.report.jsonreport import render_json
from dhi_offline.report.text import render_text

__all__ = ["render_ctrf", "render_html", "render_json", "render_text"]
