"""``dhi-offline attest``: the offline twin of ``docker scout attest list/get``.

Both commands verify the whole bundle first and print only attestations that verified.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.archive.store import Archive
from dhi_offline.cli.options import (
    AtOpt,
    BundleArg,
    PlatformOpt,
    TrustBundleKeysOpt,
    TrustedRootOpt,
    TrustExporterOpt,
    TrustOptions,
    TrustPublisherOpt,
)
from dhi_offline.cli.state import default_data_dir
from dhi_offline.cli.verify import host_run
from dhi_offline.errors import UsageError
from dhi_offline.host import session
from dhi_offline.verify.attestation import AttestationResult
from dhi_offline.verify.bundle import VerifiedBundle


class ListFormat(StrEnum):
    """Output formats of ``attest list``."""

    text = "text"
    json = "json"


app = typer.Typer(help="List and read verified attestations of a bundle.", no_args_is_help=True)


def _verified(
    bundle: Path,
    trust: TrustOptions,
    at: str | None,
    workdir: Path,
    keep: Callable[[str, AttestationResult], bool] | None = None,
) -> VerifiedBundle:
    """Verify ``bundle``; keep whole the statements ``keep`` accepts."""
    run = host_run(trust, policy=None, at=at, keep_statements=False if keep is None else keep)
    result = session.verify(
        bundle, run, Archive(default_data_dir()), explicit=False, workdir=workdir
    )
    return session.require_verified(result)


def _names(image: str, reference: str, digest: str) -> bool:
    """Whether the IMAGE argument names this image: its reference (or a suffix after a
    '/'), or its digest."""
    return image in (reference, digest) or reference.endswith(f"/{image}")


def _select(verified: VerifiedBundle, image: str, platform: str | None) -> list[AttestationResult]:
    """Verified attestations of IMAGE (reference, or index/manifest digest) and platform."""
    images = [i for i in verified.report.images if _names(image, i.reference, i.digest)]
    if not images:
        known = ", ".join(i.reference for i in verified.report.images)
        raise UsageError(f"image {image!r} is not in the bundle (it has: {known})")
    out: list[AttestationResult] = []
    for img in images:
        for plat in img.platforms:
            if platform is not None and plat.platform != platform:
                continue
            out.extend(
                verified.results[a.id]
                for a in plat.attestations
                if a.verified and a.id in verified.results
            )
    if (
        platform is not None
        and not out
        and not any(p.platform == platform for i in images for p in i.platforms)
    ):
        raise UsageError(f"platform {platform} is not in the bundle for {image}")
    return out


@app.command("list")
def list_attestations(
    bundle: BundleArg,
    image: Annotated[str, typer.Argument(help="Image reference as exported, or its digest.")],
    platform: PlatformOpt = None,
    output: Annotated[ListFormat, typer.Option("--format", help="text or json.")] = ListFormat.text,
    trust_exporter: TrustExporterOpt = None,
    trust_publisher: TrustPublisherOpt = None,
    trusted_root: TrustedRootOpt = None,
    trust_bundle_keys: TrustBundleKeysOpt = False,
    at: AtOpt = None,
) -> None:
    """List the verified attestations of an image (predicate type, platform, signer, log)."""
    workdir = Path(tempfile.mkdtemp(prefix="dhi-offline-"))
    try:
        trust = TrustOptions.of(trust_exporter, trust_publisher, trusted_root, trust_bundle_keys)
        verified = _verified(bundle, trust, at, workdir)
        results = _select(verified, image, platform)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [
        {
            "predicateType": r.predicate_type,
            "platform": r.record.platform,
            "subject": r.record.subject,
            "layout": r.record.layout,
            "signer": r.signer,
            "keyId": r.key_id,
            "tlog": r.tlog_status,
            "id": r.record.id,
        }
        for r in results
    ]
    if output is ListFormat.json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    for row in rows:
        typer.echo(
            f"{row['platform'] or '-':<14} {row['predicateType']:<46} "
            f"{row['signer']:<10} {row['tlog']}"
        )


@app.command("get")
def get(
    bundle: BundleArg,
    image: Annotated[str, typer.Argument(help="Image reference as exported, or its digest.")],
    predicate_type: Annotated[str, typer.Option("--predicate-type", help="Predicate type URI.")],
    platform: PlatformOpt = None,
    predicate: Annotated[
        bool, typer.Option("--predicate", help="Print the predicate only, without the statement.")
    ] = False,
    trust_exporter: TrustExporterOpt = None,
    trust_publisher: TrustPublisherOpt = None,
    trusted_root: TrustedRootOpt = None,
    trust_bundle_keys: TrustBundleKeysOpt = False,
    at: AtOpt = None,
) -> None:
    """Print a verified in-toto statement (or its predicate) of an image, as JSON."""
    workdir = Path(tempfile.mkdtemp(prefix="dhi-offline-"))
    try:
        trust = TrustOptions.of(trust_exporter, trust_publisher, trusted_root, trust_bundle_keys)
        # Only the statements this command may print are kept whole (an SBOM each).
        verified = _verified(
            bundle,
            trust,
            at,
            workdir,
            keep=lambda reference, r: (
                r.predicate_type == predicate_type
                and _names(image, reference, r.record.image)
                and (platform is None or r.record.platform == platform)
            ),
        )
        results = [
            r for r in _select(verified, image, platform) if r.predicate_type == predicate_type
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not results:
        raise UsageError(
            f"no verified {predicate_type} attestation for {image}"
            + (f" {platform}" if platform else "")
        )
    if len({r.record.subject for r in results}) > 1:
        raise UsageError("the image has several platforms: choose one with --platform")
    for r in results:
        doc = r.statement.predicate if predicate else json.loads(r.statement.raw)
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
