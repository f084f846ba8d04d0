"""Publisher keyring changes a bundle carries: surfaced, never applied.

A bundle carries the publisher keyring its exporter checked the evidence against
(``keys/publisher-keyring.json``). When it differs from the keyring this host pins (a key
the host does not pin, such as a publisher's next key; or another status or validity
window for a key it does pin), the report says so in a note, once per key, with the key's
fingerprint and the command that adopts the change after the operator compared that
fingerprint with the one the publisher publishes. The host's own keyring always decides:
nothing from the bundle is trusted without ``--trust-bundle-keys``.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from dhi_offline.bundle import layout
from dhi_offline.bundle.reader import open_bundle
from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import BundleFormatError, InputError, TrustMaterialError
from dhi_offline.trust.keyring import Keyring, KeyringEntry, keyring_from_json, shipped_dhi_keyring
from dhi_offline.trust.keys import PublicKey

WRITE_DIR = "bundle-keys"
"""The directory the notes' commands write a bundle's keys to."""

_RANK = {"active": 0, "inactive": 1, "revoked": 2}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def pin_name(entry: KeyringEntry) -> str:
    """The name to pin ``entry`` under, and its file's stem: the keyring's name when it is
    a plain file name (the bundle chose it), else ``key-`` and 12 digits of its id."""
    return entry.name if _SAFE_NAME.fullmatch(entry.name) else f"key-{entry.key_id[:12]}"


def fingerprint(key: PublicKey) -> str:
    """``<algorithm> sha256:<hex of the DER SubjectPublicKeyInfo>``, the key id in full."""
    return f"{key.algorithm} sha256:{key.key_id}"


def describe_state(entry: KeyringEntry) -> str:
    """Status and validity window, e.g. ``inactive, valid until 2025-04-16T20:37:45Z``."""
    lo = f" from {format_rfc3339(entry.not_before)}" if entry.not_before else ""
    hi = f" until {format_rfc3339(entry.not_after)}" if entry.not_after else ""
    window = f"valid{lo}{hi}" if lo or hi else "no validity window"
    return f"{entry.status}, {window}"


@dataclass(frozen=True)
class KeyringChange:
    """One key on which the bundle's keyring and the host's differ."""

    kind: Literal["unpinned", "changed"]
    carried: KeyringEntry
    """The key as the bundle's keyring lists it."""
    pinned: KeyringEntry | None = None
    """The key as this host pins it (``changed`` only)."""
    shipped: bool = False
    """The host's entry is a key shipped with the tool (``trust distrust`` applies)."""

    @property
    def narrows(self) -> bool:
        """The bundle trusts the key less than the host does (status or window)."""
        c, p = self.carried, self.pinned
        if p is None:
            return False
        return (
            _RANK[c.status] > _RANK[p.status]
            or _later(c.not_before, p.not_before)
            or _earlier(c.not_after, p.not_after)
        )

    def note(self, bundle: str) -> str:
        """The report note; ``bundle`` is the bundle's path, for the commands."""
        c = self.carried
        name = pin_name(c)
        pin = (
            f"write it out with 'dhi-offline trust bundle-keys {shlex.quote(bundle)} "
            f"--write {WRITE_DIR}', compare the fingerprint with the one the publisher "
            f"publishes, then: dhi-offline trust add {WRITE_DIR}/{name}.pub "
            f"--role publisher --name {name}"
        )
        if self.pinned is None:
            head = (
                f"bundle keyring names publisher key {name} ({fingerprint(c.key)}; "
                f"{describe_state(c)}) that this host does not pin"
            )
            if c.status == "revoked":
                return f"{head}; revoked by its publisher, nothing to pin"
            return f"{head}; to trust it, {pin}"
        p = self.pinned
        head = (
            f"bundle keyring lists publisher key {name} ({fingerprint(c.key)}) as "
            f"{describe_state(c)}; this host pins it as {describe_state(p)} and keeps "
            "doing so"
        )
        if self.narrows:
            stop = "distrust" if self.shipped else "remove"
            return (
                f"{head}; if the publisher confirms the change, stop trusting it here with: "
                f"dhi-offline trust {stop} {shlex.quote(p.name)}"
            )
        return f"{head}; if the publisher confirms the change, {pin}"


