"""The offline TUF chain (dhi_offline/trust/tuf_chain.py) on a repository built here."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from tuf.api.metadata import Metadata, MetaFile, Timestamp

from dhi_offline.errors import TufError
from dhi_offline.trust.tuf_chain import verify_chain
from dhi_offline.trust.tuf_state import TufAccepted, TufResult
from tests.trust.tuf_repo import NOW, TRUSTED_ROOT, TufRepo


def _verify(repo: TufRepo, roots: list[bytes] | None = None, **kw: object) -> TufResult:
    return verify_chain(
        repo.roots[0],
        repo.roots[1:] if roots is None else roots,
        repo.timestamp,
        repo.snapshot,
        repo.targets,
        target_files=repo.files,
        at=kw.pop("at", NOW),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def repo() -> TufRepo:
    r = TufRepo()
    r.new_root(rotate_root=True)
    r.new_root(rotate_timestamp=True)
    r.publish()
    return r


def test_pinned_v1_accepts_v1_to_v3(repo: TufRepo) -> None:
    result = _verify(repo)
    assert (result.pinned_version, result.root_version) == (1, 3)
    assert result.targets_version == 1
    assert result.trusted_root == TRUSTED_ROOT
    assert result.root == repo.roots[-1]
    assert result.signing_config is None


def test_no_new_root_is_fine(repo: TufRepo) -> None:
    result = verify_chain(
        repo.roots[-1],
        [],
        repo.timestamp,
        repo.snapshot,
        repo.targets,
        target_files=repo.files,
        at=NOW,
    )
    assert (result.pinned_version, result.root_version) == (3, 3)


def test_signing_config_is_checked_when_listed() -> None:
    repo = TufRepo()
    repo.publish({"trusted_root.json": TRUSTED_ROOT, "signing_config.v0.2.json": b"{}"})
    assert _verify(repo).signing_config_name == "signing_config.v0.2.json"
    repo.files["signing_config.v0.2.json"] = b"{ }"
    with pytest.raises(TufError, match=r"signing_config.v0.2.json differs from the length"):
        _verify(repo)


def test_root_below_threshold_is_refused() -> None:
    repo = TufRepo()
    repo.new_root(sign_with=[repo.root_signers[0]])
    repo.publish()
    with pytest.raises(TufError, match=r"root v2 has 1 of 2 required signatures") as e:
        _verify(repo)
    assert e.value.step == "TUF"
    assert e.value.one_line().startswith("TUF: root v2 has 1 of 2")


def test_root_not_signed_by_its_new_keys_is_refused() -> None:
    repo = TufRepo()
    old = list(repo.root_signers)
    # The removed key and one kept key: enough of v1's keys, only 1 of 2 of its own.
    repo.new_root(rotate_root=True, sign_with=old[:2])
    repo.publish()
    with pytest.raises(TufError, match=r"root v2 is not signed by a threshold of its own keys"):
        _verify(repo)


def test_skipped_root_version_is_refused(repo: TufRepo) -> None:
    with pytest.raises(TufError, match=r"root v3 cannot follow root v1"):
        _verify(repo, roots=[repo.roots[2]])


def test_expired_timestamp_is_refused() -> None:
    repo = TufRepo()
    repo.publish(timestamp_expires=NOW + timedelta(days=1))
    _verify(repo)
    with pytest.raises(TufError, match=r"timestamp v1 expired at 2026-06-02T00:00:00Z"):
        _verify(repo, at=NOW + timedelta(days=2))


def test_expired_final_root_is_refused() -> None:
    repo = TufRepo()
    repo.new_root(expires=NOW - timedelta(days=1))
    repo.publish()
    with pytest.raises(TufError, match=r"root v2 expired at"):
        _verify(repo)


def test_expired_intermediate_root_is_fine() -> None:
    repo = TufRepo()
    repo.new_root(expires=NOW - timedelta(days=1))
    repo.new_root(expires=NOW + timedelta(days=30))
    repo.publish()
    assert _verify(repo).root_version == 3


def test_target_hash_differs_is_refused() -> None:
    repo = TufRepo()
    variant = json.dumps(json.loads(TRUSTED_ROOT)).encode()
    repo.publish({"trusted_root.json": variant}, listed={"trusted_root.json": TRUSTED_ROOT})
    with pytest.raises(TufError, match=r"trusted_root.json differs from the length or hashes"):
        _verify(repo)


def test_unlisted_trusted_root_is_refused() -> None:
    repo = TufRepo()
    repo.publish({"trusted_root.json": TRUSTED_ROOT}, listed={})
    with pytest.raises(TufError, match=r"does not list it"):
        _verify(repo)
    repo.publish({}, listed={})
    with pytest.raises(TufError, match=r"targets v2 does not list trusted_root.json"):
        _verify(repo)


def test_tampered_snapshot_is_refused() -> None:
    repo = TufRepo()
    repo.publish()
    repo.snapshot += b" "  # still the same signed JSON, not the bytes timestamp lists
    with pytest.raises(TufError, match=r"snapshot.json differs from the length or hashes"):
        _verify(repo)


def test_timestamp_signed_by_a_rotated_out_key_is_refused() -> None:
    repo = TufRepo()
    repo.publish()
    stale = repo.timestamp
    repo.new_root(rotate_timestamp=True)
    with pytest.raises(TufError, match=r"timestamp v1 has 0 of 1 required signatures"):
        verify_chain(
            repo.roots[0],
            repo.roots[1:],
            stale,
            repo.snapshot,
            repo.targets,
            target_files=repo.files,
            at=NOW,
        )


def test_rollback_to_older_targets_is_refused() -> None:
    repo = TufRepo()
    repo.publish()
    old = (repo.timestamp, repo.snapshot, repo.targets, dict(repo.files))
    repo.publish()
    newer = _verify(repo)
    assert newer.targets_version == 2
    accepted = TufAccepted(newer.timestamp, newer.snapshot, newer.targets)
    with pytest.raises(TufError, match=r"timestamp v1 is a rollback"):
        verify_chain(
            newer.root,
            [],
            old[0],
            old[1],
            old[2],
            target_files=old[3],
            at=NOW,
            accepted=accepted,
        )


def test_rollback_of_snapshot_behind_a_newer_timestamp_is_refused() -> None:
    repo = TufRepo()
    repo.publish()
    old_snapshot, old_targets = repo.snapshot, repo.targets
    repo.publish()
    accepted_result = _verify(repo)
    accepted = TufAccepted(
        accepted_result.timestamp, accepted_result.snapshot, accepted_result.targets
    )
    # A new timestamp (v3) that names the old snapshot: refused against the accepted one.
    repo.snapshot, repo.targets = old_snapshot, old_targets
    ts = Timestamp(
        version=3,
        expires=repo.expires,
        snapshot_meta=MetaFile(
            version=1,
            length=len(old_snapshot),
            hashes={"sha256": hashlib.sha256(old_snapshot).hexdigest()},
        ),
    )
    md = Metadata(ts)
    md.sign(repo.signers["timestamp"])
    with pytest.raises(TufError, match=r"timestamp v3 is a rollback"):
        verify_chain(
            repo.roots[0],
            [],
            md.to_bytes(),
            old_snapshot,
            old_targets,
            target_files=repo.files,
            at=NOW,
            accepted=accepted,
        )


def test_same_version_again_is_accepted() -> None:
    repo = TufRepo()
    repo.publish()
    first = _verify(repo)
    again = _verify(repo, accepted=TufAccepted(first.timestamp, first.snapshot, first.targets))
    assert again.targets_version == 1


def test_accepted_metadata_under_rotated_keys_is_dropped() -> None:
    repo = TufRepo()
    repo.publish()
    first = _verify(repo)
    repo.new_root(rotate_timestamp=True)
    repo.publish()
    again = _verify(repo, accepted=TufAccepted(first.timestamp, first.snapshot, first.targets))
    assert (again.root_version, again.targets_version) == (2, 2)


def test_garbage_is_a_tuf_error() -> None:
    repo = TufRepo()
    repo.publish()
    with pytest.raises(TufError, match=r"root #2 does not load"):
        _verify(repo, roots=[b"not json"])
    with pytest.raises(TufError, match=r"pinned root does not load"):
        verify_chain(b"{}", [], b"", b"", b"", target_files={}, at=NOW)
    with pytest.raises(TufError, match=r"unexpected TUF target"):
        verify_chain(b"{}", [], b"", b"", b"", target_files={"x.json": b""}, at=NOW)
