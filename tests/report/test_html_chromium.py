"""The audit page in a real browser: Debian's headless Chromium, no network.

Chromium loads the page from a file, dumps the DOM it built and takes a screenshot. The
test is skipped, saying why, when ``chromium`` is not installed (``apt-get install
chromium``; ``make system-deps`` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dhi_offline.report import render_html
from dhi_offline.verify.result import VerificationReport
from tests.report import fixtures as fx

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    return path


def _run(chromium: str, tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{page.stem}-{len(args)}"
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _page(tmp_path: Path, name: str, report: VerificationReport) -> Path:
    path = tmp_path / f"{name}.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


@pytest.mark.parametrize("which", ["passing", "failing"])
def test_dom_shows_verdict_and_bundle(
    chromium: str, tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    report: VerificationReport = request.getfixturevalue(which)
    proc = _run(chromium, tmp_path, _page(tmp_path, which, report), "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert f'<div class="verdict">{report.verdict}</div>' in dom
    assert f"<title>{report.verdict}: dhi-offline verification" in dom
    assert fx.BUNDLE_SHA256 in dom
    # the browser built no element from evidence: hostile text stayed text
    assert "<script" not in dom and "<img" not in dom
    if which == "failing":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
        assert "UNSAFE switches were in force" in dom


def test_screenshot(chromium: str, tmp_path: Path, failing: VerificationReport) -> None:
    png = tmp_path / "failing.png"
    proc = _run(
        chromium,
        tmp_path,
        _page(tmp_path, "failing", failing),
        f"--screenshot={png}",
        "--window-size=1280,2000",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000  # a rendered page, not a blank one
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
