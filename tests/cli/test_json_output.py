"""Every ``--format json`` document, on success and on failure, has exactly the fields
``docs/json-output.md`` lists for it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFORMANCE
from tests.report.test_json import _paths
from tests.support.sample import export_argv, make_sample_site, trust_argv
from tests.support.sample import run_cli as run
from tests.verify.test_conformance import conformance_argv

DOC = Path(__file__).resolve().parents[2] / "docs" / "json-output.md"
OPEN = {"[].checkpoints", "[].report", "receipt"}
"""Objects whose members are specified elsewhere (log ids; docs/report-schema.md)."""


def documented(title_start: str) -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    (section,) = [s for s in sections if s.startswith(f"`{title_start}")]
    return set(re.findall(r"^\| `([^`]+)` \|", section, re.M))


def paths(value: Any) -> set[str]:
    return _paths(value, open_objects=OPEN)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = make_sample_site(tmp_path, monkeypatch)
    assert run(export_argv(d, "good.dhi.tar.zst"))[0] == 0
    return d


def check(section: str, *docs: Any) -> None:
    found: set[str] = set()
    for doc in docs:
        found |= paths(doc)
    listed = documented(section)
    assert found - listed == set(), f"{section}: fields not in docs/json-output.md"
    assert listed - found == set(), f"{section}: documented fields no document has"


def json_of(argv: list[str], code: int) -> Any:
    got, out, err = run([*argv, "--format", "json"])
    assert got == code, err
    return json.loads(out)


def test_every_document_matches_its_section(site: Path) -> None:
    bundle = str(site / "good.dhi.tar.zst")
    archive = ["--archive", str(site / "a")]
    check("inspect", json_of(["inspect", bundle], 0))
    assert run(["trust", "distrust", "dhi-1"])[0] == 0
    assert run(["trust", "add", str(site / "exporter.pub"), "--role", "exporter"])[0] == 0
    check("trust list", json_of(["trust", "list"], 0))
    assert run(["import", bundle, *trust_argv(site), *archive])[0] == 0
    already = json_of(["import", bundle, *trust_argv(site), *archive], 0)
    check("import", already)
    check("archive list", json_of(["archive", "list", *archive], 0))
    ok = json_of(["archive", "verify", *archive, "--expect-head", already["head"]], 0)
    log = site / "a" / "log.jsonl"
    original = log.read_text()
    log.write_text(original.replace('"PASS"', '"FAIL"'))
    broken = json_of(["archive", "verify", *archive], 1)
    check("archive verify", ok, broken)
    log.write_text(original)
    check(
        "archive reverify", json_of(["archive", "reverify", "all", *archive, *trust_argv(site)], 0)
    )
    image = json_of(["inspect", bundle], 0)["images"][0]["digest"]
    good = json_of(["attest", "list", bundle, image, *trust_argv(site)], 0)
    only_exporter = ["--trust-exporter", str(site / "exporter.pub")]
    bad = json_of(["attest", "list", bundle, image, *only_exporter], 1)
    check("attest list", good, bad)
    check("doctor", json_of(["doctor"], 0))


def test_verify_bundle_documents() -> None:
    ok_argv = conformance_argv(CONFORMANCE / "managed-key-happy-path")
    fail_argv = conformance_argv(CONFORMANCE / "signature-mismatch_fail")
    docs = []
    for argv, code in ((ok_argv, 0), (fail_argv, 1)):
        got, out, err = run([*argv[:-1], "--format", "json", argv[-1]])
        assert got == code, err
        docs.append(json.loads(out))
    assert docs[0]["verified"] is True and docs[1]["verified"] is False
    check("sigstore verify-bundle", *docs)
