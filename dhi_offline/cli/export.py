"""``dhi-offline export`` and ``dhi-offline keys``: the connected side."""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
import tempfile
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import filesize
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from dhi_offline.bundle.signing import generate_keypair, load_private_key
from dhi_offline.bundle.writer import source_date_epoch_from_env
from dhi_offline.cli.console import emit_rich
from dhi_offline.cli.inputs import load_trusted_root, read_file
from dhi_offline.cli.state import default_state_dir
from dhi_offline.errors import InputError, UsageError
from dhi_offline.export.run import MAX_JOBS, ExportConfig, ExportResult, ImageRequest, run_export
from dhi_offline.export.tuf import collect as collect_tuf
from dhi_offline.export.tuf import fetcher_for
from dhi_offline.net.http import fetch_url
from dhi_offline.oci.client import RegistryClient, RetryPolicy
from dhi_offline.oci.mediatypes import Platform
from dhi_offline.oci.reference import LayoutReference, Reference, parse_reference
from dhi_offline.oci.source import RegistrySource, open_source
from dhi_offline.report._common import clean
from dhi_offline.tlog.rekor_client import RekorClient
from dhi_offline.trust.keyring import Keyring, KeyringEntry, shipped_dhi_keyring
from dhi_offline.trust.keys import load_pem
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.trust.tuf import production_trusted_root
from dhi_offline.verify.policy import parse_duration

SCOUT_REGISTRY = "registry.scout.docker.com"
_H_IMAGES = (
    "Image references, oci-layout:DIR[:TAG|@DIGEST] (or oci:DIR as skopeo writes it), "
    "or oci-archive:FILE[:TAG]."
)
_H_SIGNING_KEY = "Exporter private key (PEM) that signs the evidence bundle."
_H_OUTPUT = "Evidence bundle path (default bundles/<name>.dhi.tar.zst)."
# Help is rich markup: a bracket that is not a style tag must be escaped.
_H_PLATFORM = "OS/ARCH\\[/VARIANT]; repeatable. Default: every platform."
_H_ATT_FROM = (
    "REGISTRY\\[/PREFIX] holding the attestations (default for dhi.io: registry.scout.docker.com)."
)
_H_KEY = (
    "Publisher public key (PEM file or https:// URL; redirects only on the same origin); "
    "repeatable. Default: the shipped DHI keyring."
)
_H_TUF = (
    "Carry Sigstore's TUF metadata from this repository URL or local copy (format version "
    "2), so the host can update its trusted root through TUF."
)
_H_ROOT = "trusted_root.json (default: Sigstore public-good via TUF, else the shipped copy)."
_H_REKOR = "Rekor to complete SET-only entries from (default: the log's URL in the trusted root)."
_H_NO_REKOR = "Do not contact Rekor; SET-only entries stay SET-only."
_H_INSECURE = "HOST[:PORT] spoken to over plain HTTP; repeatable (loopback is plain HTTP already)."
_H_EXPIRES = "Evidence bundle lifetime, e.g. 30d, 12h."
_H_ALLOW = "UNSAFE: pack evidence that failed verification, flagged as such."
_H_JOBS = f"Images fetched at once, 1-{MAX_JOBS} (1: one after another). Same bundle either way."
DEFAULT_JOBS = 8
keys_app = typer.Typer(help="Exporter signing keys.", no_args_is_help=True)


class OutputFormat(StrEnum):
    """Output formats."""

    text = "text"
    json = "json"


def default_attestation_source(ref: Reference) -> str | None:
    """Where Docker Hardened Images keep their attestations (formats.md §1.2).

    ``dhi.io/<repo>`` -> ``registry.scout.docker.com/dhi/<repo>``;
    ``docker.io/<org>/dhi-<name>`` -> ``registry.scout.docker.com/<org>/dhi-<name>``.
    """
    if ref.registry == "dhi.io":
        return f"{SCOUT_REGISTRY}/dhi/{ref.repository}"
    if ref.repository.rsplit("/", 1)[-1].startswith("dhi-"):
        return f"{SCOUT_REGISTRY}/{ref.repository}"
    return None


def attestation_repository(ref: Reference, attestations_from: str) -> Reference:
    """``REGISTRY[/PREFIX]`` applied to ``ref``: the same repository path under PREFIX."""
    registry, _, prefix = attestations_from.partition("/")
    repo = f"{prefix.strip('/')}/{ref.repository}" if prefix else ref.repository
    if not registry or ("." not in registry and ":" not in registry and registry != "localhost"):
        raise UsageError(
            f"--attestations-from {attestations_from!r} must start with a registry host"
        )
    return Reference(registry=registry, repository=repo, tag=None, digest=None)


