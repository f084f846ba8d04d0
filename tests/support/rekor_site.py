"""A sample site whose publisher logs to a Rekor double served on loopback: bundles
exported from it carry checkpoints, inclusion proofs and consistency records."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from dhi_offline.cli.main import main
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.layout import OciLayoutWriter
from tests.support.publisher import CTRF_TESTS, TestPublisher, ctrf_tests, make_image
from tests.support.rekor_double import RekorDouble


def run(argv: list[str]) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def make_rekor_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, RekorDouble]:
    """The layout, publisher key and exporter key in ``tmp_path``, and the Rekor double."""
    monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(tmp_path / "state"))
    rekor = RekorDouble()
    publisher = TestPublisher(rekor=rekor)
    image = make_image("dhi.io/python")
    published = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    rekor.add_entry(b'{"unrelated": "entry"}')  # so a later equivocation leaves ours alone
    with OciLayoutWriter(tmp_path / "layout") as w:
        for blob in image.blobs:
            w.add_blob(blob.data, blob.media_type)
        w.add_manifest(image.manifest.data, mt.OCI_MANIFEST, in_index=False)
        w.add_manifest(image.index.data, mt.OCI_INDEX, tag="v1")
        for digest, (media_type, data) in published.objects().items():
            if media_type in mt.ALL_MANIFEST_TYPES:
                w.add_manifest(data, media_type)
            else:
                w.add_blob(data, media_type)
            del digest
    (tmp_path / "publisher.pub").write_bytes(publisher.public_key_pem)
    assert run(["keys", "generate", "--output", str(tmp_path / "exporter")])[0] == 0
    return tmp_path, rekor


def export(d: Path, url: str, out: str, exporter: str = "exporter") -> dict[str, object]:
    """Export the layout with Rekor at ``url``; the JSON summary."""
    code, stdout, err = run(
        [
            "export",
            f"oci-layout:{d / 'layout'}:v1",
            "--signing-key",
            str(d / f"{exporter}.pem"),
            "--key",
            str(d / "publisher.pub"),
            "--trusted-root",
            str(d / "root.json"),
            "--rekor-url",
            url,
            "-o",
            str(d / out),
            "--format",
            "json",
        ]
    )
    assert code == 0, err
    doc: dict[str, object] = json.loads(stdout)
    return doc


def do_import(d: Path, bundle: str) -> tuple[int, str, str]:
    """Import ``bundle`` into ``d/archive`` with ``d/policy.toml``, JSON report."""
    second = (
        ["--trust-exporter", str(d / "exporter2.pub")] if (d / "exporter2.pub").exists() else []
    )
    return run(
        [
            "import",
            str(d / bundle),
            *second,
            "--trust-exporter",
            str(d / "exporter.pub"),
            "--trust-publisher",
            str(d / "publisher.pub"),
            "--trusted-root",
            str(d / "root.json"),
            "--archive",
            str(d / "archive"),
            "--policy",
            str(d / "policy.toml"),
            "--format",
            "json",
        ]
    )
