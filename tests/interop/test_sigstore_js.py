"""Another Sigstore client accepts the sigstore bundles an export writes.

``dhi-offline export`` writes ``evidence/sigstore/<id>.sigstore.json`` (bundle v0.3) for
every Rekor-backed cosign signature of a DHI-style attestation, so that other clients
can check the same evidence. Here sigstore-js (``@sigstore/verify``, pinned in
``js/package-lock.json``) verifies each one, given the Rekor double's trusted root and
the publisher's public key, with the simple-signing payload as the artifact; and
refuses a copy with one flipped signature byte, and the wrong artifact.

The export reads an OCI layout (no registry needed) and completes the SET-only entries
from a served Rekor double. ``npm ci`` runs once into ``js/node_modules`` when it is
missing; without node/npm, or when the install fails, the test is skipped.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from dhi_offline.bundle.reader import OpenedBundle, open_bundle
from dhi_offline.bundle.signing import generate_keypair
from dhi_offline.cli.main import main
from dhi_offline.oci.layout import OciLayoutWriter
from dhi_offline.trust.keys import load_pem
from tests.interop.sigstore_js import JS, installed_node
from tests.support.publisher import (
    CTRF_TESTS,
    CYCLONEDX,
    OCI_INDEX,
    OCI_MANIFEST,
    SLSA_PROVENANCE_V1,
    Published,
    TestPublisher,
    ctrf_tests,
    cyclonedx_sbom,
    make_image,
    slsa_provenance_v1,
)
from tests.support.rekor_double import RekorDouble

pytestmark = pytest.mark.integration

LOG_TIME = 1_775_000_000


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with ``js/node_modules`` installed from the lock file."""
    return installed_node()


@dataclass
class Exported:
    """An export's extracted bundle and what the JS verifier is given."""

    opened: OpenedBundle
    trusted_root: Path
    publisher_pub: Path
    bundles: list[Path]


def _write_layout(path: Path, published: list[Published], publisher: TestPublisher) -> None:
    image = make_image("dhi.io/python", seed="interop")
    writer = OciLayoutWriter(path)
    for blob in image.blobs:
        writer.add_blob(blob.data, blob.media_type)
    writer.add_manifest(image.manifest.data, OCI_MANIFEST, in_index=False)
    writer.add_manifest(image.index.data, OCI_INDEX, tag="3.13")
    for ptype, predicate in (
        (CTRF_TESTS, ctrf_tests()),
        (CYCLONEDX, cyclonedx_sbom(image.ref)),
        (SLSA_PROVENANCE_V1, slsa_provenance_v1(image.ref)),
    ):
        item = publisher.dhi_attestation(image.ref, ptype, predicate)
        published.append(item)
        for blob in item.blobs:
            writer.add_blob(blob.data, blob.media_type)
        for m in item.manifests:
            writer.add_manifest(m.data, m.media_type)
    writer.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    base = tmp_path_factory.mktemp("interop")
    rekor = RekorDouble(clock=lambda: LOG_TIME)
    rekor.add_entry(b'{"someone":"else"}')
    # Named by its public URL, as production roots name Rekor: sigstore-js matches the
    # checkpoint signer name ("rekor.double.test") against the log's baseUrl.
    (base / "tr.json").write_bytes(rekor.trusted_root_json())
    publisher = TestPublisher(rekor=rekor)
    (base / "publisher.pub").write_bytes(publisher.public_key_pem)
    generate_keypair(base / "exporter")
    published: list[Published] = []
    _write_layout(base / "layout", published, publisher)
    rekor.add_entry(b'{"someone":"else, later"}')
    out = base / "interop.dhi.tar.zst"
    with pytest.MonkeyPatch.context() as mp, rekor.serve() as url:
        mp.setenv("DHI_OFFLINE_STATE_DIR", str(base / "state"))
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        argv = [
            "export",
            f"oci-layout:{base / 'layout'}:3.13",
            "--signing-key",
            str(base / "exporter.pem"),
            "--key",
            str(base / "publisher.pub"),
            "--trusted-root",
            str(base / "tr.json"),
            "--rekor-url",
            url,
            "-o",
            str(out),
            "--format",
            "json",
        ]
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(argv)
    assert code == 0, stderr.getvalue()
    assert json.loads(stdout.getvalue())["tlog"]["completedFromRekor"] == len(published)
    exporter = load_pem((base / "exporter.pub").read_bytes())
    dest = base / "extracted"
    dest.mkdir()
    opened = open_bundle(
        out,
        trusted_exporters=lambda kid: exporter if kid == exporter.key_id else None,
        dest=dest,
    )
    bundles = sorted((dest / "evidence" / "sigstore").glob("*.sigstore.json"))
    assert len(bundles) == len(published)
    yield Exported(opened, dest / "keys" / "trusted_root.json", base / "publisher.pub", bundles)


def _artifact(exported: Exported, bundle: Path) -> Path:
    """The simple-signing payload the bundle's signature is over, found through the
    evidence index (record id -> its signature layer), not through the bundle."""
    record_id = bundle.name.removesuffix(".sigstore.json")
    index = json.loads((exported.opened.root / "evidence" / "index.json").read_bytes())
    (record,) = [r for r in index["attestations"] if r["id"] == record_id]
    (signature,) = record["signatures"]
    path: Path = exported.opened.root / "blobs" / "sha256" / signature["layer"].split(":", 1)[1]
    assert path.is_file()
    return path


def _verify_js(
    node: str, exported: Exported, bundle: Path, artifact: Path, key: Path | None = None
) -> tuple[int, str]:
    done = subprocess.run(
        [
            node,
            str(JS / "verify.mjs"),
            str(bundle),
            str(exported.trusted_root),
            str(key or exported.publisher_pub),
            str(artifact),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def test_sigstore_js_verifies_every_exported_bundle(node: str, exported: Exported) -> None:
    for bundle in exported.bundles:
        doc = json.loads(bundle.read_bytes())
        assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        assert "inclusionProof" in doc["verificationMaterial"]["tlogEntries"][0]
        code, output = _verify_js(node, exported, bundle, _artifact(exported, bundle))
        assert code == 0, output
        assert output.startswith("verified:")


def test_sigstore_js_refuses_a_flipped_signature_byte(
    node: str, exported: Exported, tmp_path: Path
) -> None:
    bundle = exported.bundles[0]
    doc = json.loads(bundle.read_bytes())
    sig = bytearray(base64.b64decode(doc["messageSignature"]["signature"]))
    sig[-1] ^= 0x01
    doc["messageSignature"]["signature"] = base64.b64encode(bytes(sig)).decode()
    tampered = tmp_path / bundle.name
    tampered.write_text(json.dumps(doc))
    code, output = _verify_js(node, exported, tampered, _artifact(exported, bundle))
    assert code == 1, output
    assert output.startswith("refused:")


def test_sigstore_js_refuses_another_artifact(
    node: str, exported: Exported, tmp_path: Path
) -> None:
    first, second = exported.bundles[:2]
    code, output = _verify_js(node, exported, first, _artifact(exported, second))
    assert code == 1, output
    assert output.startswith("refused:")


def test_sigstore_js_refuses_another_key(node: str, exported: Exported, tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(TestPublisher().public_key_pem)
    bundle = exported.bundles[0]
    code, output = _verify_js(node, exported, bundle, _artifact(exported, bundle), key=other)
    assert code == 1, output
    assert output.startswith("refused:")
