"""``verify``, ``import``, ``inspect``, ``attest``: the air-gapped side. No network, ever."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dhi_offline.archive.store import Archive
from dhi_offline.bundle.reader import inspect_bundle
from dhi_offline.cli.inputs import load_trusted_root, read_file
from dhi_offline.cli.options import (
    ArchiveOpt,
    AtOpt,
    BundleArg,
    FormatOpt,
    HtmlOpt,
    PolicyOpt,
    ReportFormat,
    TrustBundleKeysOpt,
    TrustedRootOpt,
    TrustExporterOpt,
    TrustOptions,
    TrustPublisherOpt,
)
from dhi_offline.cli.state import default_config_dir, default_data_dir
from dhi_offline.errors import InputError, UsageError
from dhi_offline.report._common import clean
from dhi_offline.report.ctrf import render_ctrf
from dhi_offline.report.html import render_html
from dhi_offline.report.jsonreport import render_json
from dhi_offline.report.text import render_text
from dhi_offline.trust.keyring import KeyringEntry, keyring_from_json, shipped_dhi_keyring
from dhi_offline.trust.keys import load_pem
from dhi_offline.trust.store import TrustStore
from dhi_offline.trust.timerange import format_rfc3339, parse_rfc3339
from dhi_offline.verify.attestation import AttestationResult
from dhi_offline.verify.bundle import (
    BundleTrust,
    VerifiedBundle,
    VerifyOptions,
    receipt_for,
    verify_bundle_file,
)
from dhi_offline.verify.policy import Policy, parse_policy
from dhi_offline.verify.result import VerificationReport

BUILTIN_POLICIES = ("dhi-default",)


def load_policy(name_or_path: str) -> Policy:
    """A built-in policy by name, or a TOML file."""
    if name_or_path in BUILTIN_POLICIES:
        data = (
            resources.files("dhi_offline") / "data" / "policies" / f"{name_or_path}.toml"
        ).read_bytes()
        return parse_policy(data, source=name_or_path)
    path = Path(name_or_path)
    return parse_policy(read_file(path, what="policy", limit=1024 * 1024), source=str(path))


def build_trust(
    trust_exporter: list[Path],
    trust_publisher: list[Path],
    trusted_root: Path | None,
    trust_bundle_keys: bool,
    config_dir: Path | None = None,
) -> BundleTrust:
    """Everything pinned on this host, plus the keys given on the command line.

    Raises:
        UsageError: no exporter key is pinned at all.
    """
    store = TrustStore(config_dir or default_config_dir())
    exporters: dict[str, tuple[str, object]] = {}
    for pinned in store.by_role("exporter"):
        exporters[pinned.key_id] = (pinned.name, pinned.key)
    for path in trust_exporter:
        key = load_pem(read_file(path, what="exporter key", limit=1024 * 1024))
        exporters[key.key_id] = (path.name, key)
    if not exporters:
        raise UsageError(
            "no exporter key is trusted: pin one with "
            "'dhi-offline trust add KEY.pub --role exporter' or pass --trust-exporter KEY.pub"
        )
    publishers = shipped_dhi_keyring()
    for pinned in store.by_role("publisher"):
        publishers = publishers.with_entry(KeyringEntry(pinned.name, pinned.key))
    for path in trust_publisher:
        data = read_file(path, what="publisher key", limit=1024 * 1024)
        if path.suffix == ".json":
            # A keyring document: keys with a status and a validity window.
            for entry in keyring_from_json(data).entries:
                publishers = publishers.with_entry(entry)
        else:
            publishers = publishers.with_entry(KeyringEntry(path.name, load_pem(data)))
    overlap = set(exporters) & {e.key_id for e in publishers.entries}
    if overlap:
        raise UsageError("a key cannot be trusted both as exporter and as publisher")
    root = load_trusted_root(trusted_root)
    return BundleTrust(
        exporters=exporters,  # type: ignore[arg-type]
        publishers=publishers,
        trusted_root=root,
        trusted_root_source=str(trusted_root)
        if trusted_root
        else "shipped Sigstore production root",
        trust_bundle_keys=trust_bundle_keys,
    )


def parse_at(value: str | None) -> datetime:
    """``--at``, or now."""
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return parse_rfc3339(value, what="--at")
    except InputError as e:
        raise UsageError(e.message) from e


def run_verification(
    bundle: Path,
    *,
    trust: BundleTrust,
    policy: Policy | None,
    at: datetime,
    archive: Archive,
    allow_rollback: bool,
    workdir: Path,
    keep_statements: bool | Callable[[str, AttestationResult], bool] = False,
) -> VerifiedBundle:
    """Verify with the archive's rollback state (read-only here)."""
    if not bundle.is_file():
        what = "is a directory" if bundle.is_dir() else "no such file"
        raise InputError(f"cannot read bundle {bundle}: {what}")
    return verify_bundle_file(
        bundle,
        trust=trust,
        options=VerifyOptions(
            at=at,
            policy=policy,
            allow_rollback=allow_rollback,
            keep_statements=keep_statements,
            last_sequences={
                k: v for k, v in archive.state()["sequences"].items() if isinstance(v, int)
            },
            seen_checkpoints=archive.seen_checkpoints(),
        ),
        workdir=workdir,
    )


def _emit(report: VerificationReport, output: ReportFormat, html: Path | None) -> None:
    if html is not None:
        tmp = html.with_name(f".{html.name}.tmp")
        tmp.write_text(render_html(report), encoding="utf-8")
        tmp.replace(html)
    if output is ReportFormat.json:
        typer.echo(render_json(report))
    elif output is ReportFormat.ctrf:
        typer.echo(render_ctrf(report))
    else:
        render_text(report, Console())


