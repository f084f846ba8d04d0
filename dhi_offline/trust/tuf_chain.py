"""Verify Sigstore's TUF metadata offline: from a pinned root to a new trusted root.

A pure function over bytes (no file, no socket), so the same check runs on the
connected side before a bundle is written (``export --tuf-metadata``) and on the host
(``trust update-root``, ``import``). The rules are python-tuf's own
(``TrustedMetadataSet``, the TUF specification's client workflow 5.3-5.6): each new root
is signed by a threshold of the previous root's keys and of its own, versions go up by
exactly one, the final root, timestamp, snapshot and targets are unexpired at the
reference time, each role's bytes match the length and hashes its parent lists, and the
metadata accepted last time (timestamp, snapshot, targets) guards against rollback.

This module imports ``tuf.ngclient``, whose package also defines an HTTP fetcher, so
``dhi_offline/verify/`` never imports it; the host layer runs the chain, and imports this
module only when a chain is to be verified (what it returns is defined in
:mod:`dhi_offline.trust.tuf_state`, which every verification reads).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Signed, Snapshot, Targets, Timestamp

from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import TrustMaterialError, TufError
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.trust.tuf_state import TufAccepted, TufResult

if TYPE_CHECKING:
    from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet

TRUSTED_ROOT_TARGET: Final = "trusted_root.json"
"""The target that carries the Sigstore trusted root."""

SIGNING_CONFIG_TARGETS: Final = ("signing_config.v0.2.json", "signing_config.json")
"""Signing-config targets carried along when the targets role lists them (first wins)."""

TARGET_NAMES: Final = (TRUSTED_ROOT_TARGET, *SIGNING_CONFIG_TARGETS)


def _peek_version(data: bytes, role: type[Signed]) -> int | None:
    # Unverified, only to name the document in a message.
    try:
        signed = json.loads(data)["signed"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    version = signed.get("version") if isinstance(signed, dict) else None
    if signed.get("_type") != role.type or type(version) is not int:
        return None
    return version


def _signatures(delegator: Root, role: str, data: bytes) -> tuple[int, int] | None:
    try:
        md = Metadata[Root].from_bytes(data)
        result = delegator.get_verification_result(role, md.signed_bytes, md.signatures)
    except Exception:  # unparseable: the caller falls back to python-tuf's message
        return None
    return len(result.signed), result.threshold


def _time(value: datetime) -> str:
    return format_rfc3339(value)


def _update_roots(trusted: TrustedMetadataSet, roots: Sequence[bytes]) -> None:
    for data in roots:
        current = trusted.root
        version = _peek_version(data, Root)
        name = f"root v{version}" if version is not None else f"root #{current.version + 1}"
        try:
            trusted.update_root(data)
        except tuf_errors.BadVersionNumberError as e:
            raise TufError(
                f"{name} cannot follow root v{current.version}: each root must be the "
                f"previous version plus 1 ({e})"
            ) from e
        except tuf_errors.UnsignedMetadataError as e:
            by_old = _signatures(current, Root.type, data)
            if by_old is not None and by_old[0] < by_old[1]:
                raise TufError(
                    f"{name} has {by_old[0]} of {by_old[1]} required signatures of the keys "
                    f"of root v{current.version}"
                ) from e
            raise TufError(f"{name} is not signed by a threshold of its own keys ({e})") from e
        except (tuf_errors.RepositoryError, ValueError) as e:
            raise TufError(f"{name} does not load: {e}") from e


def _load_accepted_timestamp(trusted: TrustedMetadataSet, accepted: TufAccepted) -> None:
    # As ngclient does with its local copies: a copy that no longer verifies (keys
    # rotated by a new root) is dropped; an expired one still guards against rollback.
    if accepted.timestamp is not None:
        with contextlib.suppress(tuf_errors.RepositoryError):
            trusted.update_timestamp(accepted.timestamp)


def _update_timestamp(
    trusted: TrustedMetadataSet, data: bytes, accepted: bytes | None, at: datetime
) -> bytes:
    """The timestamp now trusted: ``data``, or the accepted copy of the same version."""
    had = trusted.get(Timestamp.type)
    version = _peek_version(data, Timestamp)
    name = f"timestamp v{version}" if version is not None else "timestamp"
    try:
        trusted.update_timestamp(data)
    except tuf_errors.EqualVersionNumberError as e:
        # The version accepted before: keep using the trusted copy, as ngclient does.
        if trusted.timestamp.is_expired(at):
            raise TufError(
                f"{name} expired at {_time(trusted.timestamp.expires)} "
                f"(reference time {format_rfc3339(at)})"
            ) from e
        return accepted or data
    except tuf_errors.BadVersionNumberError as e:
        old = had.version if had is not None else "?"
        raise TufError(
            f"{name} is a rollback: timestamp v{old} (or its snapshot version) was accepted "
            f"before ({e})"
        ) from e
    except tuf_errors.ExpiredMetadataError as e:
        if trusted.root.is_expired(at):
            raise TufError(
                f"root v{trusted.root.version} expired at {_time(trusted.root.expires)} "
                f"(reference time {format_rfc3339(at)}): carry a newer root"
            ) from e
        raise TufError(
            f"{name} expired at {_time(trusted.timestamp.expires)} "
            f"(reference time {format_rfc3339(at)})"
        ) from e
    except tuf_errors.UnsignedMetadataError as e:
        sig = _signatures(trusted.root, Timestamp.type, data)
        have = f"has {sig[0]} of {sig[1]} required signatures" if sig else f"is unsigned ({e})"
        raise TufError(f"{name} {have} of root v{trusted.root.version}'s keys") from e
    except (tuf_errors.RepositoryError, ValueError) as e:
        raise TufError(f"{name} does not load: {e}") from e
    return data


def _update_snapshot(
    trusted: TrustedMetadataSet, data: bytes, accepted: bytes | None, at: datetime
) -> None:
    if accepted is not None:
        # Loaded as intermediate (still a rollback guard) or dropped, as ngclient does.
        with contextlib.suppress(tuf_errors.RepositoryError):
            trusted.update_snapshot(accepted, trusted=True)
    version = _peek_version(data, Snapshot)
    name = f"snapshot v{version}" if version is not None else "snapshot"
    try:
        trusted.update_snapshot(data)
    except tuf_errors.LengthOrHashMismatchError as e:
        raise TufError(
            f"snapshot.json differs from the length or hashes in timestamp "
            f"v{trusted.timestamp.version} ({e})"
        ) from e
    except tuf_errors.ExpiredMetadataError as e:
        raise TufError(
            f"{name} expired at {_time(trusted.snapshot.expires)} "
            f"(reference time {format_rfc3339(at)})"
        ) from e
    except tuf_errors.BadVersionNumberError as e:
        raise TufError(f"{name} is a rollback or not the version timestamp names ({e})") from e
    except tuf_errors.UnsignedMetadataError as e:
        raise TufError(f"{name} is not signed by root v{trusted.root.version}'s keys ({e})") from e
    except (tuf_errors.RepositoryError, ValueError) as e:
        raise TufError(f"{name} does not load: {e}") from e


def _update_targets(
    trusted: TrustedMetadataSet, data: bytes, accepted: bytes | None, at: datetime
) -> Targets:
    version = _peek_version(data, Targets)
    name = f"targets v{version}" if version is not None else "targets"
    try:
        targets = trusted.update_targets(data)
    except tuf_errors.LengthOrHashMismatchError as e:
        raise TufError(
            f"targets.json differs from the length or hashes in snapshot "
            f"v{trusted.snapshot.version} ({e})"
        ) from e
    except tuf_errors.ExpiredMetadataError as e:
        raise TufError(f"{name} is expired at reference time {format_rfc3339(at)} ({e})") from e
    except tuf_errors.BadVersionNumberError as e:
        raise TufError(f"{name} is not the version snapshot names ({e})") from e
    except tuf_errors.UnsignedMetadataError as e:
        raise TufError(f"{name} is not signed by root v{trusted.root.version}'s keys ({e})") from e
    except (tuf_errors.RepositoryError, ValueError) as e:
        raise TufError(f"{name} does not load: {e}") from e
    old = _peek_version(accepted, Targets) if accepted is not None else None
    # The snapshot check above already refuses this; kept so the rule does not depend
    # on the accepted snapshot still verifying under a rotated snapshot key.
    if old is not None and targets.version < old:
        raise TufError(f"targets v{targets.version} is a rollback: targets v{old} was accepted")
    return targets


def _target(targets: Targets, name: str, files: Mapping[str, bytes]) -> bytes | None:
    info = targets.targets.get(name)
    data = files.get(name)
    if info is None:
        if data is not None:
            raise TufError(f"{name} is carried but targets v{targets.version} does not list it")
        return None
    if data is None:
        return None
    try:
        info.verify_length_and_hashes(data)
    except tuf_errors.LengthOrHashMismatchError as e:
        raise TufError(
            f"{name} differs from the length or hashes in targets v{targets.version} ({e})"
        ) from e
    return data


def verify_chain(
    pinned_root: bytes,
    roots: Sequence[bytes],
    timestamp: bytes,
    snapshot: bytes,
    targets: bytes,
    *,
    target_files: Mapping[str, bytes],
    at: datetime,
    accepted: TufAccepted | None = None,
) -> TufResult:
    """Verify TUF metadata from ``pinned_root`` and return the new trusted root.

    Args:
        pinned_root: the root this host trusts (verified only by itself).
        roots: every newer root, versions pinned+1 .. newest, in order.
        timestamp, snapshot, targets: the top-level metadata (exact bytes).
        target_files: target name -> bytes; ``trusted_root.json`` is required, a
            signing config is checked when present.
        at: reference time for every expiry check.
        accepted: metadata accepted on an earlier run, for rollback protection.

    Raises:
        TufError: any rule fails; the message names the role, version and rule.
    """
    unknown = sorted(set(target_files) - set(TARGET_NAMES))
    if unknown:
        raise TufError(f"unexpected TUF target {unknown[0]!r}")
    # Lazy: tuf.ngclient's package also loads its HTTP fetcher (urllib3), ~0.1 s that
    # every verification would pay for the pinned-root lookup alone.
    from tuf.ngclient._internal.trusted_metadata_set import (  # noqa: PLC0415
        TrustedMetadataSet,
    )
    from tuf.ngclient.config import EnvelopeType  # noqa: PLC0415

    at = at.astimezone(UTC)
    try:
        trusted = TrustedMetadataSet(pinned_root, EnvelopeType.METADATA)
    except (tuf_errors.RepositoryError, ValueError) as e:
        raise TufError(f"the pinned root does not load: {e}") from e
    trusted.reference_time = at
    pinned_version = trusted.root.version
    _update_roots(trusted, roots)
    accepted = accepted or TufAccepted()
    _load_accepted_timestamp(trusted, accepted)
    timestamp = _update_timestamp(trusted, timestamp, accepted.timestamp, at)
    _update_snapshot(trusted, snapshot, accepted.snapshot, at)
    top = _update_targets(trusted, targets, accepted.targets, at)
    trusted_root = _target(top, TRUSTED_ROOT_TARGET, target_files)
    if trusted_root is None:
        listed = TRUSTED_ROOT_TARGET in top.targets
        raise TufError(
            f"{TRUSTED_ROOT_TARGET} is not carried"
            if listed
            else f"targets v{top.version} does not list {TRUSTED_ROOT_TARGET}"
        )
    try:
        TrustedRoot.from_bytes(trusted_root)
    except TrustMaterialError as e:
        raise TufError(f"{TRUSTED_ROOT_TARGET} verified but is unusable: {e.message}") from e
    signing_config: bytes | None = None
    signing_name: str | None = None
    for name in SIGNING_CONFIG_TARGETS:
        data = _target(top, name, target_files)
        if data is not None and signing_config is None:
            signing_config, signing_name = data, name
    final_roles = [trusted.root, trusted.timestamp, trusted.snapshot, top]
    return TufResult(
        root=roots[-1] if roots else pinned_root,
        pinned_version=pinned_version,
        root_version=trusted.root.version,
        timestamp=timestamp,
        snapshot=snapshot,
        targets=targets,
        timestamp_version=trusted.timestamp.version,
        snapshot_version=trusted.snapshot.version,
        targets_version=top.version,
        trusted_root=trusted_root,
        signing_config=signing_config,
        signing_config_name=signing_name,
        expires=min(s.expires for s in final_roles),
    )
