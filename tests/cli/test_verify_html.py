"""``verify`` renders the HTML report only when ``--html`` asks for it.

Rendering it regardless cost time and memory in proportion to the attestations: on a
bundle of 40,000 it is a page of tens of megabytes built and thrown away.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dhi_offline.report import html as html_report
from dhi_offline.report.html import render_html
from dhi_offline.verify.result import Outcome
from tests.support.sample import PRODUCTION_ROOT, export_argv, make_sample_site, run_cli


def test_verify_renders_html_only_with_html_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run_cli(export_argv(d, "b.dhi.tar.zst"))
    assert code == 0, err
    rendered: list[str] = []

    def counting(outcome: Outcome) -> str:
        page = render_html(outcome)
        rendered.append(page)
        return page

    # cli/verify.py imports the renderer where it renders (start-up): patched at its source.
    monkeypatch.setattr(html_report, "render_html", counting)
    argv = [
        "verify",
        str(d / "b.dhi.tar.zst"),
        "--trust-exporter",
        str(d / "exporter.pub"),
        "--trust-publisher",
        str(d / "publisher.pub"),
        "--trusted-root",
        str(PRODUCTION_ROOT),
        "--format",
        "json",
    ]
    code, out, err = run_cli(argv)
    assert code == 0, err
    assert '"verdict"' in out
    assert rendered == []

    page = tmp_path / "r.html"
    code, _, err = run_cli([*argv, "--html", str(page)])
    assert code == 0, err
    assert len(rendered) == 1
    assert page.read_text(encoding="utf-8") == rendered[0]
