"""Import on the air-gapped host, end to end with bundles the export command wrote.

One test per attack at bundle level, each expecting the step that stops it.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.reader import open_bundle
from dhi_offline.bundle.signing import load_private_key, public_key_of
from dhi_offline.bundle.writer import write_bundle
from dhi_offline.demo import build_sample_layout
from dhi_offline.evidence.records import AttestationRecord, EvidenceIndex, record_id
from tests.bundle.helpers import Raw, compress, tar_bytes
from tests.support.sample import PRODUCTION_ROOT as ROOT
from tests.support.sample import export_argv, make_sample_site, public_pem
from tests.support.sample import run_cli as run


@dataclass
class Site:
    d: Path

    @property
    def bundle(self) -> Path:
        return self.d / "good.dhi.tar.zst"

    @property
    def archive(self) -> Path:
        return self.d / "archive"

    def verify(self, bundle: Path, *extra: str, command: str = "verify") -> tuple[int, str, str]:
        # `verify --archive DIR` requires an archive there; import creates one.
        use_archive = command != "verify" or (self.archive / "log.jsonl").exists()
        return run(
            [
                command,
                str(bundle),
                "--trust-exporter",
                str(self.d / "exporter.pub"),
                "--trust-publisher",
                str(self.d / "publisher.pub"),
                "--trusted-root",
                str(ROOT),
                *(["--archive", str(self.archive)] if use_archive else []),
                *extra,
            ]
        )

    def export(self, out: str, *extra: str, key: str = "publisher.pub") -> int:
        code, _, err = run(export_argv(self.d, out, "--format", "json", *extra, key=key))
        assert code in (0, 1), err
        return code


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    s = Site(make_sample_site(tmp_path, monkeypatch))
    assert s.export("good.dhi.tar.zst") == 0
    return s


def members_of(bundle: Path) -> list[tuple[str, bytes]]:
    raw = zstandard.ZstdDecompressor().decompress(bundle.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]  # type: ignore[union-attr]


def repack(
    src: Path, dst: Path, edit: Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]]
) -> Path:
    """Rewrite the tar without re-signing (an outsider's tampering)."""
    dst.write_bytes(compress(tar_bytes([Raw.regular(p, d) for p, d in edit(members_of(src))])))
    return dst


def resign(
    site: Site,
    dst: Path,
    edit_index: Callable[[EvidenceIndex, dict[str, bytes]], EvidenceIndex] | None = None,
    *,
    sequence: int = 7,
    expires_days: int = 30,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Re-pack with changed evidence, signed by the (trusted) exporter key: an insider."""
    from datetime import UTC, datetime, timedelta

    dest = site.d / f"x-{dst.name}"
    dest.mkdir()
    key = load_private_key(site.d / "exporter.pem")
    opened = open_bundle(site.bundle, trusted_exporters=lambda k: public_key_of(key), dest=dest)
    files = {m.path: (dest / m.path).read_bytes() for m in opened.manifest.members}
    index = EvidenceIndex.from_json_bytes(files["evidence/index.json"])
    if edit_index is not None:
        files["evidence/index.json"] = edit_index(index, files).to_json_bytes()
    files.update(extra or {})
    now = datetime.now(UTC).replace(microsecond=0)
    write_bundle(
        dst,
        tool_version="0.1.0",
        created=now,
        expires=now + timedelta(days=expires_days),
        sequence=sequence,
        images=opened.manifest.images,
        members=sorted(files.items()),
        private_key=key,
    )
    return dst


def assert_refused(result: tuple[int, str, str], code: int, needle: str) -> None:
    got, _, err = result
    assert got == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_good_bundle_verifies_imports_and_is_archived(site: Site) -> None:
    code, out, err = site.verify(site.bundle, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "PASS"
    plats = doc["images"][0]["platforms"]
    assert [p["platform"] for p in plats] == ["linux/amd64", "linux/arm64"]
    assert all(sum(a["verified"] for a in p["attestations"]) == 5 for p in plats)
    assert plats[0]["vulnerabilities"]["critical"] == 0 and plats[0]["suppressedByVex"] == [
        "CVE-2024-0001"
    ]
    code, out, _ = site.verify(site.bundle, "--format", "json", command="import")
    assert code == 0
    receipt = json.loads(out)["receipt"]
    assert receipt["verdict"] == "PASS" and receipt["logIndex"] == 0
    code, out, _ = run(["archive", "verify", "--archive", str(site.d / "archive")])
    assert code == 0 and "1 attempt(s)" in out


def test_manifest_byte_changed(site: Site) -> None:
    def edit(ms: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        name, data = ms[0]
        return [(name, data.replace(b'"sequence":1', b'"sequence":9')), *ms[1:]]

    bad = repack(site.bundle, site.d / "bad.dhi.tar.zst", edit)
    assert_refused(site.verify(bad), 1, "2 bundle signature: ")


def test_member_changed_or_added(site: Site) -> None:
    def change(ms: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [
            (p, d[:-1] + b" " if p.startswith("blobs/") and d.endswith(b"}") else d) for p, d in ms
        ]

    assert_refused(
        site.verify(repack(site.bundle, site.d / "c.dhi.tar.zst", change)), 1, "3 bundle members: "
    )

    def add(ms: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [*ms, ("evidence/extra.json", b"{}")]

    assert_refused(
        site.verify(repack(site.bundle, site.d / "a.dhi.tar.zst", add)), 1, "3 bundle members: "
    )


def test_signature_swapped(site: Site) -> None:
    assert site.export("second.dhi.tar.zst") == 0  # same exporter, sequence 2
    other_sig = members_of(site.d / "second.dhi.tar.zst")[1]

    def swap(ms: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [ms[0], other_sig, *ms[2:]]

    assert_refused(
        site.verify(repack(site.bundle, site.d / "s.dhi.tar.zst", swap)), 1, "2 bundle signature: "
    )


def test_unknown_exporter(site: Site) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    (site.d / "stranger.pub").write_bytes(public_pem(stranger))
    code, _, err = run(
        [
            "verify",
            str(site.bundle),
            "--trust-exporter",
            str(site.d / "stranger.pub"),
            "--trusted-root",
            str(ROOT),
        ]
    )
    assert code == 1 and "trusted exporter" in err and err.count("\n") == 1


def test_attacker_key_carried_in_bundle_needs_trust_bundle_keys(site: Site) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    (site.d / "attacker.pub").write_bytes(public_pem(attacker))
    build_sample_layout(site.d / "evil-layout", attacker)
    (site.d / "layout").rename(site.d / "good-layout")
    (site.d / "evil-layout").rename(site.d / "layout")
    assert site.export("evil.dhi.tar.zst", key="attacker.pub") == 0  # packs the attacker's keyring
    code, out, _ = site.verify(site.d / "evil.dhi.tar.zst", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    failed = [c for c in doc["checks"] if c["status"] == "failed"]
    assert len(failed) == 10 and all("pinned publisher key" in c["message"] for c in failed)
    code, out, _ = site.verify(
        site.d / "evil.dhi.tar.zst", "--format", "json", "--trust-bundle-keys"
    )
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "UNSAFE-PASS"
    assert any("--trust-bundle-keys" in u for u in doc["unsafe"])


def _swap_subjects(index: EvidenceIndex, files: dict[str, bytes]) -> EvidenceIndex:
    """Present the arm64 attestations as the amd64 ones and vice versa."""
    subjects = sorted({r.subject for r in index.attestations})
    other = {subjects[0]: subjects[1], subjects[1]: subjects[0]}
    swapped = []
    for r in index.attestations:
        s = other[r.subject]
        swapped.append(
            AttestationRecord(
                **{**r.__dict__, "subject": s, "id": record_id(r.layout, s, r.manifest, r.layer)}
            )
        )
    return EvidenceIndex(attestations=tuple(swapped), completions=index.completions)


def test_attestation_for_the_other_platform(site: Site) -> None:
    bad = resign(site, site.d / "mix.dhi.tar.zst", _swap_subjects)
    code, out, _ = site.verify(bad, "--format", "json")
    assert code == 1
    failed = [c for c in json.loads(out)["checks"] if c["status"] == "failed"]
    assert failed and all("subject" in c["message"] for c in failed)


def test_attestation_of_another_image(site: Site) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    del other_key
    # Image B: the same publisher, another image; its evidence presented for image A.
    b_key = load_private_key(site.d / "exporter.pem")
    del b_key

    def retarget(index: EvidenceIndex, files: dict[str, bytes]) -> EvidenceIndex:
        fake = "sha256:" + "ab" * 32
        return EvidenceIndex(
            attestations=tuple(
                AttestationRecord(**{**r.__dict__, "image": fake}) for r in index.attestations
            ),
            completions=index.completions,
        )

    bad = resign(site, site.d / "other.dhi.tar.zst", retarget)
    code, out, _ = site.verify(bad, "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert any(
        "not about any platform" in c["name"] for c in doc["checks"] if c["status"] == "failed"
    )
    assert all(not p["attestations"] for p in doc["images"][0]["platforms"])


def test_rollback_refused_then_allowed_and_recorded(site: Site) -> None:
    assert site.export("second.dhi.tar.zst") == 0  # sequence 2
    assert site.verify(site.d / "second.dhi.tar.zst", command="import")[0] == 0
    assert_refused(site.verify(site.bundle, command="import"), 1, "rollback")
    code, out, _ = site.verify(
        site.bundle, "--allow-rollback", "--format", "json", command="import"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["receipt"]["allowRollback"] is True
    assert any("--allow-rollback" in u for u in doc["unsafe"])


def test_expired_bundle(site: Site) -> None:
    assert_refused(site.verify(site.bundle, "--at", "2099-01-01T00:00:00Z"), 1, "expir")


def test_publisher_key_outside_its_window(site: Site) -> None:
    # A keyring pinning the publisher key as inactive since 2025 (as dhi-1 is): with no
    # verified signing time the evidence is judged at the reference time and refused.
    ring = {
        "name": "test",
        "keys": [
            {
                "name": "retired",
                "pem": (site.d / "publisher.pub").read_text(),
                "status": "inactive",
                "validFor": {"end": "2025-04-16T20:37:45Z"},
            }
        ],
    }
    (site.d / "ring.json").write_text(json.dumps(ring))
    code, out, _ = run(
        [
            "verify",
            str(site.bundle),
            "--trust-exporter",
            str(site.d / "exporter.pub"),
            "--trust-publisher",
            str(site.d / "ring.json"),
            "--trusted-root",
            str(ROOT),
            "--format",
            "json",
        ]
    )
    assert code == 1
    failed = [c for c in json.loads(out)["checks"] if c["status"] == "failed"]
    assert len(failed) == 10 and all(
        "retired" in c["message"] and "window" in c["message"] for c in failed
    )


def test_archive_detects_tampering(site: Site) -> None:
    assert site.verify(site.bundle, command="import")[0] == 0
    receipts = list((site.d / "archive" / "receipts").iterdir())
    receipts[0].write_text(receipts[0].read_text().replace("PASS", "PASS "))
    code, _, err = run(["archive", "verify", "--archive", str(site.d / "archive")])
    assert code == 1 and "receipt" in err
