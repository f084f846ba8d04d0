"""The host side of trusted-root updates through Sigstore's TUF repository.

A bundle exported with ``--tuf-metadata`` carries TUF metadata under ``tuf/``. Its
manifest signature says who carried it; the TUF chain from the root this host pinned
(``dhi_offline.trust.tuf_store``) says whether to believe it. ``trust update-root``
verifies and pins; ``verify`` uses the new trusted root for that run only; ``import``
uses it and pins it once the bundle passed and was recorded (``session``).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dhi_offline.bundle import layout
from dhi_offline.bundle.manifest import BundleManifest
from dhi_offline.bundle.reader import Limits, OpenedBundle, inspect_bundle, open_bundle
from dhi_offline.errors import DhiError, InputError, TrustMaterialError, TufError
from dhi_offline.trust.keys import PublicKey
from dhi_offline.trust.shipped import Instance
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.trust.tuf_state import TufResult
from dhi_offline.trust.tuf_store import TufPin, TufStore
from dhi_offline.verify.bundle import BundleTrust
from dhi_offline.verify.result import Progress

DEFAULT_INSTANCE: Instance = "production"
"""The TUF repository ``verify`` and ``import`` check a bundle's ``tuf/`` against."""


@dataclass(frozen=True)
class TufMembers:
    """The ``tuf/`` members of a verified bundle."""

    roots: dict[int, bytes]
    """Root version -> bytes, as carried."""
    timestamp: bytes
    snapshot: bytes
    targets: bytes
    target_files: dict[str, bytes]


@dataclass(frozen=True)
class RootUpdate:
    """What ``trust update-root`` did."""

    before: TufPin
    after: TufPin
    result: TufResult


def tuf_members(opened: OpenedBundle) -> TufMembers | None:
    """The bundle's TUF metadata, or None when it carries none.

    Raises:
        TufError: the ``tuf/`` members are incomplete.
    """
    paths = [m.path for m in opened.manifest.members if m.path.startswith(layout.TUF_PREFIX)]
    if not paths:
        return None
    for fixed in (layout.TUF_TIMESTAMP, layout.TUF_SNAPSHOT, layout.TUF_TARGETS):
        if fixed not in paths:
            raise TufError(f"the evidence bundle carries TUF metadata but not {fixed}")
    roots: dict[int, bytes] = {}
    files: dict[str, bytes] = {}
    for path in paths:
        version = layout.tuf_root_version_of(path)
        if version is not None:
            roots[version] = opened.read_bytes(path)
        elif path.startswith("tuf/targets/"):
            files[path.removeprefix("tuf/targets/")] = opened.read_bytes(path)
    return TufMembers(
        roots=roots,
        timestamp=opened.read_bytes(layout.TUF_TIMESTAMP),
        snapshot=opened.read_bytes(layout.TUF_SNAPSHOT),
        targets=opened.read_bytes(layout.TUF_TARGETS),
        target_files=files,
    )


def run_chain(members: TufMembers, pin: TufPin, *, at: datetime) -> TufResult:
    """The chain from ``pin`` through the carried roots newer than it.

    Raises:
        TufError: the chain does not verify.
    """
    # Roots up to the pinned version are already trusted (or superseded); a gap in the
    # rest is refused by the chain (each root must be the previous version plus 1).
    newer = [members.roots[v] for v in sorted(members.roots) if v > pin.root_version]
    # python-tuf is loaded only when a chain is verified, not by every verification.
    from dhi_offline.trust.tuf_chain import verify_chain  # noqa: PLC0415

    return verify_chain(
        pin.root,
        newer,
        members.timestamp,
        members.snapshot,
        members.targets,
        target_files=members.target_files,
        at=at,
        accepted=pin.accepted,
    )


