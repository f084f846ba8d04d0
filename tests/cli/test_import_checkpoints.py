"""Checkpoints across imports: a log that grows is followed, a log that forks is refused."""

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
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, RekorDouble]:
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


def test_growing_log_is_followed_and_forked_log_refused(
    world: tuple[Path, RekorDouble], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, rekor = world
    (d / "policy.toml").write_text("[attestations]\nrequired = ['tests']\n")
    with rekor.serve() as url:
        (d / "root.json").write_bytes(rekor.trusted_root_json())
        first = export(d, url, "one.dhi.tar.zst")
        assert first["tlog"]["inclusion-proof"] == 1  # type: ignore[index]
        code, out, err = do_import(d, "one.dhi.tar.zst")
        assert code == 0, err

        # The log grows; the same exporter's next bundle carries a consistency proof.
        for i in range(5):
            rekor.add_entry(json.dumps({"later": i}).encode())
        export(d, url, "two.dhi.tar.zst")
        code, out, err = do_import(d, "two.dhi.tar.zst")
        assert code == 0, err
        consistency = [c for c in json.loads(out)["checks"] if c["step"] == "4 consistency"]
        assert len(consistency) == 1 and consistency[0]["status"] == "passed"

        # The log now shows a different tree of the same size (same key): a fork. Another
        # trusted exporter, with no memory of the earlier tree, packs it; the host refuses.
        rekor.present(rekor.equivocate())
        monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(d / "fresh-state"))
        assert run(["keys", "generate", "--output", str(d / "exporter2")])[0] == 0
        export(d, url, "three.dhi.tar.zst", exporter="exporter2")
        code, _, err = do_import(d, "three.dhi.tar.zst")
    assert code == 1
    assert "forked" in err and err.count("\n") == 1 and "Traceback" not in err
