"""The machine-readable report: ``VerificationReport.to_json()`` as stable JSON.

The schema (version :data:`~dhi_offline.verify.result.REPORT_SCHEMA_VERSION`) is
documented field by field in ``docs/report-schema.md``.
"""

from __future__ import annotations

import json

from dhi_offline.verify.result import Refusal, VerificationReport


def render_json(report: VerificationReport | Refusal) -> str:
    """The JSON report: indented, keys sorted, so two runs on the same input are equal."""
    return json.dumps(report.to_json(), indent=2, sort_keys=True)
