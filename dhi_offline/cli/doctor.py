"""``dhi-offline doctor``: which trust store, evidence archive, trusted root and keys a run
on this host would use, and why (option, environment variable, system-wide mode, or default)."""

from __future__ import annotations

import json
from typing import Any

import typer

from dhi_offline import __version__
from dhi_offline.archive.store import Archive
from dhi_offline.cli.options import ListFormat, ListFormatOpt
from dhi_offline.cli.state import config_dir_and_why, data_dir_and_why, state_dir_and_why
from dhi_offline.errors import DhiError
from dhi_offline.trust.keyring import shipped_dhi_keyring
from dhi_offline.trust.store import TrustStore


def doctor(output: ListFormatOpt = ListFormat.text) -> None:
    """Show where state lives and what is trusted, and why; checks nothing else."""
    config, config_why = config_dir_and_why()
    data, data_why = data_dir_and_why()
    state, state_why = state_dir_and_why()
    try:
        pinned: list[dict[str, Any]] = [
            {"name": k.name, "role": k.role, "keyId": k.key_id}
            for k in TrustStore(config).keys()  # noqa: SIM118 - a method, not a dict
        ]
        store_problem = None
    except DhiError as e:
        pinned, store_problem = [], e.one_line()
    archive = Archive(data)
    try:
        head = archive.history().head if archive.log_path.exists() else None
        archive_problem = None
    except DhiError as e:
        head, archive_problem = None, e.one_line()
    doc = {
        "version": __version__,
        "trustStore": {"path": str(config), "why": config_why},
        "pinnedKeys": pinned,
        "trustStoreProblem": store_problem,
        "archive": {"path": str(data), "why": data_why, "exists": data.is_dir(), "head": head},
        "archiveProblem": archive_problem,
        "exporterState": {"path": str(state), "why": state_why},
        "trustedRoot": "shipped Sigstore production root (unless --trusted-root)",
        "shippedPublisherKeys": [
            {"name": e.name, "keyId": e.key_id, "status": e.status}
            for e in shipped_dhi_keyring().entries
        ],
    }
    if output is ListFormat.json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    typer.echo(f"dhi-offline {__version__}")
    typer.echo(f"trust store     {config}  ({config_why})")
    for k in pinned:
        typer.echo(f"  pinned {k['role']:<9} {k['keyId']}  {k['name']}")
    if not pinned:
        typer.echo("  no key pinned" + (f": {store_problem}" if store_problem else ""))
    state_text = f"head {head}" if head else ("no imports yet" if not archive_problem else "")
    typer.echo(f"evidence archive {data}  ({data_why}; {archive_problem or state_text})")
    typer.echo(f"exporter state  {state}  ({state_why})")
    typer.echo(f"trusted root    {doc['trustedRoot']}")
    for shipped in shipped_dhi_keyring().entries:
        typer.echo(f"  shipped publisher {shipped.key_id}  {shipped.name} ({shipped.status})")
