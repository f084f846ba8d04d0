"""The archive store on its own: the log, the state derived from it, heads, quarantine,
and the lock under parallel writers (processes)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path

import pytest

from dhi_offline.archive import store
from dhi_offline.archive.store import Archive, ArchiveIntegrityError, parse_head
from dhi_offline.errors import InputError, UsageError

CHECKPOINT = (
    "rekor.example - 1\n{size}\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
    "— rekor.example AAAAAAAAAAAAAAAA\n"
)


def _record(
    archive: Archive,
    bundle: Path,
    *,
    key: str = "k1",
    seq: int = 1,
    verdict: str = "PASS",
    refused: bool = False,
    checkpoints: dict[str, str] | None = None,
) -> dict[str, object]:
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    with archive.lock(exclusive=True):
        history = archive.history()
        return archive.record(
            history=history,
            bundle_file=bundle,
            bundle_sha256=sha,
            bundle_size=bundle.stat().st_size,
            receipt={
                "bundleSha256": sha,
                "verdict": verdict,
                "exporterKeyId": key,
                "sequence": seq,
            },
            verdict=verdict,
            refused=refused,
            exporter_key_id=key,
            sequence=seq,
            checkpoints=checkpoints,
        )


def _bundle(tmp_path: Path, n: int) -> Path:
    p = tmp_path / f"in-{n}.bin"
    p.write_bytes(f"bundle {n}".encode() * 10)
    return p


def test_state_is_the_fold_of_accepted_lines(tmp_path: Path) -> None:
    a = Archive(tmp_path / "a")
    _record(a, _bundle(tmp_path, 1), seq=3, checkpoints={"aa": CHECKPOINT.format(size=10)})
    _record(a, _bundle(tmp_path, 2), seq=1)  # accepted with --allow-rollback: max stays 3
    _record(a, _bundle(tmp_path, 3), seq=9, verdict="FAIL")  # a FAIL does not advance
    _record(a, _bundle(tmp_path, 4), key="k2", seq=5, verdict="UNSAFE-PASS")
    _record(a, _bundle(tmp_path, 5), seq=2, checkpoints={"aa": CHECKPOINT.format(size=7)})
    h = a.history()
    assert h.sequences == {"k1": 3, "k2": 5}
    assert h.checkpoints == {"aa": CHECKPOINT.format(size=10)}  # the larger tree wins
    assert h.head == f"4:{h.lines[-1].hash}"
    check = a.verify(expect_head=h.head)
    assert (check.count, check.bundles) == (5, 5)


def test_parse_head() -> None:
    assert parse_head("3:" + "a" * 64) == (3, "a" * 64)
    for bad in ("3", "x:" + "a" * 64, "3:" + "A" * 64, "3:abc", "-1:" + "a" * 64):
        with pytest.raises(UsageError):
            parse_head(bad)


def test_expected_head_beyond_the_end_or_different(tmp_path: Path) -> None:
    a = Archive(tmp_path / "a")
    _record(a, _bundle(tmp_path, 1))
    with pytest.raises(ArchiveIntegrityError, match="lines were removed"):
        a.verify(expect_head="5:" + "0" * 64)
    with pytest.raises(ArchiveIntegrityError, match="rewritten"):
        a.verify(expect_head="0:" + "0" * 64)


def test_refused_bundles_go_to_quarantine_within_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = Archive(tmp_path / "a")
    small = _bundle(tmp_path, 1)
    stored = _record(a, small, refused=True, verdict="FAIL")
    assert stored["bundleStored"] == "quarantine"
    monkeypatch.setattr(store, "QUARANTINE_MAX_FILE", 10)
    stored = _record(a, _bundle(tmp_path, 2), refused=True, verdict="FAIL")
    assert stored["bundleStored"] == "none"
    assert [p.name for p in (a.root / "quarantine").iterdir()] == [
        f"{a.history().lines[0].bundle}.dhi.tar.zst"
    ]
    assert a.verify().quarantined == 1


def test_missing_archive_and_unreadable_log(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        Archive(tmp_path / "nope").verify()
    a = Archive(tmp_path / "a")
    _record(a, _bundle(tmp_path, 1))
    a.log_path.write_text("{not json\n")
    with pytest.raises(ArchiveIntegrityError, match="line 1 is malformed"):
        a.history()


def test_v1_lines_still_verify_and_give_state_from_receipts(tmp_path: Path) -> None:
    """Lines written before the log carried the state (no exporterKeyId in the line)."""
    a = Archive(tmp_path / "a")
    _record(a, _bundle(tmp_path, 1), seq=4)
    raw = json.loads(a.log_path.read_text())
    for k in ("v", "exporterKeyId", "sequence", "checkpoints", "refused", "stored", "bundleSize"):
        del raw[k]
    raw["hash"] = store._line_hash(raw)
    a.log_path.write_text(json.dumps(raw) + "\n")
    assert a.history().sequences == {"k1": 4}
    assert a.verify().count == 1


def _writer(root: str, path: str, n: int) -> None:
    _record(Archive(Path(root)), Path(path), seq=n)


def test_parallel_writers_keep_one_chain(tmp_path: Path) -> None:
    a = Archive(tmp_path / "a")
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(str(a.root), str(_bundle(tmp_path, n)), n))
        for n in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert a.verify().count == 8
    assert sorted(line.index for line in a.history().lines) == list(range(8))


def test_line_from_another_archive_does_not_chain(tmp_path: Path) -> None:
    """A self-consistent line (right index, right hash) grafted from another archive."""
    a, b = Archive(tmp_path / "a"), Archive(tmp_path / "b")
    _record(a, _bundle(tmp_path, 1))
    _record(a, _bundle(tmp_path, 2), seq=2)
    _record(b, _bundle(tmp_path, 3))
    _record(b, _bundle(tmp_path, 4), seq=2)
    first = a.log_path.read_text().splitlines(keepends=True)[0]
    grafted = b.log_path.read_text().splitlines(keepends=True)[1]
    a.log_path.write_text(first + grafted)
    with pytest.raises(ArchiveIntegrityError, match="does not chain"):
        a.history()


def test_edited_line_hash_mismatch_unit(tmp_path: Path) -> None:
    a = Archive(tmp_path / "a")
    _record(a, _bundle(tmp_path, 1), seq=7)
    a.log_path.write_text(a.log_path.read_text().replace('"sequence": 7', '"sequence": 1'))
    with pytest.raises(ArchiveIntegrityError, match="hash mismatch"):
        a.history()


def test_rehashed_line_that_disagrees_with_its_receipt_unit(tmp_path: Path) -> None:
    a = Archive(tmp_path / "a")
    _record(a, _bundle(tmp_path, 1))
    raw = json.loads(a.log_path.read_text())
    raw["verdict"] = "FAIL"
    raw["hash"] = store._line_hash(raw)
    a.log_path.write_text(json.dumps(raw) + "\n")
    with pytest.raises(ArchiveIntegrityError, match=r"does not match its receipt \(verdict\)"):
        a.verify()


def test_leftover_receipt_and_deleted_log_unit(tmp_path: Path) -> None:
    a = Archive(tmp_path / "a")
    _record(a, _bundle(tmp_path, 1))
    _record(a, _bundle(tmp_path, 2), seq=2)
    lines = a.log_path.read_text().splitlines(keepends=True)
    a.log_path.write_text(lines[0])
    with pytest.raises(ArchiveIntegrityError, match="not named by any log line"):
        a.verify()
    a.log_path.write_text("")
    with pytest.raises(ArchiveIntegrityError, match="log was deleted or truncated"):
        a.history()
