"""The CTRF report validates with the reference validator of the ``ctrf`` npm package.

The package (pinned in ``tests/report/js/package.json`` and ``package-lock.json``,
``ctrf`` 0.3.0) exports ``validate(report) -> {valid, errors}`` (ajv against its bundled
CTRF schema for specVersion 0.0.0); ``tests/report/js/validate.mjs`` calls it on files.
It is installed with ``npm ci`` into ``tests/report/js/node_modules`` the first time, and
the test is skipped, saying why, when node or npm is missing or the install fails.

The same documents are also checked in Python with ``jsonschema`` against the copy of
the schema in ``tests/report/data/`` when that module is installed (it is not a
dependency of dhi-offline).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.report import render_ctrf
from dhi_offline.report.ctrf import render_ctrf_note
from dhi_offline.verify.result import Refusal, VerificationReport

HERE = Path(__file__).parent
JS = HERE / "js"
SCHEMA = HERE / "data" / "ctrf-schema-0.0.json"


def _invalid_copy(report: VerificationReport) -> dict[str, Any]:
    """A rendered report broken the way a sloppy producer breaks it."""
    doc: dict[str, Any] = json.loads(render_ctrf(report))
    del doc["results"]["summary"]["pending"]
    doc["results"]["tests"][0]["duration"] = 0.5
    doc["results"]["tests"][0]["verdict"] = "unknown property"
    return doc


@pytest.fixture(scope="module")
def ctrf_validator() -> Path:
    """``tests/report/js`` with the pinned ``ctrf`` package installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not installed: cannot run the ctrf package's validator")
    if not (JS / "node_modules" / "ctrf" / "package.json").is_file():
        try:
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=JS,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci of the ctrf package timed out")
        if proc.returncode != 0:
            pytest.skip(f"npm ci of the ctrf package failed: {proc.stderr.strip()[-500:]}")
    return JS


def _node_validate(js: Path, files: list[Path]) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        ["node", "validate.mjs", *map(str, files)],
        cwd=js,
        capture_output=True,
        text=True,
        timeout=60,
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, results


def test_ctrf_package_validates_both_reports(
    ctrf_validator: Path,
    tmp_path: Path,
    passing: VerificationReport,
    failing: VerificationReport,
) -> None:
    files = []
    for name, report in (("passing", passing), ("failing", failing)):
        path = tmp_path / f"{name}.ctrf.json"
        path.write_text(render_ctrf(report), encoding="utf-8")
        files.append(path)
    rc, results = _node_validate(ctrf_validator, files)
    assert [r["valid"] for r in results] == [True, True], results
    assert rc == 0


def test_ctrf_package_rejects_a_broken_report(
    ctrf_validator: Path, tmp_path: Path, passing: VerificationReport
) -> None:
    """The validator is not vacuous: the checks above would catch a broken renderer."""
    path = tmp_path / "broken.ctrf.json"
    path.write_text(json.dumps(_invalid_copy(passing)), encoding="utf-8")
    rc, results = _node_validate(ctrf_validator, [path])
    assert rc == 1 and results[0]["valid"] is False
    messages = " ".join(e["message"] for e in results[0]["errors"])
    assert "pending" in messages and "additional properties" in messages


def test_vendored_schema_is_the_packages(ctrf_validator: Path) -> None:
    packaged = ctrf_validator / "node_modules" / "ctrf" / "dist" / "ctrf-schema-0.0.json"
    assert json.loads(SCHEMA.read_text()) == json.loads(packaged.read_text())


def test_jsonschema_validates_both_reports(
    passing: VerificationReport, failing: VerificationReport
) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed (optional)")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    for report in (passing, failing):
        errors = [e.message for e in validator.iter_errors(json.loads(render_ctrf(report)))]
        assert errors == []
    broken = [e.message for e in validator.iter_errors(_invalid_copy(passing))]
    assert len(broken) == 3, broken


def test_ctrf_package_validates_refusals_and_notes(
    ctrf_validator: Path, tmp_path: Path, refused: Refusal, refused_unsigned: Refusal
) -> None:
    """A bundle refused at steps 1-4 still gives a valid, non-empty CTRF report."""
    files = []
    docs = {
        "refused": render_ctrf(refused),
        "unsigned": render_ctrf(refused_unsigned),
        "note": render_ctrf_note("already imported", True, "already imported as #0", "0.1.0"),
    }
    for name, text in docs.items():
        path = tmp_path / f"{name}.ctrf.json"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    rc, results = _node_validate(ctrf_validator, files)
    assert [r["valid"] for r in results] == [True, True, True], results
    assert rc == 0
    doc = json.loads(docs["refused"])
    assert doc["results"]["summary"]["failed"] == 1
    assert doc["results"]["tests"][0]["name"].startswith("4 rollback")
