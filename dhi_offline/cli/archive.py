"""``dhi-offline archive``: the evidence kept by ``import``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline import __version__
from dhi_offline.archive.store import Archive
from dhi_offline.cli.options import (
    AtOpt,
    ListFormat,
    ListFormatOpt,
    PolicyOpt,
    TrustBundleKeysOpt,
    TrustedRootOpt,
    TrustExporterOpt,
    TrustOptions,
    TrustPublisherOpt,
    hidden_json,
)
from dhi_offline.cli.output import HtmlTarget
from dhi_offline.cli.state import default_data_dir
from dhi_offline.cli.verify import host_run
from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import ArchiveIntegrityError
from dhi_offline.host import session
from dhi_offline.report._common import headline
from dhi_offline.report.archive_html import ArchivePage, render_archive_html
from dhi_offline.report.documents import archive_verify_document, dumps

app = typer.Typer(
    help="The evidence archive: imported bundles, receipts and the hash-chained log.",
    no_args_is_help=True,
)
H_ARCHIVE = "Evidence archive directory (default: the user data directory)."
ArchiveDirOpt = Annotated[Path | None, typer.Option("--archive", help=H_ARCHIVE)]


def _archive(path: Path | None) -> Archive:
    archive = Archive(path or default_data_dir())
    archive.require()
    return archive


@app.command("list")
def list_imports(
    archive_dir: ArchiveDirOpt = None,
    output: ListFormatOpt = ListFormat.text,
    as_json: hidden_json = False,
) -> None:
    """One line per attempt: index, time, verdict, bundle sha256 (chain checked)."""
    archive = _archive(archive_dir)
    with archive.lock(exclusive=False):
        lines = archive.history().lines
    if as_json or output is ListFormat.json:
        typer.echo(json.dumps([line.raw for line in lines], indent=2, sort_keys=True))
        return
    for line in lines:
        refused = "  (refused)" if line.raw.get("refused") is True else ""
        typer.echo(f"{line.index:>5}  {line.time}  {line.verdict:<11}  {line.bundle}{refused}")


@app.command("show")
def show(
    which: Annotated[str, typer.Argument(help="Log index, or a bundle sha256 prefix.")],
    archive_dir: ArchiveDirOpt = None,
) -> None:
    """Print the receipt of one attempt."""
    archive = _archive(archive_dir)
    with archive.lock(exclusive=False):
        history = archive.history()
    line = session.select(history, which)[-1]
    typer.echo(json.dumps(archive.receipt(line), indent=2, sort_keys=True))


@app.command("verify")
def verify_archive(
    archive_dir: ArchiveDirOpt = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            help="INDEX:HASH recorded elsewhere (a ticket, another host): the log must "
            "still hold that line, unchanged.",
        ),
    ] = None,
    output: ListFormatOpt = ListFormat.text,
) -> None:
    """Check the log's hash chain, every receipt and kept bundle, files the log does not
    name, and the head. Exit 1 when anything was changed, 2 when there is no evidence archive."""
    archive = _archive(archive_dir)
    try:
        check = archive.verify(expect_head=expect_head)
    except ArchiveIntegrityError as e:
        if output is ListFormat.json:
            typer.echo(dumps(archive_verify_document(None, problem=e.one_line())))
        raise
    if output is ListFormat.json:
        typer.echo(dumps(archive_verify_document(check, expect_head=expect_head)))
        return
    typer.echo(
        f"archive intact: {check.count} attempt(s), chain, receipts and "
        f"{check.bundles + check.quarantined} kept bundle(s) verified; head {check.head}"
        + (" (matches --expect-head)" if expect_head else "")
    )


@app.command("report")
def report(
    archive_dir: ArchiveDirOpt = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Summarise every attempt (verifying the evidence archive first)."""
    archive = _archive(archive_dir)
    with HtmlTarget.prepare(html) as target:
        check = archive.verify()
        with archive.lock(exclusive=False):
            lines = archive.history().lines
        receipts = [archive.receipt(line) for line in lines]
        for line, receipt in zip(lines, receipts, strict=True):
            images = ", ".join(str(i.get("reference", "?")) for i in receipt.get("images", []))
            typer.echo(f"{line.index:>5}  {line.time}  {line.verdict:<11}  {images or '-'}")
            refused = receipt.get("refused")
            if isinstance(refused, dict):
                typer.echo(f"         refused at {refused.get('step')}: {refused.get('reason')}")
            for c in receipt.get("failedChecks", []) if not refused else []:
                typer.echo(f"         failed: {c}")
            for v in receipt.get("violations", []):
                typer.echo(f"         violation: {v}")
        typer.echo(f"head {check.head}")
        if target.wanted:
            page = ArchivePage(
                archive=str(archive.root.resolve()),
                head=check.head,
                generated=format_rfc3339(datetime.now(UTC).replace(microsecond=0)),
                tool_version=__version__,
            )
            target.write(render_archive_html(page, lines, receipts))
            typer.echo(f"HTML report: {html}")


@app.command("reverify")
def reverify(
    which: Annotated[str, typer.Argument(help="Log index, a bundle sha256 prefix, or 'all'.")],
    archive_dir: ArchiveDirOpt = None,
    at: AtOpt = None,
    at_now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Judge at the current time (or --at) instead of the reference time "
            "recorded in each receipt.",
        ),
    ] = False,
    trust_exporter: TrustExporterOpt = None,
    trust_publisher: TrustPublisherOpt = None,
    trusted_root: TrustedRootOpt = None,
    trust_bundle_keys: TrustBundleKeysOpt = False,
    policy: PolicyOpt = "dhi-default",
    output: ListFormatOpt = ListFormat.text,
) -> None:
    """Re-run the full plan on kept evidence bundles with the trust pinned now, and report
    drift from what was recorded: a key since distrusted, a policy that now fails, a
    checkpoint that no longer links. Exit 1 when anything drifted."""
    archive = _archive(archive_dir)
    trust = TrustOptions.of(trust_exporter, trust_publisher, trusted_root, trust_bundle_keys)
    run = host_run(trust, policy=policy, at=at)
    results = session.reverify(archive, which, run, at_receipt=not (at_now or at is not None))
    if output is ListFormat.json:
        typer.echo(json.dumps([r.to_json() for r in results], indent=2, sort_keys=True))
    else:
        for r in results:
            now = headline(r.outcome) if r.outcome is not None else "not re-verified"
            typer.echo(
                f"#{r.line.index}  {r.line.bundle[:16]}…  recorded {r.line.verdict}  now {now}"
                + ("" if r.drift else "  no drift")
            )
            for d in r.drift:
                typer.echo(f"    drift: {d}")
    if any(r.drift for r in results):
        raise typer.Exit(1)
