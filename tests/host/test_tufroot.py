"""``trust update-root`` and the TUF pin it leaves (dhi_offline/host/tufroot.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle import layout
from dhi_offline.bundle.reader import inspect_bundle
from dhi_offline.host.trust import build_trust
from dhi_offline.trust.tuf_store import TufStore
from tests.bundle.helpers import sample_members, write_sample
from tests.support.sample import public_pem
from tests.support.sample import run_cli as run
from tests.trust.tuf_repo import TRUSTED_ROOT, TufRepo, bundle_members, seed_host

AT = "2026-06-01T00:00:00Z"


EXPORTER = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DHI_OFFLINE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "exporter.pub").write_bytes(public_pem(EXPORTER))
    return tmp_path


def _bundle(site: Path, repo: TufRepo, name: str, **kw: int) -> Path:
    out = site / name
    write_sample(out, EXPORTER, members=[*sample_members(), *bundle_members(repo, **kw)])
    return out


def _update(site: Path, bundle: Path, *extra: str) -> tuple[int, str, str]:
    return run(
        [
            "trust",
            "update-root",
            str(bundle),
            "--trust-exporter",
            str(site / "exporter.pub"),
            "--at",
            AT,
            *extra,
        ]
    )


@pytest.fixture
def repo(site: Path) -> TufRepo:
    r = TufRepo()
    seed_host(site / "config", r)
    r.new_root(rotate_root=True)
    r.new_root(rotate_timestamp=True)
    return r


def test_update_root_pins_the_new_root(site: Path, repo: TufRepo) -> None:
    for _ in range(5):
        repo.publish()
    code, out, err = _update(site, _bundle(site, repo, "b.dhi.tar.zst"))
    assert code == 0, err
    sha = hashlib.sha256(TRUSTED_ROOT).hexdigest()
    assert out == f"trusted root updated through TUF: root v1 -> v3, targets v5 (sha256 {sha})\n"
    pin = TufStore(site / "config").load("production")
    assert (pin.root_version, pin.targets_version, pin.trusted_root) == (3, 5, TRUSTED_ROOT)
    trust = build_trust(
        config_dir=site / "config",
        trust_exporter=[site / "exporter.pub"],
        trust_publisher=[],
        trusted_root=None,
        trust_bundle_keys=False,
    )
    assert trust.trusted_root_source.startswith("Sigstore TUF (production, root v3, targets v5, ")


def test_the_bundle_is_format_version_2(site: Path, repo: TufRepo) -> None:
    repo.publish()
    manifest = inspect_bundle(_bundle(site, repo, "b.dhi.tar.zst"))
    assert manifest.format_version == layout.FORMAT_VERSION_TUF
    plain = site / "plain.dhi.tar.zst"
    write_sample(plain, EXPORTER)
    assert inspect_bundle(plain).format_version == layout.FORMAT_VERSION


def test_refusal_pins_nothing(site: Path) -> None:
    repo = TufRepo()
    seed_host(site / "config", repo)
    repo.new_root(sign_with=[repo.root_signers[0]])
    repo.publish()
    state = (site / "config" / "tuf" / "production.json").read_bytes()
    code, out, err = _update(site, _bundle(site, repo, "b.dhi.tar.zst"))
    assert code == 1 and out == ""
    assert err == (
        "dhi-offline: verification failed: TUF: root v2 has 1 of 2 required signatures of "
        "the keys of root v1\n"
    )
    assert (site / "config" / "tuf" / "production.json").read_bytes() == state


def test_rollback_after_a_newer_update_is_refused(site: Path, repo: TufRepo) -> None:
    repo.publish()
    old = _bundle(site, repo, "old.dhi.tar.zst")
    repo.publish()
    code, _, err = _update(site, _bundle(site, repo, "new.dhi.tar.zst"))
    assert code == 0, err
    code, _, err = _update(site, old)
    assert code == 1
    assert "TUF: timestamp v1 is a rollback" in err
    assert TufStore(site / "config").load("production").targets_version == 2


def test_expired_timestamp_is_refused_and_at_moves_the_clock(site: Path, repo: TufRepo) -> None:
    repo.publish()
    bundle = _bundle(site, repo, "b.dhi.tar.zst")
    code, _, err = run(
        [
            "trust",
            "update-root",
            str(bundle),
            "--trust-exporter",
            str(site / "exporter.pub"),
            "--at",
            "2030-01-01T00:00:00Z",
        ]
    )
    assert code == 1 and "TUF: " in err and "expired" in err


def test_untrusted_exporter_is_refused_before_tuf(site: Path, repo: TufRepo) -> None:
    repo.publish()
    bundle = _bundle(site, repo, "b.dhi.tar.zst")
    other = ec.generate_private_key(ec.SECP256R1())
    (site / "other.pub").write_bytes(public_pem(other))
    code, _, err = run(
        [
            "trust",
            "update-root",
            str(bundle),
            "--trust-exporter",
            str(site / "other.pub"),
            "--at",
            AT,
        ]
    )
    assert code == 1 and "verification failed: 2 bundle signature: " in err


def test_bundle_without_tuf_is_an_input_error(site: Path) -> None:
    plain = site / "plain.dhi.tar.zst"
    write_sample(plain, EXPORTER)
    code, _, err = _update(site, plain)
    assert code == 2 and "carries no TUF metadata" in err
