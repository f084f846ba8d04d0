"""``push`` on this host: verify a bundle (a file, or one the archive kept), then deliver it.

Verification is the same plan ``verify`` runs, with the same trust, policy and clock;
a bundle refused at steps 1-4 pushes nothing. The extracted members live in a private
work directory until the push is done.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dhi_offline.archive.store import Archive
from dhi_offline.deliver.push import Action, PushOptions, PushReport, push_verified
from dhi_offline.deliver.site import SiteKey
from dhi_offline.errors import InputError, UsageError
from dhi_offline.host import session
from dhi_offline.host.session import Attempt, HostRun
from dhi_offline.oci.client import RegistryClient
from dhi_offline.verify.bundle import file_sha256


@dataclass(frozen=True)
class PushRun:
    """The verification, and the push when the bundle verified."""

    attempt: Attempt
    push: PushReport | None
    bundle: Path


def _archived(archive: Archive, which: str) -> tuple[Path, str, int]:
    archive.verify()
    with archive.lock(exclusive=False):
        history = archive.history()
    lines = session.select(history, which)
    if len(lines) != 1:
        raise UsageError(f"--from-archive {which!r} matches {len(lines)} imports; name one")
    line = lines[0]
    kept = archive.stored_bundle(line)
    if kept is None:
        raise InputError(f"import #{line.index} kept no bundle (over the quarantine cap)")
    return kept, line.bundle, line.index


def push(
    bundle: Path | None,
    run: HostRun,
    archive: Archive,
    *,
    from_archive: str | None,
    explicit_archive: bool,
    key: SiteKey,
    client: RegistryClient,
    options: PushOptions,
    on_action: Callable[[Action], None] | None = None,
) -> PushRun:
    """Verify, then push (``dhi_offline.deliver.push``) when the bundle verified.

    Raises:
        UsageError: neither or both of BUNDLE and ``from_archive``.
        InputError: unreadable bundle or archive.
        RegistryError: the registry failed (a re-run completes the push).
    """
    if (bundle is None) == (from_archive is None):
        raise UsageError("give a BUNDLE file or --from-archive N (one of them)")
    workdir = session.make_workdir()
    try:
        if from_archive is not None:
            path, sha256, index = _archived(archive, from_archive)
            with archive.lock(exclusive=False):
                history = archive.history()
            result = session.attempt(
                path,
                run,
                history,
                sha256=sha256,
                size=path.stat().st_size,
                rollback_note=f"archived as #{index}: rollback not applied to a kept bundle",
                workdir=workdir,
            )
        else:
            if bundle is None:  # for the type checker: checked above
                raise UsageError("give a BUNDLE file")
            path = bundle
            result = session.verify(path, run, archive, explicit=explicit_archive, workdir=workdir)
            sha256 = ""
        verified = result.verified
        if verified is None:
            return PushRun(result, None, path)
        sha256 = sha256 or verified.report.bundle_sha256 or file_sha256(path)
        report = push_verified(
            verified,
            bundle=path,
            bundle_sha256=sha256,
            key=key,
            client=client,
            options=options,
            time_verified=run.time.now,
            on_action=on_action,
        )
        return PushRun(result, report, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