KEY_URL_TIMEOUT = 20.0
"""Seconds to wait for a ``--key https://...`` server."""


def _keyring(keys: list[str]) -> Keyring:
    if not keys:
        return shipped_dhi_keyring()
    ring = Keyring(name="publisher keys given with --key")
    for i, k in enumerate(keys):
        if k.startswith(("https://", "http://")):
            data = fetch_url(
                k,
                limit=1024 * 1024,
                what=f"key {k}",
                timeout=KEY_URL_TIMEOUT,
                error=UsageError,
                https_only=True,
            )
        else:
            data = read_file(Path(k), what="public key", limit=1024 * 1024)
        ring = ring.with_entry(KeyringEntry(name=f"key-{i + 1}", key=load_pem(data)))
    return ring


def export(
    ctx: typer.Context,
    images: Annotated[
        list[str],
        typer.Argument(metavar="IMAGE...", help=_H_IMAGES),
    ],
    signing_key: Annotated[
        Path,
        typer.Option("--signing-key", help=_H_SIGNING_KEY),
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help=_H_OUTPUT),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help=_H_PLATFORM),
    ] = None,
    attestations_from: Annotated[
        str | None,
        typer.Option(
            "--attestations-from",
            help=_H_ATT_FROM,
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help=_H_KEY,
        ),
    ] = None,
    trusted_root: Annotated[
        Path | None,
        typer.Option(
            "--trusted-root",
            help=_H_ROOT,
        ),
    ] = None,
    rekor_url: Annotated[
        str | None,
        typer.Option(
            "--rekor-url",
            help=_H_REKOR,
        ),
    ] = None,
    no_rekor: Annotated[
        bool,
        typer.Option("--no-rekor", help=_H_NO_REKOR),
    ] = False,
    insecure_registry: Annotated[
        list[str] | None,
        typer.Option(
            "--insecure-registry",
            help=_H_INSECURE,
        ),
    ] = None,
    expires: Annotated[str, typer.Option("--expires", help=_H_EXPIRES)] = "30d",
    retries: Annotated[
        int,
        typer.Option("--retries", help="Retries of a failed registry request (429, 5xx, resets)."),
    ] = 4,
    retry_max_wait: Annotated[
        float,
        typer.Option(
            "--retry-max-wait", help="Longest wait between retries, in seconds (caps Retry-After)."
        ),
    ] = 20.0,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help=_H_ALLOW,
        ),
    ] = False,
    jobs: Annotated[int, typer.Option("-j", "--jobs", help=_H_JOBS)] = DEFAULT_JOBS,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.text,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="REF",
            help="The real name (registry/repo:tag) to record for the one OCI layout image.",
        ),
    ] = None,
    tuf_metadata: Annotated[
        str | None,
        typer.Option("--tuf-metadata", metavar="URL|DIR", help=_H_TUF),
    ] = None,
    tuf_root_from: Annotated[
        int,
        typer.Option("--tuf-root-from", metavar="N", help="First TUF root version to carry."),
    ] = 1,
) -> None:
    """Collect images, attestations, log proofs and keys into one signed evidence bundle.

    Exit 0 when everything verified, 1 when some evidence failed verification (it is
    left out unless --allow-unverified), 2 for usage or registry errors.
    """
    if rekor_url and no_rekor:
        raise UsageError("--rekor-url and --no-rekor are alternatives")
    originals: dict[str, str] = {}
    if any(t.startswith(ARCHIVE_PREFIX) for t in images):
        scratch = Path(tempfile.mkdtemp(prefix="dhi-offline-archives-"))
        ctx.call_on_close(lambda: shutil.rmtree(scratch, ignore_errors=True))
        images = [_unpacked(t, scratch / str(n), originals) for n, t in enumerate(images)]
    if not 1 <= jobs <= MAX_JOBS:
        raise UsageError(f"--jobs must be between 1 and {MAX_JOBS}, got {jobs}")
    platforms = tuple(Platform.parse(p) for p in platform) if platform else None
    private_key = load_private_key(signing_key)
    console = Console(stderr=True, quiet=output_format is OutputFormat.json)
    warnings: list[str] = []
    tuf = None
    if tuf_metadata is not None:
        tuf = collect_tuf(
            fetcher_for(tuf_metadata),
            root_from=tuf_root_from,
            at=datetime.now(UTC).replace(microsecond=0),
        )
    if trusted_root is not None:
        root = load_trusted_root(trusted_root)
    elif tuf is not None:
        # Verified through TUF just now: no need for sigstore-python's online update.
        root = TrustedRoot.from_bytes(tuf.result.trusted_root)
    else:
        root, note = production_trusted_root()
        if note:
            warnings.append(note)
            console.print(f"[yellow]warning:[/] {_plain(note)}")
    client = RegistryClient(
        insecure_registries=insecure_registry or (),
        retry=RetryPolicy(
            max_attempts=max(1, retries + 1),
            backoff_max=retry_max_wait,
            retry_after_cap=retry_max_wait,
        ),
        # Each worker talks to two registries (image, attestations): room for a kept-alive
        # connection to both, and never fewer than the 8 the sequential export had.
        concurrency=max(8, 2 * jobs),
        remember_referrers_api=True,
    )
    requests: list[ImageRequest] = []
    layouts = [t for t in images if isinstance(parse_reference(t), LayoutReference)]
    if name is not None:
        if len(layouts) != 1:
            raise UsageError("--name names the one OCI layout image of the export")
        if not isinstance(parse_reference(name), Reference):
            raise UsageError(f"--name {name!r} must be a registry reference (host/repo:tag)")
    for text in images:
        ref = parse_reference(text)
        source, what = open_source(ref, client)
        att_sources = []
        if isinstance(ref, Reference):
            target = attestations_from or default_attestation_source(ref)
            if target:
                att_ref = (
                    attestation_repository(ref, attestations_from)
                    if attestations_from
                    else parse_reference(target)
                )
                if not isinstance(att_ref, Reference):
                    raise UsageError(f"--attestations-from {target!r} must name a registry")
                att_sources.append(RegistrySource(client, att_ref))
        elif attestations_from:
            raise UsageError("--attestations-from applies to registry images, not oci-layout:")
        recorded = originals.get(text, str(ref))
        if name is not None and isinstance(ref, LayoutReference):
            recorded = name
        requests.append(ImageRequest(recorded, what, source, tuple(att_sources)))
    now = datetime.now(UTC).replace(microsecond=0)
    epoch = source_date_epoch_from_env()
    if epoch is not None:
        now = datetime.fromtimestamp(epoch, UTC)
    out_path = output or Path("bundles") / f"{_slug(requests[0].reference)}.dhi.tar.zst"
    # Directories this export creates for its output are removed again if it fails.
    created = [p for p in (out_path.parent, *out_path.parent.parents) if not p.exists()]
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def make_rekor(base_url: str) -> RekorClient:
        return RekorClient(rekor_url or base_url)

    config = ExportConfig(
        output=out_path,
        signing_key=private_key,
        keyring=_keyring(key or []),
        trusted_root=root,
        now=now,
        expires=parse_duration(expires),
        state_dir=default_state_dir(),
        platforms=platforms,
        rekor=None if no_rekor else make_rekor,
        allow_unverified=allow_unverified,
        source_date_epoch=epoch,
        jobs=jobs,
        tuf_members=tuple(tuf.members) if tuf is not None else (),
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[received]}"),
        TimeElapsedColumn(),
        console=console,
        disable=output_format is OutputFormat.json,
    )
    images_task = progress.add_task("images", total=len(requests), received="")
    received = [0]
    received_lock = threading.Lock()

    def on_bytes(n: int) -> None:
        # Called from the export's worker threads (every other event comes from this one).
        with received_lock:
            received[0] += n
            total = received[0]
        progress.update(images_task, received=filesize.decimal(total))

    client.progress = on_bytes
    started = [0]

    def on_event(kind: str, message: str) -> None:
        if kind == "image":
            if started[0]:
                progress.advance(images_task)
            started[0] += 1
            progress.update(images_task, description=f"exporting {message}")
            return
        if kind == "step":
            return  # too chatty beside a progress bar; the summary has the figures
        if kind == "warning":
            warnings.append(message)
        style, prefix = {"warning": ("yellow", "warning:"), "failed": ("red", "NOT VERIFIED:")}[
            kind
        ]
        progress.console.print(f"[{style}]{prefix} {_plain(message)}[/]", highlight=False)

    try:
        with progress:
            result = run_export(requests, config, on_event)
            progress.update(images_task, completed=len(requests), description="exported")
    except BaseException:
        for directory in created:  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    finally:
        client.close()
    result.warnings.extend(warnings)
    _render(result, output_format)
    if result.failed and not allow_unverified:
        raise typer.Exit(1)