def _run(
    bundle: Path,
    trust: TrustOptions,
    *,
    policy: str,
    at: str | None,
    archive_dir: Path | None,
    allow_rollback: bool,
    record: bool,
    output: ReportFormat,
    html: Path | None,
) -> None:
    pinned = build_trust(
        trust.trust_exporter, trust.trust_publisher, trust.trusted_root, trust.trust_bundle_keys
    )
    parsed_policy = load_policy(policy)
    when = parse_at(at)
    archive = Archive(archive_dir or default_data_dir())
    workdir = Path(tempfile.mkdtemp(prefix="dhi-offline-"))
    try:
        verified = run_verification(
            bundle,
            trust=pinned,
            policy=parsed_policy,
            at=when,
            archive=archive,
            allow_rollback=allow_rollback,
            workdir=workdir,
        )
        report = verified.report
        if record:
            stored = archive.record_import(
                bundle_file=bundle,
                bundle_sha256=report.bundle_sha256,
                receipt=receipt_for(report, allow_rollback=allow_rollback),
                verdict=report.verdict,
                when=when,
                exporter_key_id=report.trust.exporter_key_id,
                sequence=verified.opened.manifest.sequence,
                checkpoints=verified.checkpoints,
            )
            report = report.with_receipt(stored)
        _emit(report, output, html)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not report.passed:
        raise typer.Exit(1)


def verify(
    bundle: BundleArg,
    trust_exporter: TrustExporterOpt = None,
    trust_publisher: TrustPublisherOpt = None,
    trusted_root: TrustedRootOpt = None,
    trust_bundle_keys: TrustBundleKeysOpt = False,
    policy: PolicyOpt = "dhi-default",
    at: AtOpt = None,
    output: FormatOpt = ReportFormat.text,
    html: HtmlOpt = None,
    archive_dir: ArchiveOpt = None,
) -> None:
    """Verify a bundle offline and apply policy; record nothing.

    Exit 0: verified and policy passed. 1: verification or policy failed. 2: usage or
    unreadable input. Refuses bundles older than one already imported (rollback).
    """
    trust = TrustOptions(
        trust_exporter or [], trust_publisher or [], trusted_root, trust_bundle_keys
    )
    _run(
        bundle,
        trust,
        policy=policy,
        at=at,
        archive_dir=archive_dir,
        allow_rollback=False,
        record=False,
        output=output,
        html=html,
    )


def import_(
    bundle: BundleArg,
    trust_exporter: TrustExporterOpt = None,
    trust_publisher: TrustPublisherOpt = None,
    trusted_root: TrustedRootOpt = None,
    trust_bundle_keys: TrustBundleKeysOpt = False,
    policy: PolicyOpt = "dhi-default",
    at: AtOpt = None,
    output: FormatOpt = ReportFormat.text,
    html: HtmlOpt = None,
    archive_dir: ArchiveOpt = None,
    allow_rollback: Annotated[
        bool,
        typer.Option(
            "--allow-rollback",
            help="UNSAFE: accept a bundle older than one already imported (recorded).",
        ),
    ] = False,
) -> None:
    """Verify a bundle, then keep it, a receipt and a hash-chained log line as evidence.

    The receipt is kept whatever the verdict; only a passing import advances the
    rollback state. Exit codes as for verify.
    """
    trust = TrustOptions(
        trust_exporter or [], trust_publisher or [], trusted_root, trust_bundle_keys
    )
    _run(
        bundle,
        trust,
        policy=policy,
        at=at,
        archive_dir=archive_dir,
        allow_rollback=allow_rollback,
        record=True,
        output=output,
        html=html,
    )


def inspect(
    bundle: BundleArg,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="text or json.")
    ] = ReportFormat.text,
) -> None:
    """Show what a bundle claims to contain, WITHOUT verifying it."""
    manifest = inspect_bundle(bundle)
    doc = {
        "verified": False,
        "note": "UNVERIFIED: read from the bundle without checking any signature",
        "formatVersion": manifest.format_version,
        "toolVersion": manifest.tool_version,
        "created": format_rfc3339(manifest.created),
        "expires": format_rfc3339(manifest.expires),
        "sequence": manifest.sequence,
        "exporterKeyId": manifest.exporter_key_id,
        "flags": list(manifest.flags),
        "images": [
            {
                "reference": i.reference,
                "digest": i.digest,
                "platforms": [{"platform": p.platform, "digest": p.digest} for p in i.platforms],
            }
            for i in manifest.images
        ],
        "members": len(manifest.members),
        "size": manifest.total_size,
    }
    if output is ReportFormat.json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    console = Console()
    console.print(
        "[bold yellow]UNVERIFIED[/] contents as the bundle describes them (nothing was checked)"
    )

    def say(text: str, style: str | None = None) -> None:
        # Everything below comes from the unverified manifest: never read as markup.
        console.print(clean(text), style=style, markup=False, highlight=False)

    say(f"exporter key {manifest.exporter_key_id}  sequence {manifest.sequence}")
    say(f"created {doc['created']}  expires {doc['expires']}  tool {manifest.tool_version}")
    if manifest.flags:
        say(f"flags: {', '.join(manifest.flags)}", "bold red")
    for i in manifest.images:
        say(f"{i.reference}  {i.digest}")
        for p in i.platforms:
            say(f"  {p.platform:<16} {p.digest}")
    say(f"{len(manifest.members)} members, {manifest.total_size} bytes")
