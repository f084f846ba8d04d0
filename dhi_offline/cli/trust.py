"""``dhi-offline trust``: the host's pinned exporter and publisher keys.

The trust store is the global ``--config DIR`` (or ``DHI_OFFLINE_CONFIG_DIR``,
``--system``): see ``dhi-offline doctor``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.cli.options import AtOpt, ListFormat, ListFormatOpt, TrustExporterOpt, hidden_json
from dhi_offline.cli.state import default_config_dir
from dhi_offline.errors import UsageError
from dhi_offline.host import tufroot
from dhi_offline.host.session import ReferenceTime, make_workdir
from dhi_offline.host.trust import build_trust, public_key_from_file
from dhi_offline.report.documents import dumps, trust_list_document
from dhi_offline.trust import changes
from dhi_offline.trust.keyring import shipped_dhi_keyring
from dhi_offline.trust.store import TrustStore
from dhi_offline.trust.tuf_store import TufStore

app = typer.Typer(help="Pinned exporter and publisher keys of this host.", no_args_is_help=True)


def _store() -> TrustStore:
    return TrustStore(default_config_dir())


@app.command("add")
def add(
    pem: Annotated[Path, typer.Argument(help="PEM public key file.", metavar="KEY.pub")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            metavar="exporter|publisher",
            help="exporter (signs evidence bundles) or publisher (signs attestations).",
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="A name for reports.")
    ] = None,
) -> None:
    """Pin a key for one role (a key has exactly one role). Pinning it again for the same
    role changes nothing and exits 0."""
    key = public_key_from_file(pem, what="public key")
    pinned, added = _store().add(key.pem(), role=role, name=name)
    state = "pinned" if added else "already pinned:"
    typer.echo(f"{state} {pinned.role} key {pinned.name} {pinned.key_id}")


@app.command("list")
def list_keys(output: ListFormatOpt = ListFormat.text, as_json: hidden_json = False) -> None:
    """List pinned keys, and the publisher keys shipped with the tool."""
    keys = _store().keys()
    shipped = shipped_dhi_keyring()
    if as_json or output is ListFormat.json:
        doc = trust_list_document(keys, shipped.entries, _store().distrusted())
        typer.echo(dumps(doc))
        return
    for p in keys:
        typer.echo(f"{p.role:<10} {p.key_id}  {p.name}  (added {p.added})")
    distrusted = _store().distrusted()
    for e in shipped.entries:
        state = "DISTRUSTED on this host" if e.key_id in distrusted else e.status
        typer.echo(f"{'publisher':<10} {e.key_id}  {e.name}  (shipped, {state})")


@app.command("remove")
def remove(
    which: Annotated[
        str,
        typer.Argument(
            help="The key's name, its id, or a prefix of at least 8 hex digits.",
            metavar="NAME|KEYID",
        ),
    ],
) -> None:
    """Unpin a key."""
    removed = _store().remove(which)
    typer.echo(f"removed {removed.role} key {removed.name} {removed.key_id}")


@app.command("distrust")
def distrust(
    which: Annotated[
        str,
        typer.Argument(
            metavar="NAME|KEYID", help="A shipped publisher key: its name, id or id prefix."
        ),
    ],
) -> None:
    """Stop trusting a publisher key shipped with the tool (e.g. after a key compromise);
    every report then says so. Pinned keys are removed with 'trust remove'."""
    matches = [
        e
        for e in shipped_dhi_keyring().entries
        if which in (e.name, e.key_id) or (len(which) >= 8 and e.key_id.startswith(which))
    ]
    if len(matches) != 1:
        names = ", ".join(f"{e.name} {e.key_id[:16]}" for e in shipped_dhi_keyring().entries)
        raise UsageError(f"{which!r} names no single shipped key (shipped: {names})")
    entry = matches[0]
    added = _store().distrust(entry.key_id, entry.name)
    state = "distrusted" if added else "already distrusted:"
    typer.echo(f"{state} shipped publisher key {entry.name} {entry.key_id}")


@app.command("update-root")
def update_root(
    bundle: Annotated[
        Path,
        typer.Argument(help="An evidence bundle exported with --tuf-metadata.", metavar="BUNDLE"),
    ],
    staging: Annotated[
        bool, typer.Option("--staging", help="The Sigstore staging TUF repository.")
    ] = False,
    at: AtOpt = None,
    trust_exporter: TrustExporterOpt = None,
) -> None:
    """Pin a new Sigstore trusted root carried in an evidence bundle, after verifying the
    bundle's exporter signature and the TUF chain from the TUF root this host pinned
    (first: the one shipped). Later verifications without --trusted-root use it. Nothing
    is pinned on failure."""
    config = default_config_dir()
    trust = build_trust(
        config_dir=config,
        trust_exporter=trust_exporter or [],
        trust_publisher=[],
        trusted_root=None,
        trust_bundle_keys=False,
    )
    time = ReferenceTime.parse(at)
    work = make_workdir()
    try:
        done = tufroot.update_root(
            bundle,
            trust=trust,
            store=TufStore(config),
            instance="staging" if staging else "production",
            at=time.at,
            now=time.now,
            workdir=work,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r = done.result
    typer.echo(
        f"trusted root updated through TUF: root v{done.before.root_version} -> "
        f"v{r.root_version}, targets v{r.targets_version} (sha256 {r.trusted_root_sha256})"
    )


@app.command("bundle-keys")
def bundle_keys(
    bundle: Annotated[
        Path,
        typer.Argument(
            help="The evidence bundle (.dhi.tar.zst).", metavar="BUNDLE", show_default=False
        ),
    ],
    write: Annotated[
        Path | None,
        typer.Option(
            "--write", metavar="DIR", help="Also write each key as DIR/NAME.pub, to pin with add."
        ),
    ] = None,
    trust_exporter: TrustExporterOpt = None,
) -> None:
    """Show the publisher keys an evidence bundle carries and how they differ from the keys
    this host pins (the bundle's exporter signature is verified first). Nothing is pinned:
    compare a key's fingerprint with the publisher's, then 'trust add' the file --write
    made."""
    trust = build_trust(
        config_dir=default_config_dir(),
        trust_exporter=trust_exporter or [],
        trust_publisher=[],
        trusted_root=None,
        trust_bundle_keys=False,
    )
    exporters = {key_id: key for key_id, (_, key) in trust.exporters.items()}
    ring = changes.read_bundle_keyring(bundle, exporters=exporters)
    distrusted = {d.rsplit(" ", 1)[-1] for d in trust.distrusted}
    found = changes.keyring_changes(trust.publishers, ring, ignore=distrusted)
    by_id = {c.carried.key_id: c for c in found}
    for e in ring.entries:
        change = by_id.get(e.key_id)
        if e.key_id in distrusted:
            state, host = "DISTRUSTED", ""
        elif change is None:
            state, host = "pinned", ""
        elif change.pinned is None:
            state, host = "NOT PINNED", ""
        else:
            state, host = "CHANGED", f"  (this host: {changes.describe_state(change.pinned)})"
        what = f"{changes.pin_name(e)}  {changes.fingerprint(e.key)}"
        typer.echo(f"{state:<10} {what}  {changes.describe_state(e)}{host}")
    for path in changes.write_keys(ring, write) if write is not None else []:
        typer.echo(f"wrote {path}")
