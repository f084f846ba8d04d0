"""``push`` into a real internal registry (Debian docker-registry, no referrers API) and
``pull`` back out; what it writes is read back and checked independently.

Each test mirrors the sample image with ``skopeo copy --all`` (or deliberately does not),
runs the CLI in-process, and reads the registry with the project's client: the
publisher's manifests by digest, the referrers fallback index, cosign's ``.sig`` and
``.att`` tags (checked with ``cryptography`` directly), and the bundle artifact.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.reader import open_bundle
from dhi_offline.deliver import names
from dhi_offline.demo import build_sample_layout
from dhi_offline.evidence.dsse import pae
from dhi_offline.evidence.records import EvidenceIndex
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.content import referrers_tag
from dhi_offline.trust.keys import load_pem
from dhi_offline.verify import bundle as verify_bundle
from tests.deliver.conftest import NAME, REPOSITORY, Site
from tests.support.registry import build_image, fast_client
from tests.support.sample import export_argv, run_cli, trust_argv

pytestmark = pytest.mark.integration


def _json(data: bytes) -> Any:
    return json.loads(data)


def _client() -> RegistryClient:
    return fast_client()


def _site_public(site: Site) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(site.site_pub.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def _bundle_contents(site: Site) -> tuple[dict[str, str], EvidenceIndex, dict[str, bytes]]:
    """Platform -> digest, the evidence index, and every blob of the bundle."""
    opened = open_bundle(
        site.bundle,
        trusted_exporters=lambda _k: load_pem((site.d / "exporter.pub").read_bytes()),
        dest=Path(tempfile.mkdtemp(dir=site.d)),
    )
    platforms = {p.platform: p.digest for p in opened.manifest.images[0].platforms}
    blobs = {}
    for member in opened.manifest.members:
        if member.path.startswith("blobs/sha256/"):
            blobs["sha256:" + member.path.rsplit("/", 1)[1]] = opened.read_bytes(member.path)
    index = EvidenceIndex.from_json_bytes(opened.read_bytes("evidence/index.json"))
    return platforms, index, blobs


def _tag_layers(client: RegistryClient, site: Site, tag: str) -> list[dict[str, Any]]:
    found = client.get_tag(site.registry.host, REPOSITORY, tag)
    assert found is not None, f"tag {tag} missing"
    layers = _json(found.data)["layers"]
    assert isinstance(layers, list)
    return layers


def _signatures_of(client: RegistryClient, site: Site, digest: str) -> list[bytes]:
    """Payloads in the ``.sig`` tag of ``digest`` whose signature verifies with the site key."""
    found = client.get_tag(site.registry.host, REPOSITORY, names.signature_tag(digest))
    if found is None:
        return []
    good = []
    for layer in _json(found.data)["layers"]:
        payload = client.get_blob(site.registry.host, REPOSITORY, layer["digest"])
        signature = base64.b64decode(layer["annotations"][names.COSIGN_SIGNATURE_ANNOTATION])
        try:
            _site_public(site).verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except Exception:
            continue
        good.append(payload)
    return good


def _vsa_of(client: RegistryClient, site: Site, digest: str) -> dict[str, Any]:
    """The VSA statement in the ``.att`` tag of ``digest``, its DSSE signature checked."""
    layers = _tag_layers(client, site, names.attestation_tag(digest))
    vsas = [x for x in layers if x["annotations"].get("predicateType") == names.VSA_PREDICATE_TYPE]
    assert len(vsas) == 1, vsas
    envelope = _json(client.get_blob(site.registry.host, REPOSITORY, vsas[0]["digest"]))
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    _site_public(site).verify(
        signature, pae(envelope["payloadType"], payload), ec.ECDSA(hashes.SHA256())
    )
    statement = _json(payload)
    assert isinstance(statement, dict)
    return statement


def _tags(client: RegistryClient, site: Site) -> dict[str, str]:
    """Every tag of interest in the repository -> the digest it names (a snapshot)."""
    out: dict[str, str] = {}
    platforms, index, _ = _bundle_contents(site)
    digests = [*platforms.values(), *(r.manifest for r in index.attestations)]
    for digest in digests:
        for tag in (
            referrers_tag(digest),
            names.signature_tag(digest),
            names.attestation_tag(digest),
        ):
            found = client.get_tag(site.registry.host, REPOSITORY, tag)
            if found is not None:
                out[tag] = found.digest
    return out


@pytest.mark.parametrize("members", ["in memory", "packed"])
def test_push_writes_publisher_evidence_site_verdict_and_bundle(
    site: Site, members: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if members == "packed":
        # No memory budget: every small member of the verified bundle is read back from
        # the work directory's pack file (open_bundle's pack=True) while it is pushed.
        monkeypatch.setattr(verify_bundle, "MEMORY_BUDGET", 0)
    site.mirror()
    code, out, err = run_cli(site.push_argv())
    assert code == 0, err + out
    assert "push complete" in out
    client = _client()
    platforms, index, blobs = _bundle_contents(site)
    host = site.registry.host
    with client:
        top = client.get_tag(host, REPOSITORY, "3.13")
        assert top is not None
        index_digest = top.digest
        for platform, digest in platforms.items():
            # (b) the publisher's evidence, same digests, listed in the fallback index.
            listed = _json(client.get_tag(host, REPOSITORY, referrers_tag(digest)).data)  # type: ignore[union-attr]
            listed_digests = {m["digest"] for m in listed["manifests"]}
            mine = [r for r in index.attestations if r.subject == digest]
            assert len(mine) == 5
            for record in mine:
                assert record.manifest in listed_digests
                served = client.get_manifest(host, REPOSITORY, record.manifest)
                assert served.data == blobs[record.manifest]
                assert client.get_blob(host, REPOSITORY, record.layer) == blobs[record.layer]
                for sig in record.signatures:
                    # the cosign signature of the attestation: a referrer of it, unchanged
                    sig_listed = _json(
                        client.get_tag(host, REPOSITORY, referrers_tag(record.manifest)).data  # type: ignore[union-attr]
                    )
                    assert sig.manifest in {m["digest"] for m in sig_listed["manifests"]}
                    assert (
                        client.get_manifest(host, REPOSITORY, sig.manifest).data
                        == blobs[sig.manifest]
                    )
            # (c) the site's verdict: a signature over the digest ...
            payloads = _signatures_of(client, site, digest)
            assert len(payloads) == 1, platform
            critical = _json(payloads[0])["critical"]
            assert critical["image"]["docker-manifest-digest"] == digest
            assert critical["identity"]["docker-reference"] == f"{host}/{REPOSITORY}"
            # ... and a VSA in the .att tag and as a sigstore-bundle referrer.
            vsa = _vsa_of(client, site, digest)
            assert vsa["predicateType"] == names.VSA_PREDICATE_TYPE
            assert vsa["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
            predicate = vsa["predicate"]
            assert predicate["verificationResult"] == "PASSED"
            assert predicate["resourceUri"] == f"oci://{host}/{REPOSITORY}@{digest}"
            assert predicate["verifier"]["id"] == names.VERIFIER_ID
            assert predicate["policy"]["digest"]["sha256"]
            inputs = {a["digest"]["sha256"] for a in predicate["inputAttestations"]}
            assert inputs == {r.manifest.removeprefix("sha256:") for r in mine}
            bundles = [
                m for m in listed["manifests"] if m.get("artifactType") == mt.SIGSTORE_BUNDLE_V03
            ]
            assert len(bundles) == 1
            assert bundles[0]["annotations"][names.SIGSTORE_BUNDLE_PREDICATE_ANNOTATION] == (
                names.VSA_PREDICATE_TYPE
            )
        # The index digest gets its own verdict.
        assert _signatures_of(client, site, index_digest)
        assert _vsa_of(client, site, index_digest)["predicate"]["verificationResult"] == "PASSED"
        # (d) the bundle itself, tagged per exporter and sequence.
        exporter = load_pem((site.d / "exporter.pub").read_bytes()).key_id
        artifact = client.get_tag(host, "dhi/dhi-offline/bundles", f"{exporter[:16]}-1")
        assert artifact is not None
        doc = _json(artifact.data)
        assert doc["artifactType"] == names.BUNDLE_ARTIFACT_TYPE
        sha = hashlib.sha256(site.bundle.read_bytes()).hexdigest()
        assert doc["layers"][0]["digest"] == f"sha256:{sha}"


def test_second_push_changes_nothing(site: Site) -> None:
    site.mirror()
    code, _, err = run_cli(site.push_argv())
    assert code == 0, err
    with _client() as client:
        before = _tags(client, site)
    code, out, err = run_cli([*site.push_argv(), "--format", "json"])
    assert code == 0, err
    doc = json.loads(out)
    statuses = {a["status"] for a in doc["push"]["actions"]}
    assert "pushed" not in statuses, [a for a in doc["push"]["actions"] if a["status"] == "pushed"]
    assert statuses <= {"present", "skipped"}
    with _client() as client:
        assert _tags(client, site) == before


def test_missing_image_pushes_nothing(site: Site) -> None:
    code, out, _err = run_cli([*site.push_argv(), "--format", "json"])
    assert code == 1
    doc = json.loads(out)["push"]
    assert doc["stopped"]
    missing = [a for a in doc["actions"] if a["status"] == "missing"]
    assert len(missing) == 3  # the index and both platforms
    with _client() as client:
        platforms, _, _ = _bundle_contents(site)
        for digest in platforms.values():
            assert (
                client.get_tag(site.registry.host, REPOSITORY, names.signature_tag(digest)) is None
            )
            assert client.get_tag(site.registry.host, REPOSITORY, referrers_tag(digest)) is None


def test_allow_missing_pushes_evidence_before_the_image(site: Site) -> None:
    code, out, err = run_cli([*site.push_argv("--allow-missing"), "--format", "json"])
    assert code == 1, err  # still reported: the images are not there
    doc = json.loads(out)["push"]
    assert doc["stopped"] is None
    with _client() as client:
        platforms, _, _ = _bundle_contents(site)
        for digest in platforms.values():
            assert _signatures_of(client, site, digest)


def test_different_digest_under_the_tag_is_reported(site: Site, tmp_path: Path) -> None:
    other = build_image(tmp_path / "other", tag="3.13")
    site.mirror(other.layout)
    code, out, _err = run_cli([*site.push_argv(), "--format", "json"])
    assert code == 1
    actions = json.loads(out)["push"]["actions"]
    different = [a for a in actions if a["status"] == "different"]
    assert len(different) == 1
    assert other.index.digest in different[0]["detail"]


def test_refused_bundle_pushes_nothing(site: Site) -> None:
    site.mirror()
    data = bytearray(site.bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = site.d / "bad.dhi.tar.zst"
    bad.write_bytes(bytes(data))
    code, _out, err = run_cli(site.push_argv(bundle=bad))
    assert code == 1
    assert "push refused, nothing written" in err
    with _client() as client:
        platforms, _, _ = _bundle_contents(site)
        for digest in platforms.values():
            assert (
                client.get_tag(site.registry.host, REPOSITORY, names.signature_tag(digest)) is None
            )


def test_policy_failing_platform_gets_failed_vsa_and_no_signature(
    site: Site, tmp_path: Path
) -> None:
    d = site.d
    # A layout whose arm64 CTRF report has a failed test, signed by a new publisher key.
    publisher = ec.generate_private_key(ec.SECP256R1())
    (d / "publisher.pub").write_bytes(
        publisher.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    build_sample_layout(d / "failing", publisher, failing_tests=("linux/arm64",))
    argv = export_argv(d, "failing.dhi.tar.zst", "--name", NAME)
    argv[1] = f"oci-layout:{d / 'failing'}:3.13"
    code, _, err = run_cli(argv)
    assert code == 0, err
    site.mirror(d / "failing")
    failing = d / "failing.dhi.tar.zst"
    code, out, err = run_cli([*site.push_argv(bundle=failing), "--format", "json"])
    assert code == 1, err
    verdicts = {v["platform"]: v for v in json.loads(out)["push"]["verdicts"]}
    assert verdicts["linux/amd64"]["verificationResult"] == "PASSED"
    assert verdicts["linux/arm64"]["verificationResult"] == "FAILED"
    assert verdicts[None]["verificationResult"] == "FAILED"  # the index
    with _client() as client:
        amd64 = verdicts["linux/amd64"]["digest"]
        arm64 = verdicts["linux/arm64"]["digest"]
        assert _signatures_of(client, site, amd64)
        assert not _signatures_of(client, site, arm64)
        failed = _vsa_of(client, site, arm64)["predicate"]
        assert failed["verificationResult"] == "FAILED"
        assert "FAILED" in failed["verifiedLevels"]
        assert any(
            "tests" in r or "failed" in r for r in failed[names.BUNDLE_PREDICATE_FIELD]["reasons"]
        )


def test_unsafe_push_is_labelled_and_unsigned(site: Site) -> None:
    site.mirror()
    code, out, err = run_cli([*site.push_argv("--at", "2026-01-01T00:00:00Z")])
    # --at before the bundle was created: an unsafe switch, labelled, never signed.
    assert "UNSAFE" in out
    with _client() as client:
        platforms, _, _ = _bundle_contents(site)
        for digest in platforms.values():
            assert not _signatures_of(client, site, digest)
            predicate = _vsa_of(client, site, digest)["predicate"]
            assert any(
                level.startswith(names.UNSAFE_LEVEL_PREFIX) for level in predicate["verifiedLevels"]
            )
    del code, err


def test_pull_then_verify_offline(site: Site) -> None:
    site.mirror()
    code, out, err = run_cli([*site.push_argv(), "--format", "json"])
    assert code == 0, err
    reference = json.loads(out)["push"]["bundleReference"]
    pulled = site.d / "pulled.dhi.tar.zst"
    code, out, err = run_cli(["pull", reference, "-o", str(pulled)])
    assert code == 0, err
    assert pulled.read_bytes() == site.bundle.read_bytes()
    code, out, err = run_cli(["verify", str(pulled), *trust_argv(site.d)])
    assert code == 0, err + out
    assert "PASS" in out


def test_unsafe_push_after_a_clean_one_revokes_the_signature(site: Site) -> None:
    site.mirror()
    code, _, err = run_cli(site.push_argv())
    assert code == 0, err
    with _client() as client:
        platforms, _, _ = _bundle_contents(site)
        assert all(_signatures_of(client, site, d) for d in platforms.values())
    code, out, err = run_cli([*site.push_argv("--at", "2026-01-01T00:00:00Z"), "--format", "json"])
    revoked = [a for a in json.loads(out)["push"]["actions"] if a["status"] == "revoked"]
    assert len(revoked) == 3, err  # both platforms and the index
    with _client() as client:
        for digest in platforms.values():
            assert not _signatures_of(client, site, digest)
            levels = _vsa_of(client, site, digest)["predicate"]["verifiedLevels"]
            assert any(v.startswith(names.UNSAFE_LEVEL_PREFIX) for v in levels)


def test_export_keeps_the_config_blobs_of_evidence_manifests(site: Site) -> None:
    _, index, blobs = _bundle_contents(site)
    for record in index.attestations:
        for digest in (record.manifest, *(s.manifest for s in record.signatures)):
            config = _json(blobs[digest])["config"]["digest"]
            assert config in blobs, f"{digest}: config {config} not kept"


def test_a_bundle_without_a_config_blob_is_reported_not_pushed(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dhi_offline.deliver import push as push_module

    real = push_module._blob_or_empty
    _, index, blobs = _bundle_contents(site)
    victim = index.attestations[0]
    config = _json(blobs[victim.manifest])["config"]["digest"]
    layer = victim.layer

    def older_bundle(store: Any, digest: str) -> bytes | None:
        return None if digest == layer else real(store, digest)

    monkeypatch.setattr(push_module, "_blob_or_empty", older_bundle)
    site.mirror()
    code, out, _ = run_cli([*site.push_argv(), "--format", "json"])
    assert code == 1
    lacking = [a for a in json.loads(out)["push"]["actions"] if "lacks blob" in a["detail"]]
    assert [a["target"].rsplit("@", 1)[1] for a in lacking] == [victim.manifest]
    with _client() as client:
        assert client.manifest_exists(site.registry.host, REPOSITORY, victim.manifest) is None
    del config


def test_pull_refuses_what_is_not_a_bundle_and_unwritable_outputs(site: Site) -> None:
    site.mirror()
    image = f"{site.registry.host}/{REPOSITORY}:3.13"
    out = site.d / "x.dhi.tar.zst"
    code, _, err = run_cli(["pull", image, "-o", str(out)])
    assert code == 2
    assert "is not a dhi-offline bundle" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    code, stdout, err = run_cli([*site.push_argv(), "--format", "json"])
    assert code == 0, err
    reference = json.loads(stdout)["push"]["bundleReference"]
    code, _, err = run_cli(["pull", reference, "-o", "/proc/x.dhi.tar.zst"])  # never writable
    assert code == 2
    assert err.startswith("dhi-offline: error: cannot write /proc/x.dhi.tar.zst")
    assert "Traceback" not in err
    code, stdout, err = run_cli(["pull", reference, "-o", str(out), "--format", "json"])
    assert code == 0, err
    assert json.loads(stdout)["sha256"] == hashlib.sha256(site.bundle.read_bytes()).hexdigest()
    assert [p.name for p in site.d.glob(".x.dhi.tar.zst.*")] == []  # no partial file left


def test_push_from_the_archive(site: Site) -> None:
    site.mirror()
    code, _, err = run_cli(["import", str(site.bundle), *trust_argv(site.d)])
    assert code == 0, err
    site.bundle.unlink()  # the archive's copy is what gets pushed
    argv = site.push_argv("--format", "json")
    argv.remove(str(site.bundle))
    code, out, err = run_cli([*argv, "--from-archive", "0"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "PASS"
    assert all(v["verificationResult"] == "PASSED" for v in doc["push"]["verdicts"])
    code, _, err = run_cli([*argv, "--from-archive", "7"])
    assert code == 2
    assert "no import matches '7'" in err


def test_a_failed_verdict_creates_no_empty_signature_tag(site: Site) -> None:
    site.mirror()
    code, out, _ = run_cli([*site.push_argv("--at", "2026-01-01T00:00:00Z"), "--format", "json"])
    skipped = [a for a in json.loads(out)["push"]["actions"] if a["kind"] == "signature"]
    assert {a["status"] for a in skipped} == {"skipped"}
    with _client() as client:
        platforms, _, _ = _bundle_contents(site)
        for digest in platforms.values():
            assert (
                client.get_tag(site.registry.host, REPOSITORY, names.signature_tag(digest)) is None
            )
    del code


def test_json_documents_match_docs(site: Site) -> None:
    from tests.cli.test_json_output import documented
    from tests.report.test_json import _paths

    open_objects = {"verification"}
    site.mirror()
    code, out, err = run_cli([*site.push_argv(), "--format", "json"])
    assert code == 0, err
    pushed = json.loads(out)
    bad = site.d / "bad.dhi.tar.zst"
    bad.write_bytes(site.bundle.read_bytes()[:-100])
    code, out, err = run_cli([*site.push_argv(bundle=bad), "--format", "json"])
    assert code == 1, err
    refused = json.loads(out)
    assert refused["push"] is None and refused["verdict"] == "FAIL"
    found = _paths(pushed, open_objects=open_objects) | _paths(refused, open_objects=open_objects)
    assert found == documented("push")
    code, out, err = run_cli(
        [
            "pull",
            pushed["push"]["bundleReference"],
            "-o",
            str(site.d / "p.dhi.tar.zst"),
            "--format",
            "json",
        ]
    )
    assert code == 0, err
    assert _paths(json.loads(out), open_objects=set()) == documented("pull")
