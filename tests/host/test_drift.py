"""What ``archive reverify`` calls drift, computed from a receipt and a new outcome."""

from __future__ import annotations

import dataclasses

from dhi_offline.host.session import drift, refusal_receipt
from dhi_offline.steps import Step
from dhi_offline.verify.bundle import receipt_for
from dhi_offline.verify.result import Check
from tests.report.fixtures import failing_report, passing_report, refusal_report


def test_same_outcome_no_drift() -> None:
    report = passing_report()
    assert drift(receipt_for(report), report) == ()


def test_pass_to_fail_lists_new_failures_violations_and_keys() -> None:
    before = passing_report()
    receipt = receipt_for(before)
    pinned = receipt["publisherKeys"]
    assert isinstance(pinned, list)
    receipt["publisherKeys"] = [["retired", "f" * 64], *pinned]
    after = failing_report()
    out = drift(receipt, after)
    assert out[0] == f"verdict {before.verdict} -> FAIL"
    assert any(d.startswith("newly failing: 6 attestation") for d in out)
    assert sum(d.startswith("new policy violation") for d in out) == 3
    assert any("retired" in d and "no longer pinned" in d for d in out)


def test_policy_change_and_refusal() -> None:
    report = passing_report()
    receipt = receipt_for(report)
    changed = dataclasses.replace(report, policy_sha256="1" * 64)
    assert any(d.startswith("policy changed") for d in drift(receipt, changed))
    refused = drift(receipt, refusal_report())
    assert refused == (
        "verdict PASS -> FAIL",
        f"refused now at step 4 rollback: {refusal_report().reason}",
    )
    failed_check = dataclasses.replace(
        report, checks=(*report.checks, Check(Step("4 consistency"), "log", "failed", "no link"))
    )
    assert "newly failing: 4 consistency: log: no link" in drift(receipt, failed_check)


def test_a_refusal_step_renamed_since_the_receipt_is_no_drift() -> None:
    refused = dataclasses.replace(refusal_report(), step=Step.BUNDLE_SIGNATURE)
    receipt = refusal_receipt(refused)
    assert drift(receipt, refused) == ()
    receipt["refused"] = {"step": "bundle signature", "reason": refused.reason}  # schema 1
    assert drift(receipt, refused) == ()
    receipt["refused"] = {"step": "bundle member", "reason": refused.reason}
    assert drift(receipt, refused) == (f"refused now at step 2 bundle signature: {refused.reason}",)
