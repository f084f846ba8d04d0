"""Statements parsed ahead in worker processes: same results, only for the same bytes."""

from __future__ import annotations

import base64
import hashlib
import json
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.bundle import layout
from dhi_offline.evidence import intoto
from dhi_offline.evidence.intoto import parse_statement, parse_top_level
from dhi_offline.verify import bundle as verify_bundle
from dhi_offline.verify import prefetch
from dhi_offline.verify.prefetch import StatementPrefetch, prepare_file
from tests.support.sample import export_argv, make_sample_site, run_cli, trust_argv

A = "a" * 64


def _statement(n: int = 3000, subject: str = A) -> bytes:
    predicate = {"components": [{"name": f"p{i}", "purl": f"pkg:deb/p{i}@1"} for i in range(n)]}
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://cyclonedx.org/bom",
            "subject": [{"digest": {"sha256": subject}}],
            "predicate": predicate,
        }
    ).encode()


def _blob(root: Path, data: bytes) -> str:
    path = layout.BLOBS_PREFIX + hashlib.sha256(data).hexdigest()
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)
    return path


def test_prepare_file_reads_bare_statements_and_dsse_envelopes(tmp_path: Path) -> None:
    stmt = _statement()
    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(stmt).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(b"x").decode()}],
        }
    ).encode()
    expected = (hashlib.sha256(stmt).hexdigest(), parse_top_level(stmt))
    assert expected[1] is not None
    assert prepare_file(str(tmp_path / _blob(tmp_path, stmt))) == expected
    assert prepare_file(str(tmp_path / _blob(tmp_path, envelope))) == expected
    # Not a statement, or too small to be worth it: nothing prepared.
    assert prepare_file(str(tmp_path / _blob(tmp_path, b"\x00" * 100_000))) is None
    assert prepare_file(str(tmp_path / _blob(tmp_path, _statement(3)))) is None


def test_results_stand_only_for_the_same_bytes(tmp_path: Path) -> None:
    stmt, other = _statement(), _statement(subject="b" * 64)
    with closing(StatementPrefetch(tmp_path, workers=2, min_size=1)) as pre:
        pre.member_extracted(_blob(tmp_path, stmt), len(stmt))
        pre.member_extracted("evidence/index.json", 10**9)  # not a blob: never sent
        assert pre.submitted == 1
        assert pre.lookup(other) is None
        prepared = pre.lookup(stmt)
    assert prepared is not None and pre.hits == 1
    parsed = parse_statement(stmt, prepared=lambda _b, _d: prepared)
    assert parsed.subjects[0].digest == {"sha256": A}
    assert parsed.predicate == json.loads(stmt)["predicate"]


def test_off_and_small_blobs_are_not_sent(tmp_path: Path) -> None:
    stmt = _statement()
    with closing(StatementPrefetch(tmp_path, workers=0, min_size=1)) as off:
        off.member_extracted(_blob(tmp_path, stmt), len(stmt))
        assert (off.submitted, off.lookup(stmt)) == (0, None)
    with closing(StatementPrefetch(tmp_path, workers=2, min_size=len(stmt) + 1)) as small:
        small.member_extracted(_blob(tmp_path, stmt), len(stmt))
        assert small.submitted == 0


def test_a_bare_statement_is_keyed_by_its_checked_blob_name(tmp_path: Path) -> None:
    # The reader checked the file against its name as it wrote it into its private work
    # directory; the worker does not hash it again (docs/trust.md, "does not stop").
    stmt = _statement()
    path = _blob(tmp_path, stmt)
    (tmp_path / path).write_bytes(_statement(subject="b" * 64))  # changed after the check
    with closing(StatementPrefetch(tmp_path, workers=1, min_size=1)) as pre:
        pre.member_extracted(path, len(stmt))
        prepared = pre.lookup(stmt, sha256=path.rsplit("/", 1)[1])
    assert prepared is not None
    assert prepared[0]["subject"] == [{"digest": {"sha256": "b" * 64}}]


def test_a_dsse_payload_is_keyed_by_its_own_hash(tmp_path: Path) -> None:
    stmt = _statement()
    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(stmt).decode(),
            "signatures": [{"sig": "AAAA"}],
        }
    ).encode()
    with closing(StatementPrefetch(tmp_path, workers=1, min_size=1)) as pre:
        pre.member_extracted(_blob(tmp_path, envelope), len(envelope))
        assert pre.lookup(stmt) is not None  # keyed by sha256(payload), not the file's name


def test_verify_reports_the_same_with_and_without_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run_cli(export_argv(d, "b.dhi.tar.zst"))
    assert code == 0, err
    # Every blob goes through the workers (the sample's statements are small).
    monkeypatch.setattr(verify_bundle, "MEMORY_BUDGET", 0)
    monkeypatch.setattr(verify_bundle, "SMALL_MEMBER", 0)  # nothing packed: all files
    monkeypatch.setattr(prefetch, "MIN_SIZE", 1)
    monkeypatch.setattr(intoto, "_LAZY_MIN", 1)
    hits: list[int] = []
    real_close = StatementPrefetch.close

    def close(self: StatementPrefetch) -> None:
        hits.append(self.hits)
        real_close(self)

    monkeypatch.setattr(StatementPrefetch, "close", close)
    reports: list[Any] = []
    for cpus in (1, 2):
        monkeypatch.setattr(verify_bundle, "usable_cpus", lambda n=cpus: n)
        code, out, err = run_cli(
            [
                "verify",
                str(d / "b.dhi.tar.zst"),
                *trust_argv(d),
                "--policy",
                "dhi-default",
                "--format",
                "json",
            ]
        )
        assert code in (0, 1), err
        report = json.loads(out)
        report.pop("referenceTime")  # "now": the two runs may straddle a second
        reports.append(report)
    assert hits[0] == 0 and hits[1] >= 10
    assert reports[0] == reports[1]


def test_workers_leave_ctrl_c_to_the_main_process(tmp_path: Path) -> None:
    # SIGINT goes to the whole process group; a worker printing its own traceback would
    # break the one-line "interrupted" the CLI prints.
    import signal

    stmt = _statement()
    with closing(StatementPrefetch(tmp_path, workers=1, min_size=1)) as pre:
        pre.member_extracted(_blob(tmp_path, stmt), len(stmt))
        pool = pre._pool
        assert pool is not None
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
