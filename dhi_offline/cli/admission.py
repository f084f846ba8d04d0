"""``dhi-offline admission-config``: what Kyverno, policy-controller or podman/CRI-O need
to admit only images whose site signature and VSA verify (``docs/admission.md``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.deliver.admission import (
    CONTAINERS_POLICY_NOTE,
    AdmissionFile,
    AdmissionKind,
    admission_files,
)
from dhi_offline.errors import InputError, TrustMaterialError, UsageError
from dhi_offline.files import read_file

_KEY_LIMIT = 1024 * 1024


def admission_config(
    kind: Annotated[
        AdmissionKind,
        typer.Option(
            "--kind",
            help="The enforcer: a Kyverno ClusterPolicy, sigstore policy-controller "
            "ClusterImagePolicies, or a podman/CRI-O policy.json with its registries.d file.",
        ),
    ],
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            metavar="SITE.pub",
            help="The site public key (PEM), the half of the key push signs with.",
        ),
    ],
    images: Annotated[
        list[str] | None,
        typer.Option(
            "--images",
            metavar="GLOB",
            help="Images to enforce on, as registry.site/dhi/* ('*' matches '/' too); "
            "repeatable. Default: every image.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE|DIR",
            help="Write here instead of standard output (a directory gets the default "
            "file name). containers-policy needs a DIR: DIR/policy.json and "
            "DIR/registries.d/dhi-offline.yaml.",
        ),
    ] = None,
) -> None:
    """Write what an admission enforcer needs to admit only images whose site signature
    verifies and whose VSA says PASSED with no unsafe switch."""
    pem = read_file(key, what="site key", limit=_KEY_LIMIT)
    try:
        files = admission_files(kind, pem, images or [])
    except TrustMaterialError as e:
        raise TrustMaterialError(f"site key {key}: {e.message}") from e
    if kind is AdmissionKind.containers_policy:
        if output is None:
            raise UsageError(
                "--kind containers-policy writes two files (policy.json and "
                "registries.d/dhi-offline.yaml): give -o DIR (e.g. -o /etc/containers)"
            )
        if output.exists() and not output.is_dir():
            raise UsageError(f"-o {output}: not a directory (containers-policy writes two files)")
        targets = [(output / f.path, f) for f in files]
        for directory in (output, *sorted({path.parent for path, _ in targets})):
            try:
                directory.mkdir(exist_ok=True)
            except OSError as e:
                raise InputError(f"cannot create {directory}: {e.strerror or e}") from e
    elif output is None:
        for f in files:
            typer.echo(f.text, nl=False)
        return
    else:
        (only,) = files
        targets = [(output / only.path if output.is_dir() else output, only)]
    _write_all(targets)
    for path, _ in targets:
        typer.echo(f"wrote {path}")
    if kind is AdmissionKind.containers_policy:
        typer.echo(f"note: {CONTAINERS_POLICY_NOTE}")


def _write_all(targets: list[tuple[Path, AdmissionFile]]) -> None:
    """Write every file beside its target, then rename each into place: a failure before
    the renames changes nothing, and no reader ever sees a half-written file.

    Raises:
        InputError: a file cannot be written or put in place (naming it).
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, f in targets:
            try:
                fd, tmp_name = tempfile.mkstemp(
                    dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
                )
                staged.append((Path(tmp_name), path))
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    # Configs are public: podman and CRI-O read them as other users.
                    os.fchmod(out.fileno(), 0o644)
                    out.write(f.text)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as e:
                raise InputError(f"cannot write {path}: {e.strerror or e}") from e
        # Last file first: policy.json, which demands signatures, goes in place only after
        # the registries.d file that makes podman and CRI-O fetch them.
        for tmp, path in reversed(staged):
            try:
                tmp.replace(path)
            except OSError as e:
                raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
