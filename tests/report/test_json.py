"""The JSON report and its documentation (docs/report-schema.md) stay in step."""

from __future__ import annotations

import json
import re
from collections.abc import Set
from pathlib import Path
from typing import Any

from dhi_offline.report import render_json
from dhi_offline.verify.result import REPORT_SCHEMA_VERSION, VerificationReport
from tests.report import fixtures as fx
from tests.report.fixtures import passing_report

DOC = Path(__file__).parents[2] / "docs" / "report-schema.md"
# Objects whose keys are data (counts by name or severity, the archive's receipt), not schema.
OPEN_OBJECTS = {
    "receipt",
    "images[].platforms[].tests",
    "images[].platforms[].vulnerabilitiesBeforeVex",
    "images[].platforms[].vulnerabilities",
    "images[].platforms[].attestations[].tests",
}


def _paths(value: Any, prefix: str = "", open_objects: Set[str] = OPEN_OBJECTS) -> set[str]:
    """Every field path of a JSON document (``a.b``, ``a[].c``), not descending into
    ``open_objects`` (objects whose members are specified elsewhere)."""
    out: set[str] = set()
    if prefix in open_objects:
        return out
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            out |= _paths(child, path, open_objects)
    elif isinstance(value, list):
        for child in value:
            out |= _paths(child, prefix + "[]", open_objects)
    return out


def test_render_json_is_to_json_sorted(
    passing: VerificationReport, failing: VerificationReport
) -> None:
    for report in (passing, failing):
        text = render_json(report)
        assert json.loads(text) == report.to_json()
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)


def test_what_a_user_checks(passing: VerificationReport, failing: VerificationReport) -> None:
    ok = json.loads(render_json(passing))
    assert ok["schemaVersion"] == REPORT_SCHEMA_VERSION == 2
    assert (ok["verdict"], ok["verified"], ok["policyPassed"]) == ("PASS", True, True)
    assert ok["bundle"]["sha256"] == fx.BUNDLE_SHA256
    platforms = ok["images"][0]["platforms"]
    assert [p["platform"] for p in platforms] == ["linux/amd64", "linux/arm64"]
    tlogs = [a["tlog"] for p in platforms for a in p["attestations"]]
    assert sorted(set(tlogs)) == ["absent", "inclusion-proof", "set-only"]
    assert platforms[0]["vulnerabilities"]["high"] == 0
    assert platforms[0]["vulnerabilitiesBeforeVex"]["high"] == 1

    bad = json.loads(render_json(failing))
    assert (bad["verdict"], bad["verified"], bad["policyPassed"]) == ("FAIL", False, False)
    assert bad["unsafe"] == ["--trust-bundle-keys"] and bad["trust"]["trustBundleKeys"]
    assert bad["bundle"]["flags"] == ["allow-unverified"]
    assert len(bad["violations"]) == 3
    assert {"image", "platform", "predicate", "rule", "message"} == set(bad["violations"][0])
    hostile = bad["images"][0]["platforms"][0]["attestations"][-1]
    assert hostile["predicateType"] == fx.HOSTILE_PREDICATE and hostile["verified"] is False


def test_doc_example_is_the_fixture_output() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    assert blocks, "docs/report-schema.md has no ```json example"
    assert blocks[-1].rstrip("\n") == render_json(passing_report()), (
        "regenerate the example: .venv/bin/python -m tests.report.fixtures"
    )


def test_every_field_is_documented(
    passing: VerificationReport, failing: VerificationReport
) -> None:
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOC.read_text(encoding="utf-8"), re.M))
    fields = _paths(passing.to_json()) | _paths(failing.to_json())
    # platform violations have the shape of violations[], documented once
    fields = {f.replace("images[].platforms[].violations[].", "violations[].") for f in fields}
    assert fields - documented == set(), "fields missing from docs/report-schema.md"
    assert documented - fields == set(), "documented fields that the report no longer has"
