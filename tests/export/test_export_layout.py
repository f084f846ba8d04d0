"""Export from an OCI layout (no registry): contents, determinism, failure handling."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.reader import inspect_bundle
from tests.support.sample import PRODUCTION_ROOT as ROOT
from tests.support.sample import export_argv as sample_export_argv
from tests.support.sample import make_sample_site
from tests.support.sample import run_cli as run


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_sample_site(tmp_path, monkeypatch)


def export_argv(d: Path, out: str, *extra: str) -> list[str]:
    return sample_export_argv(d, out, "--format", "json", *extra)


def test_export_json_summary_and_manifest(sample: Path) -> None:
    code, out, err = run(export_argv(sample, "a.dhi.tar.zst"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["attestations"] == {
        "verified": 10,
        "failed": 0,
        "byPredicateType": {
            "https://cyclonedx.org/bom/v1.6": 2,
            "https://in-toto.io/attestation/vulns/v0.1": 2,
            "https://openvex.dev/ns/v0.2.0": 2,
            "https://scout.docker.com/tests/v0.1": 2,
            "https://slsa.dev/provenance/v1": 2,
        },
    }
    assert doc["tlog"]["absent"] == 10
    assert [p["platform"] for p in doc["images"][0]["platforms"]] == ["linux/amd64", "linux/arm64"]
    manifest = inspect_bundle(sample / "a.dhi.tar.zst")
    assert manifest.sequence == doc["sequence"] == 1
    paths = {m.path for m in manifest.members}
    assert {"evidence/index.json", "keys/publisher-keyring.json", "keys/trusted_root.json"} <= paths
    assert sum(1 for p in paths if p.startswith("blobs/sha256/")) >= 1 + 2 + 10 * 4


def test_sequence_grows_per_exporter_key(sample: Path) -> None:
    assert run(export_argv(sample, "a.dhi.tar.zst"))[0] == 0
    assert run(export_argv(sample, "b.dhi.tar.zst"))[0] == 0
    assert inspect_bundle(sample / "b.dhi.tar.zst").sequence == 2


def test_same_inputs_give_byte_identical_bundles(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(sample / "state-a"))
    assert run(export_argv(sample, "a.dhi.tar.zst"))[0] == 0
    monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(sample / "state-b"))  # same sequence number
    assert run(export_argv(sample, "b.dhi.tar.zst"))[0] == 0
    assert (sample / "a.dhi.tar.zst").read_bytes() == (sample / "b.dhi.tar.zst").read_bytes()


def test_unpinned_publisher_key_leaves_evidence_out_and_exits_1(sample: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (sample / "other.pub").write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    argv = export_argv(sample, "c.dhi.tar.zst")
    argv[argv.index("--key") + 1] = str(sample / "other.pub")
    code, out, _ = run(argv)
    assert code == 1
    doc = json.loads(out)
    assert doc["attestations"]["verified"] == 0 and doc["attestations"]["failed"] == 10
    assert "pinned publisher key" in doc["failures"][0]["reason"]
    code, out, _ = run([*argv[:-2], "--format", "json", "--allow-unverified"])
    assert code == 0
    assert json.loads(out)["flags"] == ["allow-unverified"]
    assert inspect_bundle(sample / "c.dhi.tar.zst").flags == ("allow-unverified",)


def test_unreadable_inputs_leave_nothing_behind(sample: Path) -> None:
    code, _, err = run(
        [*export_argv(sample, "d.dhi.tar.zst")[:2], "--signing-key", str(sample / "nope.pem")]
    )
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(
        [
            "export",
            f"oci-layout:{sample / 'missing'}",
            "--signing-key",
            str(sample / "exporter.pem"),
            "-o",
            str(sample / "e.dhi.tar.zst"),
            "--no-rekor",
            "--trusted-root",
            str(ROOT),
        ]
    )
    assert code == 2 and "Traceback" not in err
    assert not (sample / "d.dhi.tar.zst").exists() and not (sample / "e.dhi.tar.zst").exists()
    assert not [p for p in os.listdir(sample) if p.startswith(".") and "tmp" in p]


def test_failed_export_removes_the_directories_it_created(sample: Path) -> None:
    argv = export_argv(sample, "new/sub/x.dhi.tar.zst")
    argv[1] = f"oci-layout:{sample / 'layout'}:no-such-tag"
    code, _, err = run(argv)
    assert code == 2 and err.count("\n") == 1 and "no-such-tag" in err
    assert not (sample / "new").exists()


@pytest.mark.parametrize("jobs", ["0", "65", "-1"])
def test_jobs_out_of_range_is_a_usage_error(sample: Path, jobs: str) -> None:
    code, _, err = run(export_argv(sample, "j/x.dhi.tar.zst", "--jobs", jobs))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"--jobs must be between 1 and 64, got {jobs}" in err
    assert not (sample / "j").exists()


def test_jobs_one_and_sixty_four_give_the_same_bundle(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    for name, jobs in (("a", ["-j", "1"]), ("b", ["--jobs", "64"])):
        monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(sample / f"state-{name}"))
        code, _, err = run(export_argv(sample, f"{name}.dhi.tar.zst", *jobs))
        assert code == 0, err
    assert (sample / "a.dhi.tar.zst").read_bytes() == (sample / "b.dhi.tar.zst").read_bytes()


def test_registry_text_is_printed_literally_not_as_markup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A predicate type is registry content: "[/]" in it crashed the summary (rich markup).
    from dhi_offline import demo

    odd = "https://example.com/odd[/]type[bold]x"
    real = demo._predicates
    monkeypatch.setattr(demo, "_predicates", lambda *a, **k: [*real(*a, **k), (odd, {"k": 1})])
    site = make_sample_site(tmp_path, monkeypatch)
    code, out, err = run(sample_export_argv(site, "m.dhi.tar.zst"))
    assert code == 0, err
    assert odd in out
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (site / "other.pub").write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    code, out, err = run(sample_export_argv(site, "n.dhi.tar.zst", key="other.pub"))
    assert code == 1
    assert "NOT VERIFIED:" in err and "internal error" not in err
