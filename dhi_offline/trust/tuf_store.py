"""What this host pinned through Sigstore's TUF repository, per repository instance.

One JSON file per instance (``<config>/tuf/production.json``, ``.../staging.json``)
holds the newest verified TUF root (the next chain starts there), the timestamp,
snapshot and targets accepted last (rollback protection), and the trusted root and
signing config they vouch for. Before the first update the chain starts from the root
shipped with the package (``dhi_offline/data/tuf/``). Written as the trust store is:
one file, replaced atomically, under an exclusive lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import InputError, TrustMaterialError
from dhi_offline.trust.shipped import Instance, shipped_tuf_root
from dhi_offline.trust.tuf_state import TufAccepted, TufResult

TUF_DIR = "tuf"


@dataclass(frozen=True)
class TufPin:
    """The pinned state of one TUF repository instance."""

    instance: Instance
    root: bytes
    """The root the next chain starts from."""
    root_version: int
    accepted: TufAccepted
    targets_version: int | None = None
    trusted_root: bytes | None = None
    """The trusted root accepted through TUF (None: never updated, use the shipped one)."""
    trusted_root_sha256: str | None = None
    signing_config: bytes | None = None
    signing_config_name: str | None = None
    updated: str | None = None

    def label(self) -> str:
        """Where the trusted root came from, for reports."""
        return (
            f"Sigstore TUF ({self.instance}, root v{self.root_version}, "
            f"targets v{self.targets_version}, updated {self.updated})"
        )


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8") if data is not None else None


def _bytes(doc: dict[str, Any], key: str, path: Path) -> bytes | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TrustMaterialError(f"TUF state {path}: {key} is not a string")
    return value.encode("utf-8")


@dataclass(frozen=True)
class TufStore:
    """The TUF pins under ``directory/tuf/``."""

    directory: Path

    def path(self, instance: Instance) -> Path:
        """The state file of ``instance``."""
        return self.directory / TUF_DIR / f"{instance}.json"

    def load(self, instance: Instance) -> TufPin:
        """The pinned state, or the shipped root when nothing was pinned yet.

        Raises:
            TrustMaterialError: the state file is corrupt (never silently reset).
        """
        path = self.path(instance)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            shipped = shipped_tuf_root(instance)
            return TufPin(instance, shipped, _root_version(shipped, path), TufAccepted())
        except (OSError, ValueError, RecursionError) as e:
            raise TrustMaterialError(f"TUF state {path} is unreadable: {e}") from e
        if not isinstance(doc, dict) or doc.get("repository") != instance:
            raise TrustMaterialError(f"TUF state {path} is malformed")
        root = _bytes(doc, "root", path)
        if root is None:
            raise TrustMaterialError(f"TUF state {path} has no root")
        targets_version = doc.get("targetsVersion")
        return TufPin(
            instance=instance,
            root=root,
            root_version=_root_version(root, path),
            accepted=TufAccepted(
                timestamp=_bytes(doc, "timestamp", path),
                snapshot=_bytes(doc, "snapshot", path),
                targets=_bytes(doc, "targets", path),
            ),
            targets_version=targets_version if isinstance(targets_version, int) else None,
            trusted_root=_bytes(doc, "trustedRoot", path),
            trusted_root_sha256=str(doc.get("trustedRootSha256") or "") or None,
            signing_config=_bytes(doc, "signingConfig", path),
            signing_config_name=str(doc.get("signingConfigName") or "") or None,
            updated=str(doc.get("updated") or "") or None,
        )

    def pinned(self, instance: Instance) -> TufPin | None:
        """The state when a trusted root was pinned through TUF, else None.

        Raises:
            TrustMaterialError: the state file is corrupt.
        """
        if not self.path(instance).exists():
            return None
        pin = self.load(instance)
        return pin if pin.trusted_root is not None else None

    def save(self, instance: Instance, result: TufResult, *, now: datetime) -> TufPin:
        """Pin a verified chain's newest root, metadata and trusted root.

        The caller verified ``result`` from the state :meth:`load` returned; the lock
        makes a concurrent update either land before (then this one still wins only
        if it is not older) or after.

        Raises:
            InputError: the state cannot be written.
            TrustMaterialError: a newer state was pinned meanwhile (nothing written).
        """
        with self._locked():
            current = self.load(instance)
            if (
                current.root_version > result.root_version
                or (current.targets_version or 0) > result.targets_version
            ):
                raise TrustMaterialError(
                    f"a newer TUF state was pinned meanwhile (root v{current.root_version}, "
                    f"targets v{current.targets_version}); nothing changed"
                )
            doc = {
                "repository": instance,
                "updated": format_rfc3339(now),
                "rootVersion": result.root_version,
                "targetsVersion": result.targets_version,
                "trustedRootSha256": result.trusted_root_sha256,
                "root": _text(result.root),
                "timestamp": _text(result.timestamp),
                "snapshot": _text(result.snapshot),
                "targets": _text(result.targets),
                "trustedRoot": _text(result.trusted_root),
                "signingConfig": _text(result.signing_config),
                "signingConfigName": result.signing_config_name,
            }
            self._write(self.path(instance), doc)
        return self.load(instance)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Serialise read-modify-write between processes (as the trust store does).
        folder = self.directory / TUF_DIR
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / ".tuf.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise InputError(f"cannot write the TUF state in {folder}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _write(path: Path, doc: dict[str, Any]) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(doc, indent=1, sort_keys=True))
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(path)
        except OSError as e:
            raise InputError(f"cannot write the TUF state {path}: {e.strerror or e}") from e


def _root_version(root: bytes, path: Path) -> int:
    try:
        version = json.loads(root)["signed"]["version"]
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        raise TrustMaterialError(f"TUF root in {path} is malformed") from e
    if type(version) is not int:
        raise TrustMaterialError(f"TUF root in {path} has no integer version")
    return int(version)