def _later(a: datetime | None, b: datetime | None) -> bool:
    # A start is later when it bounds what was unbounded, or moves forward.
    return a is not None and (b is None or a > b)


def _earlier(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and (b is None or a < b)


def keyring_changes(
    host: Keyring,
    carried: Keyring,
    *,
    ignore: Collection[str] = (),
    shipped: Keyring | None = None,
) -> tuple[KeyringChange, ...]:
    """How ``carried`` (a bundle's keyring) differs from ``host``, in ``carried``'s order.

    Keys the host pins and the bundle does not list are no change (a bundle needs only
    the keys its evidence was signed with). Names are not compared: each side names keys
    its own way.

    Args:
        host: the publisher keyring this host verifies with.
        carried: the keyring the bundle carries.
        ignore: key ids to leave out (shipped keys this host distrusts: the report
            already warns about them).
        shipped: the keyring shipped with the tool (default :func:`shipped_dhi_keyring`),
            to tell which pinned keys ``trust distrust`` applies to.
    """
    out: list[KeyringChange] = []
    for c in carried.entries:
        if c.key_id in ignore:
            continue
        p = host.by_id(c.key_id)
        if p is None:
            out.append(KeyringChange("unpinned", c))
        elif (c.status, c.not_before, c.not_after) != (p.status, p.not_before, p.not_after):
            # Read only now: most bundles carry no change, and this reads package files.
            shipped = shipped or shipped_dhi_keyring()
            was_shipped = shipped.by_id(p.key_id) is not None
            out.append(KeyringChange("changed", c, p, shipped=was_shipped))
    return tuple(out)


def keyring_notes(
    data: bytes,
    host: Keyring,
    *,
    bundle: str,
    ignore: Collection[str] = (),
    warnings: list[str],
) -> list[str]:
    """The notes for a bundle's keyring document ``data`` against ``host``.

    A keyring that does not parse is a warning appended to ``warnings`` (nothing from it
    is used unless ``--trust-bundle-keys``, which refuses it on its own).
    """
    try:
        carried = keyring_from_json(data)
    except TrustMaterialError as e:
        warnings.append(f"the bundle's publisher keyring is unreadable: {e.message}")
        return []
    return [c.note(bundle) for c in keyring_changes(host, carried, ignore=ignore)]


def read_bundle_keyring(path: Path, *, exporters: Mapping[str, PublicKey]) -> Keyring:
    """The publisher keyring a bundle carries, once its manifest signature (by one of
    ``exporters``, key id -> key) and every member's hash verified.

    Raises:
        BundleFormatError: the bundle is malformed, or carries no publisher keyring.
        VerificationError: a signature or member hash does not verify.
        InputError: the file cannot be read, or no work directory can be made.
        TrustMaterialError: the keyring is malformed.
    """
    try:
        work = Path(tempfile.mkdtemp(prefix="dhi-offline-keys-"))
    except OSError as e:
        raise InputError(f"cannot create a work directory: {e.strerror or e}") from e
    try:
        opened = open_bundle(
            path, trusted_exporters=exporters.get, dest=work, memory_budget=1024 * 1024
        )
        if not opened.has(layout.KEYRING):
            raise BundleFormatError(f"{path} carries no publisher keyring ({layout.KEYRING})")
        return keyring_from_json(opened.read_bytes(layout.KEYRING))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_keys(ring: Keyring, directory: Path) -> list[Path]:
    """Write each key of ``ring`` as ``directory/<pin_name>.pub`` (PEM); returns the paths.

    A file already there with the same key is left as is.

    Raises:
        InputError: the directory cannot be written, or a file there holds another key.
    """
    written: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for entry in ring.entries:
            target = directory / f"{pin_name(entry)}.pub"
            pem = entry.key.pem()
            with contextlib.suppress(FileNotFoundError):
                if target.read_bytes() != pem:
                    raise InputError(f"{target} exists and holds another key: not overwritten")
            target.write_bytes(pem)
            written.append(target)
    except OSError as e:
        raise InputError(f"cannot write keys to {directory}: {e.strerror or e}") from e
    return written
