"""The terminal report, read as a user reads it at 80 columns."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dhi_offline.report import render_text
from dhi_offline.verify.result import VerificationReport
from tests.report import fixtures as fx


def _render(report: VerificationReport, width: int = 80, *, color: bool = False) -> str:
    console = Console(
        width=width,
        record=True,
        file=io.StringIO(),
        force_terminal=color,
        color_system="standard" if color else None,
    )
    render_text(report, console)
    return console.export_text(styles=color)


def test_passing_verdict_first_and_facts(passing: VerificationReport) -> None:
    out = _render(passing)
    assert out.startswith("PASS")
    head = " ".join(out.split("\n\n")[0].split())  # the verdict line, wrapped at 80
    assert (
        head
        == "PASS verified: 17 of 18 checks passed, 1 skipped; policy 'dhi-default': no violation"
    )
    for expected in (
        fx.BUNDLE_SHA256,
        "sequence      42",
        "2026-08-30T09:12:44Z",
        "2026-09-29T09:12:44Z",
        "ops-exporter-2026",
        fx.EXPORTER,
        "dhi-2",
        "shipped: Sigstore public-good production",
        "dhi-default",
        "linux/amd64",
        "linux/arm64",
        "41 passed, 0 failed, 1 skipped (of 42)",
        "after VEX: critical 0, high 0, medium 1, low 5, unknown 0",
        "before VEX: critical 0, high 1, medium 2, low 5, unknown 0",
        "CVE-2025-4802",
        "88 packages",
        "89 packages",
        "Checks: 17 passed, 0 failed, 1 skipped",
        "evidence for linux/amd64 VEX is not in a transparency log",
    ):
        assert expected in out, expected
    assert "UNSAFE" not in out and "Policy violations" not in out


def test_tlog_status_and_indexes_shown(passing: VerificationReport) -> None:
    out = _render(passing)
    assert out.count("inclusion-proof") == 8
    assert out.count("set-only") == 1
    assert out.count("absent") == 1
    assert "#412000023" in out  # the set-only entry's log index


@pytest.mark.parametrize("width", [80, 100, 160])
def test_width_robust(passing: VerificationReport, failing: VerificationReport, width: int) -> None:
    for report in (passing, failing):
        out = _render(report, width)
        assert all(len(line) <= width for line in out.splitlines())
        # folded, never cut with an ellipsis: the whole sha256 is there once joined
        assert "…" not in out
        assert fx.BUNDLE_SHA256 in out.replace("\n", "").replace(" ", "")


def test_failing_verdict_reason_unsafe_and_violations(failing: VerificationReport) -> None:
    out = _render(failing)
    assert out.startswith("FAIL")
    head = " ".join(out.split("\n\n")[0].split())
    assert "1 of 18 checks failed" in head and "3 policy violations" in head
    assert "UNSAFE" in out
    assert "--trust-bundle-keys" in out
    assert "allow-unverified: set by the exporter" in out
    assert "FAILED:" in out
    assert "39 passed, 2 failed, 1 skipped" in out
    assert "no verified SBOM" in out
    assert "Policy violations (3)" in out
    flat = " ".join(out.split())
    for v in fx.FAILING_VIOLATIONS:
        assert " ".join(v.one_line().split()) in flat


def test_unsafe_in_bold_red(failing: VerificationReport) -> None:
    out = _render(failing, 120, color=True)
    line = next(line for line in out.splitlines() if "--trust-bundle-keys" in line)
    assert "\x1b[1;31m" in line  # bold red


def test_hostile_strings_are_inert(failing: VerificationReport) -> None:
    out = _render(failing, 120, color=True)
    # rich markup from evidence is printed literally, not interpreted
    assert "[bold green]PASS[/]" in out
    # terminal escapes from evidence are shown, never emitted
    assert "\\x1b[2J" in out and "\x1b[2J" not in out and "\x1b[1;1H" not in out
    assert fx.HOSTILE_PREDICATE in _render(failing, 120)
