"""``dhi-offline dist``: the offline installer (a signed wheelhouse) and its check.

``build`` runs on the connected side (pip needs an index); ``verify`` anywhere. Details:
``docs/install.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.bundle.signing import load_private_key
from dhi_offline.dist import build_dist, resolve_target, verify_dist
from dhi_offline.host.trust import public_key_from_file

app = typer.Typer(
    help="The offline installer: every wheel dhi-offline needs, signed, for a host "
    "with no package index.",
    no_args_is_help=True,
)


@app.command("build")
def build(
    signing_key: Annotated[
        Path,
        typer.Option(
            "--signing-key",
            metavar="EXPORTER.pem",
            help="Exporter private key (keys generate); signs SHA256SUMS.",
        ),
    ],
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            metavar="manylinux_2_28_x86_64|manylinux_2_28_aarch64",
            help="pip platform tag of the target host (default: this machine's).",
        ),
    ] = None,
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="3.11|3.12|3.13",
            help="CPython version of the target host (default: this interpreter's).",
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="DIR", help="Where the tarball goes.")
    ] = Path("dist"),
) -> None:
    """Build the signed offline installer (connected side: pip needs a package index).

    Writes DIR/dhi-offline-VERSION-PLATFORM-pyXY.tar.gz: wheels/ (dhi-offline and every
    dependency), install.sh, SHA256SUMS and SHA256SUMS.sig. The public key is not put in
    the tarball: carry your trusted exporter.pub across separately. Exit 2, with nothing
    written, when pip cannot download or build a wheel.
    """
    target = resolve_target(platform, python)
    private_key = load_private_key(signing_key)

    def step(message: str) -> None:
        typer.echo(message, err=True)

    result = build_dist(target=target, private_key=private_key, output_dir=output, progress=step)
    for name in result.built_from_sdist:
        typer.echo(f"note: built on this machine from an sdist (no wheel published): {name}")
    typer.echo(
        f"wrote {result.path}: {len(result.wheels)} wheels for CPython {target.python} on "
        f"{target.platform}, SHA256SUMS signed by exporter key {result.key_id}, "
        f"sha256 {result.sha256}"
    )


@app.command("verify")
def verify(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="TARBALL_OR_DIR",
            help="dhi-offline-*.tar.gz (read in place), or the directory it unpacks to.",
            show_default=False,
        ),
    ],
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            metavar="EXPORTER.pub",
            help="Your trusted copy of the exporter public key (never one from the tarball).",
        ),
    ],
) -> None:
    """Check an installer: the signature with your exporter key, then every file.

    SHA256SUMS.sig must verify with KEY, then every file match SHA256SUMS. Exit 0 when
    all match; 1 naming the first bad file, or a bad signature; 2 when the tarball or key
    cannot be read.
    """
    trusted = public_key_from_file(key, what="exporter key")
    check = verify_dist(path, trusted)
    typer.echo(
        f"verified {check.top}: {check.files} files match SHA256SUMS, "
        f"signed by exporter key {check.key_id}"
    )
