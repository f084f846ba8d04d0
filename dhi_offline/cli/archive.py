"""``dhi-offline archive``: the evidence kept by ``import``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.archive.store import Archive
from dhi_offline.cli.state import default_data_dir
from dhi_offline.errors import UsageError
from dhi_offline.report.archive_html import render_archive_html

app = typer.Typer(help="Imported bundles, receipts and the hash-chained log.", no_args_is_help=True)
H_ARCHIVE = "Evidence archive directory (default: the user data directory)."


def _archive(path: Path | None) -> Archive:
    return Archive(path or default_data_dir())


@app.command("list")
def list_imports(
    archive_dir: Annotated[Path | None, typer.Option("--archive", help=H_ARCHIVE)] = None,
    output_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One line per import: index, time, verdict, bundle sha256."""
    lines = _archive(archive_dir).read_log()
    if output_json:
        typer.echo(json.dumps([line.body() | {"hash": line.hash} for line in lines], indent=2))
        return
    for line in lines:
        typer.echo(f"{line.index:>5}  {line.time}  {line.verdict:<4}  {line.bundle}")


@app.command("show")
def show(
    which: Annotated[str, typer.Argument(help="Log index, or a bundle sha256 prefix.")],
    archive_dir: Annotated[Path | None, typer.Option("--archive", help=H_ARCHIVE)] = None,
) -> None:
    """Print the receipt of one import."""
    archive = _archive(archive_dir)
    lines = archive.read_log()
    matches = [
        line
        for line in lines
        if (which.isascii() and which.isdigit() and line.index == int(which))
        or (len(which) >= 8 and line.bundle.startswith(which))
    ]
    if not matches:
        raise UsageError(f"no import matches {which!r}")
    typer.echo(json.dumps(archive.receipt(matches[-1]), indent=2, sort_keys=True))


@app.command("verify")
def verify_archive(
    archive_dir: Annotated[Path | None, typer.Option("--archive", help=H_ARCHIVE)] = None,
) -> None:
    """Check the log's hash chain, every receipt and every stored bundle."""
    count = _archive(archive_dir).verify()
    typer.echo(f"archive intact: {count} import(s), chain, receipts and bundles verified")


@app.command("report")
def report(
    archive_dir: Annotated[Path | None, typer.Option("--archive", help=H_ARCHIVE)] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Summarise every import (verifying the archive first)."""
    archive = _archive(archive_dir)
    archive.verify()
    lines = archive.read_log()
    receipts = [archive.receipt(line) for line in lines]
    for line, receipt in zip(lines, receipts, strict=True):
        images = ", ".join(i.get("reference", "?") for i in receipt.get("images", []))
        typer.echo(f"{line.index:>5}  {line.time}  {line.verdict:<4}  {images}")
        for v in receipt.get("violations", []):
            typer.echo(f"         violation: {v}")
    if html is not None:
        tmp = html.with_name(f".{html.name}.tmp")
        tmp.write_text(render_archive_html(lines, receipts), encoding="utf-8")
        tmp.replace(html)
        typer.echo(f"HTML report: {html}")
