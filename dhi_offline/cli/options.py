"""Options shared by the air-gapped commands, declared once (typer ``Annotated`` aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class ReportFormat(StrEnum):
    """Report formats on standard output."""

    text = "text"
    json = "json"
    ctrf = "ctrf"


class ListFormat(StrEnum):
    """Formats of commands that list or show (no verification report)."""

    text = "text"
    json = "json"


ListFormatOpt = Annotated[
    ListFormat, typer.Option("--format", metavar="text|json", help="Output format.")
]
hidden_json = Annotated[
    bool, typer.Option("--json", hidden=True, help="Same as --format json (deprecated).")
]

BundleArg = Annotated[
    Path,
    typer.Argument(
        help="The evidence bundle (.dhi.tar.zst).", metavar="BUNDLE", show_default=False
    ),
]
TrustExporterOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--trust-exporter",
        metavar="KEY.pub",
        help="Exporter public key (PEM) to trust in addition to the trust store; repeatable.",
    ),
]
TrustPublisherOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--trust-publisher",
        help="Publisher public key (PEM), or a keyring (.json: keys with status and validity), "
        "trusted in addition to the DHI keyring and the store; repeatable.",
    ),
]
TrustedRootOpt = Annotated[
    Path | None,
    typer.Option(
        "--trusted-root",
        help="trusted_root.json to trust (default: the Sigstore production root shipped).",
    ),
]
TrustBundleKeysOpt = Annotated[
    bool,
    typer.Option(
        "--trust-bundle-keys",
        help="UNSAFE: also trust the publisher keys and trusted root the evidence bundle carries.",
    ),
]
PolicyOpt = Annotated[
    str, typer.Option("--policy", help="Policy TOML file, or a built-in name (dhi-default).")
]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Reference time (RFC 3339) instead of now."),
]
FormatOpt = Annotated[ReportFormat, typer.Option("--format", help="Report format.")]
HtmlOpt = Annotated[
    Path | None,
    typer.Option("--html", help="Also write the self-contained HTML audit report here."),
]
ArchiveOpt = Annotated[
    Path | None,
    typer.Option("--archive", help="Evidence archive directory (default: user data dir)."),
]
PlatformOpt = Annotated[str | None, typer.Option("--platform", help="os/arch\\[/variant].")]


@dataclass(frozen=True)
class TrustOptions:
    """The trust options of one command, gathered."""

    trust_exporter: list[Path]
    trust_publisher: list[Path]
    trusted_root: Path | None
    trust_bundle_keys: bool

    @classmethod
    def of(
        cls,
        exporters: list[Path] | None,
        publishers: list[Path] | None,
        root: Path | None,
        bundle_keys: bool,
    ) -> TrustOptions:
        """From the raw option values (typer gives None for an absent list)."""
        return cls(exporters or [], publishers or [], root, bundle_keys)
