"""The audit page: everything an auditor checks is on it, escaped, with nothing loaded."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from dhi_offline.report import render_html
from dhi_offline.verify.result import VerificationReport
from tests.report import fixtures as fx

# Every element the page may use: no script, img, link, iframe, object, form...
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "section",
    "div", "span", "h2", "h3", "h4", "p", "ul", "li", "dl", "dt", "dd", "table", "tr", "th",
    "td", "b", "br", "pre",
}  # fmt: skip
INLINE_TAGS = {"span", "b"}


class _Page(HTMLParser):
    """Tags, attributes and text of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]
        self._style = tag == "style"
        if tag not in INLINE_TAGS:
            self.text.append(" ")  # a block or cell boundary separates words

    def handle_endtag(self, tag: str) -> None:
        self._style = False
        if tag not in INLINE_TAGS:
            self.text.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._style:
            self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _text(page: str) -> str:
    return " ".join("".join(_parse(page).text).split())


def test_passing_page_shows_what_an_auditor_checks(passing: VerificationReport) -> None:
    page = render_html(passing)
    assert (
        "<title>PASS: dhi-offline verification of python-3.13-2026-08-30.dhi.tar.zst</title>"
        in page
    )
    assert '<header class="banner pass">' in page
    text = _text(page)
    for expected in (
        "PASS verified: 17 of 18 checks passed, 1 skipped; policy 'dhi-default': no violation",
        fx.BUNDLE_SHA256,
        "3.3 MiB (3481207 bytes)",
        "sequence 42",
        "created 2026-08-30T09:12:44Z",
        "expires 2026-09-29T09:12:44Z",
        "reference time 2026-08-31T07:00:00Z",
        f"exporter key ops-exporter-2026 {fx.EXPORTER}",
        f"dhi-2 {fx.DHI2}",
        f"sha256 {fx.POLICY_SHA256}",
        "at most 0 critical vulnerabilities",
        f"linux/amd64 {fx.AMD64}",
        f"linux/arm64 {fx.ARM64}",
        fx.TESTS,
        fx.SBOM,
        fx.PROVENANCE,
        fx.VULNS,
        fx.VEX,
        "set-only index 412000023",
        "inclusion-proof index 412000011",
        "absent no verified time",
        "2026-08-29T22:14:05Z",
        "41 passed 0 failed 1 skipped 42 tests in the signed CTRF report",
        "high 1 0",  # before and after VEX
        "suppressed by VEX: CVE-2025-4802, CVE-2026-1128",
        "88 packages",
        "89 packages",
        "CTRF: results.summary.start is in seconds, not milliseconds",
        "Checks (18)",
        "format version 1: zstd frame, tar headers, manifest",
        "Archive receipt",
    ):
        assert expected in text, expected
    assert "UNSAFE" not in text and "Policy violations" not in text
    receipt = re.search(r"<pre>(.*?)</pre>", page, re.S)
    assert receipt is not None
    assert json.loads(_text(receipt.group(0))) == passing.receipt
    assert '\n  "sequence": 42,' in receipt.group(1)  # pretty-printed


def test_failing_page(failing: VerificationReport) -> None:
    page = render_html(failing)
    assert page.count("<title>FAIL: ") == 1 and '<header class="banner fail">' in page
    text = _text(page)
    assert "FAIL 1 of 18 checks failed" in text and "3 policy violations" in text
    assert "UNSAFE switches were in force" in text
    assert "--trust-bundle-keys" in text
    assert "allow-unverified: set by the exporter (recorded in the bundle)" in text
    assert "Policy violations (3)" in text and "Policy violations (2)" in text
    for v in fx.FAILING_VIOLATIONS:
        assert v.message in text
    assert "39 passed 2 failed 1 skipped" in text
    assert "no verified SBOM" in text
    assert "Archive receipt" not in text  # not archived
    assert page.index("UNSAFE switches") < page.index("<h2>Bundle</h2>")  # prominent


def test_hostile_strings_are_escaped(failing: VerificationReport) -> None:
    page = render_html(failing)
    assert fx.HOSTILE_PREDICATE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    parsed = _parse(page)
    assert set(parsed.tags) <= ALLOWED_TAGS
    assert not [k for k, _ in parsed.attrs if k.startswith("on")]
    text = "".join(parsed.text)
    # shown to the auditor as text, exactly, with terminal escapes made visible
    assert fx.HOSTILE_PREDICATE in text and fx.HOSTILE_PROBLEM in text
    assert "[bold green]PASS[/] \\x1b[2J" in text and "\x1b" not in page


def test_receipt_is_escaped(failing: VerificationReport) -> None:
    page = render_html(failing.with_receipt({"note": "</pre><script>alert(3)</script>"}))
    assert "<script" not in page and "&lt;/pre&gt;&lt;script&gt;alert(3)" in page


@pytest.mark.parametrize("which", ["passing", "failing"])
def test_self_contained(which: str, request: pytest.FixtureRequest) -> None:
    page = render_html(request.getfixturevalue(which))
    lower = page.lower()
    for needle in ("<link", "<script", "<img", "<iframe", "<object", "<embed", "@import", "url("):
        assert needle not in lower, needle
    assert not re.search(r"""(src|href|action|srcset|poster|data)\s*=\s*["']?\s*\w+:""", lower)
    parsed = _parse(page)
    assert not [v for _, v in parsed.attrs if "http" in v.lower() or "//" in v]
    assert "default-src 'none'" in page  # and a CSP that blocks any load the page might make
    assert page.count("<style>") == 1 and page.startswith("<!DOCTYPE html>")
