"""Reports of a bundle refused at steps 1-4: every format says FAIL, the step and the
reason, shows what was established, and escapes the (unverified) reason."""

from __future__ import annotations

import io
import json

from rich.console import Console

from dhi_offline.report import render_ctrf, render_html, render_json, render_text
from dhi_offline.verify.result import Refusal


def _text(report: Refusal) -> str:
    buf = io.StringIO()
    render_text(report, Console(file=buf, width=100, color_system=None))
    return buf.getvalue()


def test_json_refusal_shape(refused: Refusal) -> None:
    doc = json.loads(render_json(refused))
    assert doc["verdict"] == "FAIL" and doc["verified"] is False
    assert doc["refusal"] == {"step": "4 rollback", "reason": refused.reason}
    assert doc["bundle"]["signatureVerified"] is True and doc["bundle"]["sequence"] == 41
    assert doc["trust"]["exporterKeyId"] == "ab" * 32
    assert [c["status"] for c in doc["checks"]] == ["failed"]


def test_unsigned_refusal_claims_nothing_from_the_bundle(refused_unsigned: Refusal) -> None:
    doc = json.loads(render_json(refused_unsigned))
    assert doc["bundle"]["signatureVerified"] is False
    assert doc["bundle"]["sequence"] is None and doc["trust"]["exporterKeyId"] is None
    out = _text(refused_unsigned)
    assert out.startswith("FAIL (refused at step 2 bundle signature)")
    assert "\x1b" not in out and "\\x1b[2J" in out
    assert "not verified: nothing in the bundle is trusted" in out


def test_html_refusal_escapes_the_reason(refused_unsigned: Refusal) -> None:
    page = render_html(refused_unsigned)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "FAIL (refused at step 2 bundle signature)" in page


def test_ctrf_refusal_is_one_failed_test(refused: Refusal) -> None:
    doc = json.loads(render_ctrf(refused))
    tests = doc["results"]["tests"]
    assert len(tests) == 1 and tests[0]["status"] == "failed"
    assert tests[0]["name"] == "4 rollback: bundle refused"
    assert doc["results"]["extra"]["refused"] is True
