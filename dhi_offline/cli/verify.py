"""``verify``, ``import``, ``inspect``, ``attest``: the air-gapped side. No network, ever."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dhi_offline import __version__
from dhi_offline.archive.store import Archive
from dhi_offline.bundle.manifest import BundleManifest
from dhi_offline.bundle.reader import inspect_bundle
from dhi_offline.cli.console import emit_rich
from dhi_offline.cli.options import (
    ArchiveOpt,
    AtOpt,
    BundleArg,
    FormatOpt,
    HtmlOpt,
    ListFormat,
    ListFormatOpt,
    PolicyOpt,
    ReportFormat,
    TrustBundleKeysOpt,
    TrustedRootOpt,
    TrustExporterOpt,
    TrustOptions,
    TrustPublisherOpt,
)
from dhi_offline.cli.output import HtmlTarget
from dhi_offline.cli.state import default_config_dir, default_data_dir
from dhi_offline.errors import InputError
from dhi_offline.host import session
from dhi_offline.host.session import HostRun, ReferenceTime
from dhi_offline.host.trust import build_trust
from dhi_offline.verify.attestation import AttestationResult
from dhi_offline.verify.policy import load_policy
from dhi_offline.verify.result import Outcome, Refusal

if TYPE_CHECKING:
    from rich.console import Console

# The report modules (and rich, under the text report) are imported where a report is
# rendered, in the format asked for: a verify run loads one of them, not all four.


def host_run(
    trust: TrustOptions,
    *,
    policy: str | None,
    at: str | None,
    allow_rollback: bool = False,
    keep_statements: bool | Callable[[str, AttestationResult], bool] = False,
) -> HostRun:
    """The trust, policy and clock of one command, from its options."""
    parsed_policy = load_policy(policy) if policy is not None else None  # a typo first
    return HostRun(
        trust=build_trust(
            config_dir=default_config_dir(),
            trust_exporter=trust.trust_exporter,
            trust_publisher=trust.trust_publisher,
            trusted_root=trust.trusted_root,
            trust_bundle_keys=trust.trust_bundle_keys,
        ),
        policy=parsed_policy,
        time=ReferenceTime.parse(at),
        allow_rollback=allow_rollback,
        keep_statements=keep_statements,
        # --trusted-root wins over a bundle's TUF metadata.
        tuf_config_dir=default_config_dir() if trust.trusted_root is None else None,
    )


def render(outcome: Outcome, output: ReportFormat) -> str | None:
    """The report for standard output (None: text, printed through rich)."""
    if output is ReportFormat.json:
        from dhi_offline.report.jsonreport import render_json  # noqa: PLC0415 - see above

        return render_json(outcome)
    if output is ReportFormat.ctrf:
        from dhi_offline.report.ctrf import render_ctrf  # noqa: PLC0415 - see above

        return render_ctrf(outcome)
    return None


def _emit(outcome: Outcome, output: ReportFormat) -> None:
    text = render(outcome, output)
    if text is None:
        from dhi_offline.report.text import render_text  # noqa: PLC0415 - see above

        emit_rich(lambda console: render_text(outcome, console))
    else:
        typer.echo(text)


def _finish(outcome: Outcome) -> None:
    if isinstance(outcome, Refusal):
        typer.echo(f"dhi-offline: verification failed: {outcome.step}: {outcome.reason}", err=True)
    if not outcome.passed:
        raise typer.Exit(1)


def _archive(archive_dir: Path | None) -> Archive:
    return Archive(archive_dir or default_data_dir())


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
    """Verify an evidence bundle offline and apply policy; record nothing.

    Exit 0: verified and policy passed (``PASS``, or ``UNSAFE-PASS`` with an unsafe
    switch). 1: refused, verification or policy failed (the report is still written).
    2: usage or unreadable input. Refuses bundles older than one already imported.
    """
    trust = TrustOptions.of(trust_exporter, trust_publisher, trusted_root, trust_bundle_keys)
    run = host_run(trust, policy=policy, at=at)
    with HtmlTarget.prepare(html) as target:
        result = session.verify(
            bundle, run, _archive(archive_dir), explicit=archive_dir is not None
        )
        # Only the report is needed from here: the opened bundle (members kept in
        # memory, up to MEMORY_BUDGET) is let go before reports are rendered.
        outcome = result.outcome
        del result
        if target.wanted:  # a page per attestation: not built unless asked for
            from dhi_offline.report.html import render_html  # noqa: PLC0415 - see above

            target.write(render_html(outcome))
    _emit(outcome, output)
    _finish(outcome)


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
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Import once more a bundle the evidence archive already holds (the new "
            "line says so).",
        ),
    ] = False,
) -> None:
    """Verify an evidence bundle, then keep it, a receipt and a hash-chained log line in
    the evidence archive.

    Every attempt is recorded: PASS, FAIL and bundles refused at steps 1-4 (kept in the
    archive's quarantine). Only a passing import advances the rollback state. A bundle
    already in the archive is not imported twice (exit as its recorded verdict) unless
    --again. Exit codes as for verify.
    """
    trust = TrustOptions.of(trust_exporter, trust_publisher, trusted_root, trust_bundle_keys)
    run = host_run(trust, policy=policy, at=at, allow_rollback=allow_rollback)
    archive = _archive(archive_dir)
    # The HTML file is opened before anything is recorded: a bad --html path fails
    # here, with nothing in the archive, so a retry cannot duplicate the import.
    with HtmlTarget.prepare(html) as target:
        done = session.import_bundle(bundle, run, archive, again=again)
        if done.attempt is None:
            _already(done, archive, output)
            return
        outcome = done.attempt.outcome
        receipt = outcome.receipt or {}
        try:
            if target.wanted:
                from dhi_offline.report.html import render_html  # noqa: PLC0415 - see above

                target.write(render_html(outcome))
        except InputError as e:
            raise InputError(
                f"the import is recorded as #{receipt.get('logIndex')} (head "
                f"{receipt.get('head')}), but {e.message}"
            ) from e
    _emit(outcome, output)
    if output is ReportFormat.text:
        typer.echo(
            f"recorded in {archive.root} as #{receipt.get('logIndex')}; "
            f"archive head {receipt.get('head')}"
        )
    _finish(outcome)


def _already(done: session.ImportResult, archive: Archive, output: ReportFormat) -> None:
    from dhi_offline.report.ctrf import render_ctrf_note  # noqa: PLC0415 - see above
    from dhi_offline.report.documents import already_imported_document, dumps  # noqa: PLC0415

    line = done.already
    if line is None:
        return
    receipt = done.already_receipt or {}
    message = (
        f"already imported as #{line.index} (sha256 {line.bundle}), verdict {line.verdict}; "
        "nothing recorded (use --again to import it once more)"
    )
    if output is ReportFormat.text:
        typer.echo(message)
    elif output is ReportFormat.json:
        doc = already_imported_document(line, str(archive.root), receipt)
        typer.echo(dumps(doc))
    else:
        typer.echo(render_ctrf_note("already imported", line.accepted, message, __version__))
    if not line.accepted:
        raise typer.Exit(1)


def inspect(bundle: BundleArg, output: ListFormatOpt = ListFormat.text) -> None:
    """Show what an evidence bundle claims to contain, WITHOUT verifying it."""
    from dhi_offline.report.documents import dumps, inspect_document  # noqa: PLC0415

    manifest = inspect_bundle(bundle)
    doc = inspect_document(manifest)
    if output is ListFormat.json:
        typer.echo(dumps(doc))
        return
    emit_rich(lambda console: _inspect_text(console, manifest, doc))


def _inspect_text(console: Console, manifest: BundleManifest, doc: dict[str, Any]) -> None:
    console.print(
        "[bold yellow]UNVERIFIED[/] contents as the bundle describes them (nothing was checked)"
    )

    from dhi_offline.report._common import clean  # noqa: PLC0415 - see above

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
