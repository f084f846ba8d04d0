"""``dhi-offline attest``: the offline twin of ``docker scout attest list/get``.

Both commands verify the whole evidence bundle first and print only attestations that
verified.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.archive.store import Archive
from dhi_offline.cli.options import (
    AtOpt,
    BundleArg,
    ListFormat,
    ListFormatOpt,
    PlatformOpt,
    TrustBundleKeysOpt,
    TrustedRootOpt,
    TrustExporterOpt,
    TrustOptions,
    TrustPublisherOpt,
    hidden_json,
)
from dhi_offline.cli.state import default_data_dir
from dhi_offline.cli.verify import host_run
from dhi_offline.errors import UsageError
from dhi_offline.host import session
from dhi_offline.report.documents import attestation_rows
from dhi_offline.verify.attestation import AttestationResult
from dhi_offline.verify.bundle import VerifiedEvidenceBundle
from dhi_offline.verify.policy import ALIASES
from dhi_offline.verify.result import ImageView

app = typer.Typer(
    help="List and read verified attestations of an evidence bundle.", no_args_is_help=True
)


def _verified(
    bundle: Path,
    trust: TrustOptions,
    at: str | None,
    workdir: Path,
    keep: Callable[[str, AttestationResult], bool] | None = None,
) -> VerifiedEvidenceBundle:
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


def _images(verified: VerifiedEvidenceBundle, image: str) -> list[ImageView]:
    images = [i for i in verified.report.images if _names(image, i.reference, i.digest)]
    if not images:
        known = ", ".join(i.reference for i in verified.report.images)
        raise UsageError(f"image {image!r} is not in the evidence bundle (it has: {known})")
    return images


def _check_platform(images: list[ImageView], image: str, platform: str | None) -> None:
    if platform is None:
        return
    names = sorted({p.platform for i in images for p in i.platforms})
    if platform not in names:
        close = [n for n in names if n.split("/")[1:2] == [platform] or n.endswith("/" + platform)]
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(
            f"platform {platform} is not in the evidence bundle for {image} "
            f"(it has: {', '.join(names) or 'none'}){hint}"
        )


def _select(
    verified: VerifiedEvidenceBundle, image: str, platform: str | None
) -> list[AttestationResult]:
    """Verified attestations of IMAGE (reference, or index/manifest digest) and platform."""
    images = _images(verified, image)
    _check_platform(images, image, platform)
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
    return out


def _predicate_matches(wanted: str, predicate_type: str) -> bool:
    """``wanted`` is the URI, or an alias policies accept (tests, sbom, provenance, ...)."""
    test = ALIASES.get(wanted)
    return test(predicate_type) if test is not None else predicate_type == wanted


@app.command("list")
def list_attestations(
    bundle: BundleArg,
    image: Annotated[
        str, typer.Argument(metavar="IMAGE", help="Image reference as exported, or its digest.")
    ],
    platform: PlatformOpt = None,
    output: ListFormatOpt = ListFormat.text,
    as_json: hidden_json = False,
    trust_exporter: TrustExporterOpt = None,
    trust_publisher: TrustPublisherOpt = None,
    trusted_root: TrustedRootOpt = None,
    trust_bundle_keys: TrustBundleKeysOpt = False,
    at: AtOpt = None,
) -> None:
    """List every attestation of an image with its verification state (predicate type,
    platform, signer, log, and why one failed). Exit 1 when any failed."""
    workdir = Path(tempfile.mkdtemp(prefix="dhi-offline-"))
    try:
        trust = TrustOptions.of(trust_exporter, trust_publisher, trusted_root, trust_bundle_keys)
        verified = _verified(bundle, trust, at, workdir)
        images = _images(verified, image)
        _check_platform(images, image, platform)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = attestation_rows(images, platform)
    if as_json or output is ListFormat.json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
    else:
        for row in rows:
            state = "verified" if row["verified"] else f"FAILED: {row['problem']}"
            signer = row["signer"] or "-"
            typer.echo(
                f"{row['platform'] or '-':<14} {row['predicateType']:<46} {signer:<10} "
                f"{row['tlog']:<15} {state}"
            )
    if any(not row["verified"] for row in rows):
        raise typer.Exit(1)


@app.command("get")
def get(
    bundle: BundleArg,
    image: Annotated[
        str, typer.Argument(metavar="IMAGE", help="Image reference as exported, or its digest.")
    ],
    predicate_type: Annotated[
        str,
        typer.Option(
            "--predicate-type",
            metavar="URI|ALIAS",
            help="Predicate type URI, or an alias: tests, sbom, provenance, vex, vulnerabilities.",
        ),
    ],
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
                _predicate_matches(predicate_type, r.predicate_type)
                and _names(image, reference, r.record.image)
                and (platform is None or r.record.platform == platform)
            ),
        )
        results = [
            r
            for r in _select(verified, image, platform)
            if _predicate_matches(predicate_type, r.predicate_type)
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not results:
        raise UsageError(
            f"no verified {predicate_type} attestation for {image}"
            + (f" {platform}" if platform else "")
        )
    if len({r.record.subject for r in results}) > 1:
        names = ", ".join(sorted({r.record.platform or "-" for r in results}))
        raise UsageError(f"the image has several platforms ({names}): choose one with --platform")
    for r in results:
        # Strict either way (docs/verification.md): what is printed is what was read.
        doc = r.statement.predicate if predicate else r.statement.document()
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