ARCHIVE_PREFIX = "oci-archive:"


def _unpacked(text: str, into: Path, originals: dict[str, str]) -> str:
    """``oci-archive:FILE[:TAG]`` (a tar of an OCI layout, as skopeo writes it) unpacked
    into ``into`` and given back as ``oci-layout:DIR[:TAG]``; other references as they
    are. The evidence bundle records the ``oci-archive:`` reference, unless ``--name``.

    Raises:
        InputError: the file is not a readable tar, or holds links, devices or paths
            outside the OCI archive (tarfile's ``data`` filter).
    """
    if not text.startswith(ARCHIVE_PREFIX):
        return text
    rest = text[len(ARCHIVE_PREFIX) :]
    head, sep, tail = rest.rpartition(":")
    file, tag = (head, tail) if sep and head and "/" not in tail else (rest, None)
    try:
        with tarfile.open(file, mode="r:*") as tar:
            tar.extractall(into, filter="data")
    except (OSError, tarfile.TarError) as e:
        raise InputError(f"cannot unpack {text}: {e}") from e
    layout_text = f"oci-layout:{into}" + (f":{tag}" if tag else "")
    originals[layout_text] = text
    return layout_text


def _plain(value: object) -> str:
    """Registry content (predicate types, references, error text) shown literally: rich
    markup escaped, terminal control characters removed."""
    return escape(clean(value))