def _open(
    bundle: Path, trust: BundleTrust, workdir: Path, progress: Progress | None
) -> OpenedBundle:
    def exporter(key_id: str) -> PublicKey | None:
        found = trust.exporters.get(key_id)
        return found[1] if found else None

    def signed(manifest: BundleManifest, signer: PublicKey) -> None:
        if progress is not None:
            progress.exporter_key_id = signer.key_id
            progress.exporter_key_name = trust.exporters[signer.key_id][0]
            progress.sequence = manifest.sequence
            progress.created = manifest.created
            progress.expires = manifest.expires
            progress.format_version = manifest.format_version

    # Only the tuf/ members are needed: everything goes to the work directory on disk.
    return open_bundle(
        bundle, trusted_exporters=exporter, dest=workdir, limits=Limits(), on_signed=signed
    )


def update_root(
    bundle: Path,
    *,
    trust: BundleTrust,
    store: TufStore,
    instance: Instance,
    at: datetime,
    now: datetime,
    workdir: Path,
) -> RootUpdate:
    """``trust update-root``: verify the bundle (steps 1-3), then its TUF chain from the
    pinned root, then pin the new root, metadata and trusted root.

    Raises:
        VerificationError: the bundle (signature, members) or the chain (TufError) is
            refused; nothing is pinned.
        InputError: the bundle carries no TUF metadata, or the state cannot be written.
    """
    opened = _open(bundle, trust, workdir, None)
    members = tuf_members(opened)
    if members is None:
        raise InputError(
            f"evidence bundle {bundle} carries no TUF metadata (export it with --tuf-metadata)"
        )
    before = store.load(instance)
    result = run_chain(members, before, at=at)
    return RootUpdate(before=before, after=store.save(instance, result, now=now), result=result)


def _lists_tuf(bundle: Path) -> bool:
    # The unverified manifest only decides whether to look; the full open verifies.
    try:
        manifest = inspect_bundle(bundle)
    except DhiError:  # reported by the verification that follows
        return False
    return any(m.path.startswith(layout.TUF_PREFIX) for m in manifest.members)


def trust_through_bundle(
    bundle: Path,
    trust: BundleTrust,
    *,
    config_dir: Path,
    at: datetime,
    progress: Progress | None = None,
) -> tuple[BundleTrust, TufResult] | None:
    """The trust for ``bundle`` with the trusted root its TUF metadata vouches for, or
    None when it carries none.

    Raises:
        VerificationError: the bundle's signature or members (steps 1-3), or its TUF
            chain (TufError), are refused.
        InputError: no temporary directory can be made.
    """
    if not _lists_tuf(bundle):
        return None
    try:
        work = Path(tempfile.mkdtemp(prefix="dhi-offline-tuf-"))
    except OSError as e:
        raise InputError(f"cannot create a work directory: {e.strerror or e}") from e
    try:
        members = tuf_members(_open(bundle, trust, work, progress))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if members is None:
        return None
    pin = TufStore(config_dir).load(DEFAULT_INSTANCE)
    result = run_chain(members, pin, at=at)
    try:
        root = TrustedRoot.from_bytes(result.trusted_root)
    except TrustMaterialError as e:  # verify_chain parsed it already; kept for safety
        raise TufError(f"trusted_root.json is unusable: {e.message}") from e
    label = (
        f"Sigstore TUF ({DEFAULT_INSTANCE}, root v{result.root_version}, "
        f"targets v{result.targets_version}, from this bundle)"
    )
    return dataclasses.replace(trust, trusted_root=root, trusted_root_source=label), result


def pin_from_bundle(config_dir: Path, result: TufResult, *, now: datetime) -> TufPin:
    """Pin what :func:`trust_through_bundle` verified (``import``, after recording).

    Raises:
        InputError: the state cannot be written.
        TrustMaterialError: a newer state was pinned meanwhile.
    """
    return TufStore(config_dir).save(DEFAULT_INSTANCE, result, now=now)


def pinned_trusted_root(config_dir: Path, instance: Instance) -> tuple[TrustedRoot, str] | None:
    """The trusted root pinned through TUF and its report label, or None.

    Raises:
        TrustMaterialError: the TUF state or its trusted root is corrupt.
    """
    pin = TufStore(config_dir).pinned(instance)
    if pin is None or pin.trusted_root is None:
        return None
    return TrustedRoot.from_bytes(pin.trusted_root), pin.label()
