"""``dhi-offline demo``: the main job, end to end, on an embedded sample and no network.

1. Publish: a two-platform sample image with DHI-style signed attestations (tests, SBOM,
   provenance, vulnerabilities, VEX) is written to a local OCI layout.
2. Export: the layout is exported to a signed evidence bundle, as on a connected machine.
3. Verify: the evidence bundle is verified in a network namespace with no network at all
   (``unshare -n``, when the host allows it), policy ``dhi-default`` is applied, and the
   text report and a self-contained HTML report are produced.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.signing import generate_keypair, load_private_key
from dhi_offline.demo import SAMPLE_NAME, build_sample_layout
from dhi_offline.export.run import ExportConfig, ImageRequest, run_export
from dhi_offline.oci.source import LayoutSource
from dhi_offline.trust.keyring import Keyring, KeyringEntry
from dhi_offline.trust.keys import from_crypto
from dhi_offline.trust.shipped import shipped_trusted_root


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return (
            subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode
            == 0
        )
    except OSError:
        return False


def demo(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Where the demo writes its files.")
    ] = Path("bundles/demo"),
    output: Annotated[Path, typer.Option("--output", help="The demo's evidence bundle.")] = Path(
        "bundles/demo.dhi.tar.zst"
    ),
) -> None:
    """Publish a sample image, export it to an evidence bundle, verify it with no network."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    output.parent.mkdir(parents=True, exist_ok=True)

    typer.secho("1. publish: sample image and signed attestations -> OCI layout", bold=True)
    publisher = ec.generate_private_key(ec.SECP256R1())
    publisher_pub = workdir / "publisher.pub"
    publisher_pub.write_bytes(
        publisher.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    sample = build_sample_layout(workdir / "layout", publisher)
    typer.echo(
        f"   {SAMPLE_NAME}:{sample.tag} {sample.index_digest[:19]}…, "
        f"{len(sample.platforms)} platforms, {sample.attestations} attestations"
    )

    typer.secho("2. export (connected side) -> signed evidence bundle", bold=True)
    pair = generate_keypair(workdir / "exporter")
    now = datetime.now(UTC).replace(microsecond=0)
    result = run_export(
        [ImageRequest(f"{SAMPLE_NAME}:{sample.tag}", sample.tag, LayoutSource(sample.layout), ())],
        ExportConfig(
            output=output,
            signing_key=load_private_key(pair.private_key),
            keyring=Keyring(
                "demo publisher",
                (KeyringEntry("demo-publisher", from_crypto(publisher.public_key())),),
            ),
            trusted_root=shipped_trusted_root("production"),
            now=now,
            expires=timedelta(days=30),
            state_dir=workdir / "exporter-state",
            rekor=None,
        ),
        lambda kind, message: None,
    )
    typer.echo(
        f"   {result.bundle.path}: {len(result.verified)} attestations verified and packed, "
        f"{result.bundle.size} bytes, sha256 {result.bundle.sha256[:16]}…"
    )

    offline = _unshare_works()
    typer.secho(
        "3. import (air-gapped side) "
        + (
            "in a network namespace with no network (unshare -n)"
            if offline
            else "(unshare -n not permitted here: same checks, network present)"
        ),
        bold=True,
    )
    html = workdir / "report.html"
    argv = [
        sys.executable,
        "-m",
        "dhi_offline",
        "import",
        str(output),
        "--trust-exporter",
        str(pair.public_key),
        "--trust-publisher",
        str(publisher_pub),
        "--archive",
        str(workdir / "archive"),
        "--policy",
        "dhi-default",
        "--html",
        str(html),
    ]
    code = subprocess.run((["unshare", "-n"] if offline else []) + argv, check=False).returncode
    typer.echo(f"\nHTML audit report: {html}\nevidence archive:  {workdir / 'archive'}")
    if code != 0:
        raise typer.Exit(code)
