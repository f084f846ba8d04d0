"""``dhi-offline trust``: the host's pinned exporter and publisher keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.cli.inputs import read_file
from dhi_offline.cli.state import default_config_dir
from dhi_offline.trust.keyring import shipped_dhi_keyring
from dhi_offline.trust.store import TrustStore

app = typer.Typer(help="Pinned exporter and publisher keys of this host.", no_args_is_help=True)
H_CONFIG = "Trust store directory (default: the user config directory)."


def _store(config: Path | None) -> TrustStore:
    return TrustStore(config or default_config_dir())


@app.command("add")
def add(
    pem: Annotated[Path, typer.Argument(help="PEM public key file.")],
    role: Annotated[
        str,
        typer.Option("--role", help="exporter (signs bundles) or publisher (signs attestations)."),
    ],
    name: Annotated[str | None, typer.Option("--name", help="A name for reports.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help=H_CONFIG)] = None,
) -> None:
    """Pin a key for one role (a key has exactly one role)."""
    pinned = _store(config).add(
        read_file(pem, what="public key", limit=1024 * 1024), role=role, name=name
    )
    typer.echo(f"pinned {pinned.role} key {pinned.name} {pinned.key_id}")


@app.command("list")
def list_keys(
    output_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help=H_CONFIG)] = None,
) -> None:
    """List pinned keys, and the publisher keys shipped with the tool."""
    keys = _store(config).keys()
    shipped = shipped_dhi_keyring()
    if output_json:
        doc = {
            "pinned": [{k: v for k, v in p.to_json().items() if k != "pem"} for p in keys],
            "shipped": [
                {"name": e.name, "keyId": e.key_id, "role": "publisher", "status": e.status}
                for e in shipped.entries
            ],
        }
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    for p in keys:
        typer.echo(f"{p.role:<10} {p.key_id}  {p.name}  (added {p.added})")
    for e in shipped.entries:
        typer.echo(f"{'publisher':<10} {e.key_id}  {e.name}  (shipped, {e.status})")


@app.command("remove")
def remove(
    key_id: Annotated[str, typer.Argument(help="Key id, or a prefix of at least 8 hex digits.")],
    config: Annotated[Path | None, typer.Option("--config", help=H_CONFIG)] = None,
) -> None:
    """Unpin a key."""
    removed = _store(config).remove(key_id)
    typer.echo(f"removed {removed.role} key {removed.name} {removed.key_id}")