def _slug(reference: str) -> str:
    tail = reference.rsplit("/", 1)[-1]
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in tail).strip("-") or "bundle"


def _render(result: ExportResult, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(export_summary(result), indent=2, sort_keys=True))
        return
    emit_rich(lambda console: _render_text(console, result))


def _render_text(console: Console, result: ExportResult) -> None:
    table = Table(title="exported evidence", show_lines=False)
    for col in ("image", "digest", "platforms", "attestations"):
        table.add_column(col)
    for img in result.images:
        count = sum(1 for r in result.verified if r.record.image == img.digest)
        plats = ", ".join(p.platform or "(single)" for p in img.platforms)
        table.add_row(_plain(img.reference), img.digest[:19] + "…", _plain(plats), str(count))
    console.print(table)
    for ptype, n in result.by_predicate.items():
        console.print(f"  {n:4d}  {_plain(ptype)}")
    cov = result.tlog_coverage
    console.print(
        f"log proofs: {cov['inclusion-proof']} with inclusion proof, {cov['set-only']} SET only, "
        f"{cov['absent']} not logged; {result.completed_entries} completed from Rekor"
    )
    if result.failed:
        console.print(
            f"[red]{len(result.failed)} attestation(s) failed verification[/]"
            + (" and were packed flagged UNVERIFIED" if result.flags else " and were left out")
        )
    console.print(f"bundle: {_plain(result.bundle.path)} ({result.bundle.size} bytes)")
    console.print(f"sha256: {result.bundle.sha256}  sequence: {result.sequence}")


def export_summary(result: ExportResult) -> dict[str, object]:
    """The JSON form of an export's outcome (documented in docs/cli.md)."""
    return {
        "bundle": {
            "path": str(result.bundle.path),
            "size": result.bundle.size,
            "sha256": result.bundle.sha256,
        },
        "sequence": result.sequence,
        "flags": list(result.flags),
        "images": [
            {
                "reference": img.reference,
                "digest": img.digest,
                "platforms": [{"platform": p.platform, "digest": p.digest} for p in img.platforms],
            }
            for img in result.images
        ],
        "attestations": {
            "verified": len(result.verified),
            "failed": len(result.failed),
            "byPredicateType": result.by_predicate,
        },
        "failures": [
            {"id": r.id, "platform": r.platform, "reason": why} for r, why in result.failed
        ],
        "tlog": {**result.tlog_coverage, "completedFromRekor": result.completed_entries},
        "warnings": result.warnings,
    }


@keys_app.command("generate")
def keys_generate(
    output: Annotated[
        Path, typer.Option("--output", help="PREFIX: writes PREFIX.pem (0600) and PREFIX.pub.")
    ],
) -> None:
    """Generate an ECDSA P-256 key pair for signing evidence bundles."""
    pair = generate_keypair(output)
    typer.echo(
        f"private key: {pair.private_key} (mode 0600)\n"
        f"public key:  {pair.public_key}\n"
        f"key id:      {pair.key_id}"
    )
