"""The evidence archive as an auditor and an attacker meet it (``docs/trust.md``,
"Evidence archive"): every attempt recorded, tampering detected, parallel imports safe,
unsafe runs labelled, archived bundles re-verifiable.

One test per attack or fault; each asserts the exit code and what the archive then holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.archive.store import GENESIS, _line_hash
from tests.support.sample import PRODUCTION_ROOT as ROOT
from tests.support.sample import export_argv, make_sample_site, trust_argv
from tests.support.sample import run_cli as run

REPO = Path(__file__).resolve().parents[2]


class Site:
    """The sample site with an exported bundle per sequence, and an archive."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.archive = d / "archive"

    def export(self, name: str) -> Path:
        code, _, err = run(export_argv(self.d, name))
        assert code == 0, err
        return self.d / name

    def cmd(self, command: str, bundle: Path, *extra: str) -> tuple[int, str, str]:
        return run([command, str(bundle), *trust_argv(self.d), *extra])

    def imp(self, bundle: Path, *extra: str) -> tuple[int, str, str]:
        return self.cmd("import", bundle, "--archive", str(self.archive), *extra)

    def archive_cmd(self, *args: str) -> tuple[int, str, str]:
        return run(["archive", *args, "--archive", str(self.archive)])

    def log(self) -> list[dict[str, Any]]:
        text = (self.archive / "log.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    s = Site(make_sample_site(tmp_path, monkeypatch))
    s.export("b1.dhi.tar.zst")  # sequence 1
    s.export("b2.dhi.tar.zst")  # sequence 2
    return s


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tamper(src: Path, dst: Path) -> Path:
    """Flip one byte near the end of the compressed stream (an outsider's damage)."""
    data = bytearray(src.read_bytes())
    data[-20] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


# -- 1. every attempt is evidence --------------------------------------------------


def test_refused_bundle_is_recorded_with_every_report(site: Site) -> None:
    bad = tamper(site.d / "b1.dhi.tar.zst", site.d / "bad.dhi.tar.zst")
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    html = site.d / "refused.html"
    code, out, err = site.imp(bad, "--format", "json", "--html", str(html))
    assert code == 1
    assert one_line(err).startswith("dhi-offline: verification failed: ")
    doc = json.loads(out)
    assert doc["verdict"] == "FAIL" and doc["verified"] is False
    assert doc["refusal"]["step"] and doc["refusal"]["reason"]
    assert doc["bundle"]["sha256"] == sha and doc["bundle"]["size"] == bad.stat().st_size
    assert doc["receipt"]["refused"]["step"] == doc["refusal"]["step"]
    page = html.read_text()
    assert "FAIL (refused at step" in page and sha in page
    (line,) = site.log()
    assert line["verdict"] == "FAIL" and line["refused"] is True and line["bundle"] == sha
    assert (site.archive / "quarantine" / f"{sha}.dhi.tar.zst").read_bytes() == bad.read_bytes()
    code, out, _ = site.archive_cmd("verify")
    assert code == 0 and "1 attempt(s)" in out
    code, out, _ = site.cmd("verify", bad, "--format", "ctrf")
    assert code == 1
    ctrf = json.loads(out)
    assert ctrf["results"]["summary"]["failed"] == 1 and ctrf["results"]["extra"]["refused"]


def test_rollback_refusal_reports_what_the_signature_established(site: Site) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    code, out, err = site.imp(site.d / "b1.dhi.tar.zst", "--format", "json")
    assert code == 1 and "4 rollback" in one_line(err)
    doc = json.loads(out)
    assert doc["refusal"]["step"] == "4 rollback"
    assert doc["bundle"]["signatureVerified"] is True and doc["bundle"]["sequence"] == 1
    assert doc["trust"]["exporterKeyId"] == site.log()[0]["exporterKeyId"]
    assert [line["verdict"] for line in site.log()] == ["PASS", "FAIL"]
    # a refusal does not advance the rollback state
    assert site.log()[1]["checkpoints"] == {}


def test_unknown_exporter_refusal_in_text_names_no_exporter(site: Site) -> None:
    stranger = ["--trust-exporter", str(site.d / "publisher.pub"), "--trusted-root", str(ROOT)]
    code, out, err = run(["verify", str(site.d / "b1.dhi.tar.zst"), *stranger])
    assert code == 1 and "trusted exporter" in one_line(err)
    assert out.startswith("FAIL (refused at step 2 bundle signature)")
    assert "not verified: nothing in the bundle is trusted" in out


# -- 2. tamper-evidence -------------------------------------------------------------


def test_resetting_state_does_not_reset_rollback(site: Site) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    (site.archive / "state.json").write_text('{"checkpoints":{},"sequences":{}}')
    code, _, err = site.imp(site.d / "b1.dhi.tar.zst")
    assert code == 1 and "4 rollback" in err


def test_edited_log_line_is_detected_and_blocks_import(site: Site) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    log = site.archive / "log.jsonl"
    log.write_text(log.read_text().replace('"sequence": 2', '"sequence": 0'))
    code, _, err = site.archive_cmd("verify")
    assert code == 1 and "hash mismatch" in one_line(err)
    code, _, err = site.imp(site.d / "b1.dhi.tar.zst")
    assert code == 1 and "archive integrity" in one_line(err)
    assert len(log.read_text().splitlines()) == 1  # nothing recorded


def test_rehashed_log_line_disagrees_with_its_receipt(site: Site) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    rewrite_log(site, lambda line: {**line, "sequence": 0})
    code, _, err = site.archive_cmd("verify")
    assert code == 1 and "does not match its receipt" in one_line(err)


def rewrite_log(site: Site, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """An attacker who knows the format: edit lines and recompute the whole chain."""
    prev = GENESIS
    out = []
    for line in site.log():
        new = {k: v for k, v in edit(line).items() if k != "hash"}
        new["prev"] = prev
        new["hash"] = _line_hash(new)
        prev = new["hash"]
        out.append(json.dumps(new, sort_keys=True))
    (site.archive / "log.jsonl").write_text("".join(f"{x}\n" for x in out))


def test_deleted_log_is_detected_and_blocks_import(site: Site) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    (site.archive / "log.jsonl").unlink()
    code, _, err = site.archive_cmd("verify")
    assert code == 1 and "deleted" in one_line(err)
    code, _, err = site.imp(site.d / "b1.dhi.tar.zst")
    assert code == 1 and "deleted" in one_line(err)
    assert not (site.archive / "log.jsonl").exists()


def test_truncated_log_is_detected_by_leftovers_or_by_the_head(site: Site) -> None:
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 0
    code, out, _ = site.imp(site.d / "b2.dhi.tar.zst")
    assert code == 0
    head = out.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    assert head == f"1:{site.log()[1]['hash']}"
    assert site.archive_cmd("verify", "--expect-head", head)[0] == 0
    last = site.log()[1]
    log = site.archive / "log.jsonl"
    log.write_text(log.read_text().splitlines(keepends=True)[0])
    (site.archive / str(last["receipt"])).unlink()
    # the bundle it kept is still there, named by no line
    code, _, err = site.archive_cmd("verify")
    assert code == 1 and "not named by any log line" in one_line(err)
    # an attacker who also removes the bundle is caught only against a head kept elsewhere
    (site.archive / "bundles" / f"{last['bundle']}.dhi.tar.zst").unlink()
    assert site.archive_cmd("verify")[0] == 0
    code, _, err = site.archive_cmd("verify", "--expect-head", head)
    assert code == 1 and "lines were removed" in one_line(err)


def test_rewritten_chain_is_caught_by_the_expected_head(site: Site) -> None:
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 0
    head = f"0:{site.log()[0]['hash']}"
    rewrite_log(site, lambda line: {**line, "time": "2020-01-01T00:00:00Z"})
    assert site.archive_cmd("verify")[0] == 0
    code, _, err = site.archive_cmd("verify", "--expect-head", head)
    assert code == 1 and "rewritten" in one_line(err)


def test_reordered_lines_and_removed_receipt(site: Site) -> None:
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 0
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    log = site.archive / "log.jsonl"
    original = log.read_text()
    a, b = original.splitlines(keepends=True)
    log.write_text(b + a)
    code, _, err = site.archive_cmd("verify")
    assert code == 1 and "removed or reordered" in one_line(err)
    log.write_text(original)
    (site.archive / str(site.log()[0]["receipt"])).unlink()
    code, _, err = site.archive_cmd("verify")
    assert code == 1 and "changed or removed" in one_line(err)


def test_expect_head_malformed_is_a_usage_error(site: Site) -> None:
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 0
    code, _, err = site.archive_cmd("verify", "--expect-head", "0:abc")
    assert code == 2 and "INDEX:SHA256" in one_line(err)


def test_missing_or_empty_archive_is_an_error(site: Site, tmp_path: Path) -> None:
    for args in (["verify"], ["list"], ["report"], ["reverify", "all"]):
        code, out, err = run(["archive", *args, "--archive", str(tmp_path / "does-not-exist")])
        assert code == 2 and "does not exist" in one_line(err) and "intact" not in out
    (tmp_path / "empty").mkdir()
    code, _, err = run(["archive", "verify", "--archive", str(tmp_path / "empty")])
    assert code == 2 and "holds no log.jsonl" in one_line(err)


def test_empty_archive_cannot_bypass_rollback(site: Site, tmp_path: Path) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    (tmp_path / "empty").mkdir()
    code, _, err = site.cmd(
        "verify", site.d / "b1.dhi.tar.zst", "--archive", str(tmp_path / "empty")
    )
    assert code == 2 and "no evidence archive" in one_line(err)
    # With no archive at all (a new host) the report says rollback had no history.
    code, out, _ = site.cmd("verify", site.d / "b1.dhi.tar.zst", "--format", "json")
    assert code == 0
    assert any("rollback was checked against no history" in w for w in json.loads(out)["warnings"])


# -- 6. unsafe means unsafe ------------------------------------------------------------


def test_backdated_and_future_at_are_unsafe(site: Site) -> None:
    bundle = site.d / "b1.dhi.tar.zst"
    code, out, _ = site.cmd("verify", bundle, "--at", "2020-01-01T00:00:00Z", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "UNSAFE-PASS"
    assert [u for u in doc["unsafe"] if "earlier than the bundle's creation" in u]
    code, out, _ = site.cmd("verify", bundle, "--at", "2020-01-01T00:00:00Z")
    assert out.startswith("PASS (UNSAFE: --at)")
    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, _ = site.cmd("verify", bundle, "--at", soon, "--format", "ctrf")
    doc = json.loads(out)
    assert code == 0 and doc["results"]["extra"]["verdict"] == "UNSAFE-PASS"
    unsafe_tests = [t for t in doc["results"]["tests"] if t["name"].startswith("UNSAFE")]
    assert len(unsafe_tests) == 1 and unsafe_tests[0]["status"] == "failed"
    # Far future: expired, refused; the refusal still lists the unsafe --at.
    code, out, _ = site.cmd("verify", bundle, "--at", "2099-01-01T00:00:00Z", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["refusal"]["step"] == "4 expiry"
    assert any("later than now" in u for u in doc["unsafe"])


def test_allow_rollback_is_listed_once_and_labels_the_verdict(site: Site) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    code, out, _ = site.imp(site.d / "b1.dhi.tar.zst", "--allow-rollback", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "UNSAFE-PASS"
    assert len([u for u in doc["unsafe"] if u.startswith("--allow-rollback")]) == 1
    assert site.log()[-1]["verdict"] == "UNSAFE-PASS"


# -- 3. concurrency and I/O ------------------------------------------------------------


def _cli(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dhi_offline", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or dict(os.environ),
        cwd=REPO,
    )


def test_parallel_imports_keep_the_chain_and_refuse_rollback_races(site: Site) -> None:
    bundles = [site.d / "b1.dhi.tar.zst", site.d / "b2.dhi.tar.zst"]
    bundles += [site.export(f"b{n}.dhi.tar.zst") for n in range(3, 9)]
    procs = [
        _cli(["import", str(b), *trust_argv(site.d), "--archive", str(site.archive)])
        for b in reversed(bundles)
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    for code, err in results:
        assert code in (0, 1), err
        assert "internal error" not in err and "Traceback" not in err
        if code == 1:
            assert "4 rollback" in err
    code, out, err = site.archive_cmd("verify")
    assert code == 0 and "8 attempt(s)" in out, err
    accepted = [line["sequence"] for line in site.log() if line["verdict"] == "PASS"]
    assert accepted == sorted(accepted) and len(set(accepted)) == len(accepted)
    assert sum(1 for c, _ in results if c == 0) == len(accepted)


def _in_mount_namespace(script: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None:
        pytest.skip("unshare not installed")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot make a mount namespace here (needs root)")
    return subprocess.run(
        ["unshare", "-m", "sh", "-ec", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )


def _import_line(site: Site, bundle: Path, *extra: str) -> str:
    argv = ["import", str(bundle), *trust_argv(site.d), "--archive", str(site.archive), *extra]
    return " ".join([sys.executable, "-m", "dhi_offline", *(f"'{a}'" for a in argv)])


def test_read_only_archive_is_one_line_exit_2(site: Site) -> None:
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 0
    before = (site.archive / "log.jsonl").read_bytes()
    a = site.archive
    proc = _in_mount_namespace(
        f"mount --bind -o ro '{a}' '{a}'; exec {_import_line(site, site.d / 'b2.dhi.tar.zst')}"
    )
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert str(a) in line and "Read-only file system" in line and "internal error" not in line
    assert (site.archive / "log.jsonl").read_bytes() == before


def test_full_disk_is_one_line_exit_2_and_nothing_half_written(site: Site) -> None:
    a = site.archive
    a.mkdir()
    proc = _in_mount_namespace(
        f"mount -t tmpfs -o size=8k tmpfs '{a}'; "
        f"{_import_line(site, site.d / 'b1.dhi.tar.zst')} || echo EXIT=$?; "
        f"echo LEFT; ls -A '{a}' '{a}/bundles' 2>/dev/null || true"
    )
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("dhi-offline: error: cannot write to the evidence archive") and (
        "no space left on device" in err
    ), err
    assert "EXIT=2" in proc.stdout, proc.stdout
    left = proc.stdout.split("LEFT", 1)[1].split()
    assert not [name for name in left if name.endswith(".tmp")], left
    assert "log.jsonl" not in left


def test_unwritable_html_fails_before_anything_is_recorded(site: Site) -> None:
    code, _, err = site.imp(site.d / "b1.dhi.tar.zst", "--html", "/nonexistent/x.html")
    assert code == 2 and "/nonexistent/x.html" in one_line(err)
    assert not (site.archive / "log.jsonl").exists()
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 0  # the retry is the first import


# -- 4. idempotence ----------------------------------------------------------------------


def test_duplicate_import_adds_nothing_unless_again(site: Site) -> None:
    bundle = site.d / "b1.dhi.tar.zst"
    assert site.imp(bundle)[0] == 0
    code, out, _ = site.imp(bundle)
    assert code == 0 and out.startswith("already imported as #0 (sha256 ")
    assert len(site.log()) == 1
    code, out, _ = site.imp(bundle, "--format", "json")
    assert code == 0 and json.loads(out)["alreadyImported"] is True
    code, out, _ = site.imp(bundle, "--again", "--format", "json")
    assert code == 0 and json.loads(out)["receipt"]["again"] == {"previousImport": 0}
    assert len(site.log()) == 2
    assert site.archive_cmd("verify")[0] == 0


# -- 5. re-verification ----------------------------------------------------------------------


def test_reverify_after_newer_import_and_after_distrust(site: Site) -> None:
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 0
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    code, out, err = site.archive_cmd("reverify", "0", *trust_argv(site.d))
    assert code == 0, err
    assert "recorded PASS  now PASS  no drift" in out
    # The publisher key is no longer pinned: the same bundle now fails, and says why.
    code, out, _ = site.archive_cmd(
        "reverify", "all", "--trust-exporter", str(site.d / "exporter.pub"),
        "--trusted-root", str(ROOT), "--format", "json",
    )  # fmt: skip
    assert code == 1
    docs = json.loads(out)
    assert [d["logIndex"] for d in docs] == [0, 1]
    for d in docs:
        assert "verdict PASS -> FAIL" in d["drift"]
        assert any("publisher.pub" in x and "no longer pinned" in x for x in d["drift"])


def test_archive_report_names_root_causes(site: Site) -> None:
    assert site.imp(site.d / "b2.dhi.tar.zst")[0] == 0
    assert site.imp(site.d / "b1.dhi.tar.zst")[0] == 1
    html = site.d / "archive.html"
    code, out, _ = site.archive_cmd("report", "--html", str(html))
    assert code == 0 and "refused at 4 rollback" in out
    page = html.read_text()
    head = f"1:{site.log()[1]['hash']}"
    assert head in page and str(site.archive.resolve()) in page
    assert "refused at 4 rollback" in page and "generated" in page
