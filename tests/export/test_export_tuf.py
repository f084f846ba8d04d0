"""``export --tuf-metadata DIR`` carries the TUF chain; ``trust update-root``,
``verify`` and ``import`` apply it on the host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dhi_offline.bundle import layout
from dhi_offline.bundle.reader import inspect_bundle
from dhi_offline.trust.tuf_store import TufStore
from tests.bundle.helpers import tar_listing
from tests.support.sample import export_argv, make_sample_site
from tests.support.sample import run_cli as run
from tests.trust.tuf_repo import TRUSTED_ROOT, TufRepo, seed_host


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_sample_site(tmp_path, monkeypatch)


@pytest.fixture
def repo(site: Path) -> TufRepo:
    r = TufRepo()
    seed_host(site / "config", r)
    r.new_root(rotate_root=True)
    r.new_root(rotate_timestamp=True)
    r.publish({"trusted_root.json": TRUSTED_ROOT, "signing_config.v0.2.json": b"{}"})
    r.write(site / "tuf-repo")
    return r


def _host_argv(site: Path) -> list[str]:
    # No --trusted-root: the bundle's TUF metadata (or the pinned root) is used.
    return [
        "--trust-exporter",
        str(site / "exporter.pub"),
        "--trust-publisher",
        str(site / "publisher.pub"),
    ]


def _export(site: Path, name: str, *extra: str) -> Path:
    code, _, err = run(export_argv(site, name, "--tuf-metadata", str(site / "tuf-repo"), *extra))
    assert code == 0, err
    return site / name


def test_export_carries_the_chain_and_update_root_pins_it(site: Path, repo: TufRepo) -> None:
    bundle = _export(site, "tuf.dhi.tar.zst")
    names = tar_listing(bundle)
    tuf = [n for n in names if n.startswith("tuf/")]
    assert tuf == [
        "tuf/root/1.root.json",
        "tuf/root/2.root.json",
        "tuf/root/3.root.json",
        "tuf/snapshot.json",
        "tuf/targets.json",
        "tuf/targets/signing_config.v0.2.json",
        "tuf/targets/trusted_root.json",
        "tuf/timestamp.json",
    ]
    assert layout.TRUSTED_ROOT in names
    assert inspect_bundle(bundle).format_version == 2
    code, out, err = run(
        ["trust", "update-root", str(bundle), "--trust-exporter", str(site / "exporter.pub")]
    )
    assert code == 0, err
    assert out.startswith("trusted root updated through TUF: root v1 -> v3, targets v1 (sha256 ")
    pin = TufStore(site / "config").load("production")
    assert pin.signing_config == b"{}" and pin.signing_config_name == "signing_config.v0.2.json"


def test_tuf_root_from_skips_older_roots(site: Path, repo: TufRepo) -> None:
    bundle = _export(site, "tuf.dhi.tar.zst", "--tuf-root-from", "2")
    assert [n for n in tar_listing(bundle) if n.startswith("tuf/root/")] == [
        "tuf/root/2.root.json",
        "tuf/root/3.root.json",
    ]
    code, _, err = run(
        ["trust", "update-root", str(bundle), "--trust-exporter", str(site / "exporter.pub")]
    )
    assert code == 0, err


def test_export_refuses_a_broken_repository(site: Path, repo: TufRepo) -> None:
    target = next((site / "tuf-repo" / "targets").glob("*.trusted_root.json"))
    target.write_bytes(target.read_bytes() + b" ")
    code, _, err = run(
        export_argv(site, "bad.dhi.tar.zst", "--tuf-metadata", str(site / "tuf-repo"))
    )
    assert code == 1
    assert "TUF: trusted_root.json differs from the length or hashes in targets v1" in err
    assert not (site / "bad.dhi.tar.zst").exists()


def test_export_without_tuf_stays_version_1(site: Path) -> None:
    code, _, err = run(export_argv(site, "plain.dhi.tar.zst"))
    assert code == 0, err
    assert inspect_bundle(site / "plain.dhi.tar.zst").format_version == 1
    assert not [n for n in tar_listing(site / "plain.dhi.tar.zst") if n.startswith("tuf/")]


def test_verify_uses_the_bundle_root_without_pinning(site: Path, repo: TufRepo) -> None:
    bundle = _export(site, "tuf.dhi.tar.zst")
    code, out, err = run(["verify", str(bundle), *_host_argv(site), "--format", "json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["trust"]["trustedRoot"] == (
        "Sigstore TUF (production, root v3, targets v1, from this bundle)"
    )
    assert any("used for this verification only" in w for w in report["warnings"])
    assert TufStore(site / "config").load("production").trusted_root is None


def test_import_pins_after_recording(site: Path, repo: TufRepo) -> None:
    bundle = _export(site, "tuf.dhi.tar.zst")
    code, out, err = run(["import", str(bundle), *_host_argv(site), "--format", "json"])
    assert code == 0, err
    report = json.loads(out)
    assert any("trusted root pinned through TUF: root v3, targets v1" in n for n in report["notes"])
    pin = TufStore(site / "config").load("production")
    assert (pin.root_version, pin.targets_version) == (3, 1)
    # The next verification of a plain bundle uses the pinned root, and says so.
    code, _, err = run(export_argv(site, "plain.dhi.tar.zst"))
    assert code == 0, err
    code, out, err = run(
        ["verify", str(site / "plain.dhi.tar.zst"), *_host_argv(site), "--format", "json"]
    )
    assert code == 0, err
    assert json.loads(out)["trust"]["trustedRoot"].startswith(
        "Sigstore TUF (production, root v3, targets v1, updated "
    )


def test_import_refuses_a_bundle_whose_chain_fails(site: Path, repo: TufRepo) -> None:
    bundle = _export(site, "tuf.dhi.tar.zst")
    seed_host(site / "config", TufRepo())  # a host that pinned another repository
    state = (site / "config" / "tuf" / "production.json").read_bytes()
    code, out, _ = run(["import", str(bundle), *_host_argv(site), "--format", "json"])
    assert code == 1
    report = json.loads(out)
    assert report["refusal"]["step"] == "TUF"
    assert report["refusal"]["reason"].startswith("root v2 has 0 of 2 required signatures")
    assert (site / "config" / "tuf" / "production.json").read_bytes() == state


def test_trusted_root_option_wins_over_the_bundle(site: Path, repo: TufRepo) -> None:
    bundle = _export(site, "tuf.dhi.tar.zst")
    seed_host(site / "config", TufRepo())  # the chain would fail
    root = site / "root.json"
    root.write_bytes(TRUSTED_ROOT)
    code, out, err = run(
        ["verify", str(bundle), *_host_argv(site), "--trusted-root", str(root), "--format", "json"]
    )
    assert code == 0, err
    assert json.loads(out)["trust"]["trustedRoot"] == f"given with --trusted-root {root}"
