"""``push`` and ``pull``: carry verified evidence and the site's verdict through a registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dhi_offline.archive.store import Archive
from dhi_offline.bundle.signing import load_private_key
from dhi_offline.cli.console import emit_rich
from dhi_offline.cli.options import (
    ArchiveOpt,
    AtOpt,
    ListFormat,
    ListFormatOpt,
    PolicyOpt,
    TrustBundleKeysOpt,
    TrustedRootOpt,
    TrustExporterOpt,
    TrustOptions,
    TrustPublisherOpt,
)
from dhi_offline.cli.state import default_data_dir
from dhi_offline.cli.verify import host_run
from dhi_offline.deliver.pull import Pulled, pull_bundle
from dhi_offline.deliver.push import Action, PushOptions, PushReport
from dhi_offline.deliver.site import SiteKey
from dhi_offline.deliver.verdict import Destination
from dhi_offline.errors import UsageError
from dhi_offline.host import deliver
from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.reference import Reference, parse_reference
from dhi_offline.report.jsonreport import render_json
from dhi_offline.verify.result import Refusal

InsecureOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--insecure-registry",
        metavar="HOST[:PORT]",
        help="Reach this registry over plain HTTP (loopback registries always are); repeatable.",
    ),
]


def _client(insecure: list[str] | None) -> RegistryClient:
    return RegistryClient(insecure_registries=insecure or (), remember_referrers_api=True)


def push(
    bundle: Annotated[
        Path | None,
        typer.Argument(
            metavar="[BUNDLE]", help="The evidence bundle (.dhi.tar.zst), or --from-archive N."
        ),
    ] = None,
    to: Annotated[
        str,
        typer.Option("--to", metavar="REGISTRY[/PREFIX]", help="The internal registry."),
    ] = "",
    signing_key: Annotated[
        Path | None,
        typer.Option("--signing-key", metavar="SITE.pem", help="The site's signing key (PEM)."),
    ] = None,
    from_archive: Annotated[
        str | None,
        typer.Option(
            "--from-archive", metavar="N|SHA", help="Push a bundle the evidence archive kept."
        ),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="SRC=DST",
            help="Name prefix rewrite, e.g. dhi.io/=registry.site/dhi/; repeatable.",
        ),
    ] = None,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="Push evidence even for images not (yet) mirrored into the registry.",
        ),
    ] = False,
    bundle_repository: Annotated[
        str | None,
        typer.Option(
            "--bundle-repository",
            metavar="REGISTRY/REPO",
            help="Where the evidence bundle artifact goes (default: --to + /dhi-offline/bundles).",
        ),
    ] = None,
    no_bundle: Annotated[
        bool,
        typer.Option("--no-bundle", help="Do not store the evidence bundle itself as an artifact."),
    ] = False,
    trust_exporter: TrustExporterOpt = None,
    trust_publisher: TrustPublisherOpt = None,
    trusted_root: TrustedRootOpt = None,
    trust_bundle_keys: TrustBundleKeysOpt = False,
    policy: PolicyOpt = "dhi-default",
    at: AtOpt = None,
    archive_dir: ArchiveOpt = None,
    insecure_registry: InsecureOpt = None,
    output: ListFormatOpt = ListFormat.text,
) -> None:
    """Verify an evidence bundle, then push its evidence and the site's signed verdict to a
    registry.

    Exit 0: every image was there, everything verified and passed policy, all written.
    1: refused, a platform failed (its VSA says FAILED, no signature), or images missing.
    2: usage, unreadable input, or a registry error (run it again to complete the push).
    """
    if not to:
        raise UsageError("--to REGISTRY[/PREFIX] is required")
    if signing_key is None:
        raise UsageError("--signing-key SITE.pem is required (dhi-offline keys generate site)")
    destination = Destination.parse(to, map_ or [])
    key = SiteKey.of(load_private_key(signing_key))
    trust = TrustOptions.of(trust_exporter, trust_publisher, trusted_root, trust_bundle_keys)
    run = host_run(trust, policy=policy, at=at)
    options = PushOptions(
        destination=destination,
        allow_missing=allow_missing,
        bundle_repository=bundle_repository,
        push_bundle=not no_bundle,
    )
    err = Console(stderr=True, highlight=False)
    live = output is ListFormat.text

    def on_action(action: Action) -> None:
        if live:
            err.print(_line(action), soft_wrap=True)

    with _client(insecure_registry) as client:
        result = deliver.push(
            bundle,
            run,
            Archive(archive_dir or default_data_dir()),
            from_archive=from_archive,
            explicit_archive=archive_dir is not None,
            key=key,
            client=client,
            options=options,
            on_action=on_action,
        )
    outcome = result.attempt.outcome
    document = {
        "verdict": outcome.verdict,
        "verification": json.loads(render_json(outcome)),
        "push": result.push.to_json() if result.push is not None else None,
    }
    if result.push is None:
        if output is ListFormat.json:
            typer.echo(json.dumps(document, indent=2, sort_keys=True))
        reason = (
            f"{outcome.step}: {outcome.reason}"
            if isinstance(outcome, Refusal)
            else "verification failed"
        )
        typer.echo(f"dhi-offline: push refused, nothing written: {reason}", err=True)
        raise typer.Exit(1)
    if output is ListFormat.json:
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        report = result.push
        emit_rich(lambda console: _summary(console, report, outcome.verdict))
    if not result.push.ok:
        raise typer.Exit(1)


STATUS_ORDER = ("pushed", "present", "revoked", "skipped", "missing", "different", "conflict")


def _line(action: Action) -> str:
    detail = f"  {escape(action.detail)}" if action.detail else ""
    return f"{action.status:9} {action.kind:9} {escape(action.target)}{detail}"


def _summary(console: Console, report: PushReport, verdict: str) -> None:
    unsafe = sorted({u for v in report.verdicts for u in v.unsafe})
    headline = "UNSAFE " if unsafe else ""
    if report.stopped:
        console.print(f"[red]NOT PUSHED[/]  {escape(report.stopped)}")
        return
    for v in report.verdicts:
        where = v.platform or "index"
        sign = "signed" if v.signable else "not signed"
        console.print(f"{v.result:6}  {escape(v.repository)}@{v.digest}  {where}  ({sign})")
        for reason in v.reasons:
            console.print(f"        {escape(reason)}")
    counts = ", ".join(
        f"{n} {status}"
        for status in (
            "pushed",
            "present",
            "revoked",
            "skipped",
            "missing",
            "different",
            "conflict",
        )
        if (n := report.count(status))
    )
    console.print(f"{headline}push {'complete' if report.ok else 'INCOMPLETE'}: {counts}")
    if unsafe:
        console.print(f"[red]UNSAFE:[/] {escape('; '.join(unsafe))} (labelled in every VSA)")
    if report.bundle_reference:
        console.print(f"bundle: {escape(report.bundle_reference)}")
    console.print(f"verification: {verdict}; site key {report.site_key_id}")


def pull(
    reference: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="REGISTRY/REPO:TAG or @DIGEST of a pushed evidence bundle."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Where to write the evidence bundle."),
    ],
    insecure_registry: InsecureOpt = None,
    output_format: ListFormatOpt = ListFormat.text,
) -> None:
    """Fetch an evidence bundle that ``push`` stored in a registry; verify it offline
    afterwards.

    Exit 0: written. 2: usage, not an evidence bundle artifact, registry or write error.
    """
    ref = parse_reference(reference)
    if not isinstance(ref, Reference):
        raise UsageError(f"{reference!r} is not a registry reference (REGISTRY/REPO:TAG)")
    if output.is_dir():
        raise UsageError(f"-o {output} is a directory; name the bundle file")
    with _client(insecure_registry) as client:
        pulled = pull_bundle(client, ref, output)
    if output_format is ListFormat.json:
        typer.echo(json.dumps(_pulled_json(pulled), indent=2, sort_keys=True))
        return
    typer.echo(
        f"pulled {pulled.reference} -> {pulled.path} ({pulled.bundle.size} bytes, "
        f"sha256 {pulled.bundle.digest.removeprefix('sha256:')}); now run: "
        f"dhi-offline verify {pulled.path}"
    )


def _pulled_json(pulled: Pulled) -> dict[str, object]:
    return {
        "reference": pulled.reference,
        "manifestDigest": pulled.manifest_digest,
        "path": str(pulled.path),
        "sha256": pulled.bundle.digest.removeprefix("sha256:"),
        "size": pulled.bundle.size,
        "exporterKeyId": pulled.exporter_key_id,
        "sequence": pulled.sequence,
    }
