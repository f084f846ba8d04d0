"""The host's local trust store: pinned exporter and publisher keys, each with one role.

Roles never mix: an exporter key signs bundles (it vouches for what was collected), a
publisher key signs attestations (it vouches for the image). A key pinned as an
exporter is never accepted as a publisher, and the reverse; the same key cannot be added
under both roles. The store is one JSON file, written atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import InputError, TrustMaterialError, UsageError
from dhi_offline.trust.keys import PublicKey, load_pem

Role = Literal["exporter", "publisher"]
ROLES: frozenset[str] = frozenset({"exporter", "publisher"})
STORE_FILE = "trust.json"


@dataclass(frozen=True)
class PinnedKey:
    """One key of the store."""

    key: PublicKey
    role: Role
    name: str
    added: str

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
        return self.key.key_id

    def to_json(self) -> dict[str, str]:
        """JSON form (the key inline as PEM)."""
        return {
            "keyId": self.key_id,
            "role": self.role,
            "name": self.name,
            "added": self.added,
            "pem": self.key.pem().decode(),
        }


@dataclass(frozen=True)
class TrustStore:
    """The pinned keys in ``directory/trust.json``."""

    directory: Path

    @property
    def path(self) -> Path:
        """The store file."""
        return self.directory / STORE_FILE

    def _doc(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"keys": [], "distrusted": []}
        except (OSError, ValueError, RecursionError) as e:
            raise TrustMaterialError(f"trust store {self.path} is unreadable: {e}") from e
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise TrustMaterialError(f"trust store {self.path} is malformed")
        distrusted = doc.setdefault("distrusted", [])
        if not isinstance(distrusted, list) or not all(
            isinstance(d, dict) and isinstance(d.get("keyId"), str) for d in distrusted
        ):
            raise TrustMaterialError(f"trust store {self.path}: malformed distrusted list")
        return doc

    def distrusted(self) -> dict[str, str]:
        """Shipped keys distrusted on this host: key id -> when it was distrusted."""
        return {str(d["keyId"]): str(d.get("added", "")) for d in self._doc()["distrusted"]}

    def distrust(self, key_id: str, name: str) -> bool:
        """Distrust a shipped key (``trust distrust``); False when it already was."""
        with self._locked():
            keys, current = self.keys(), self.distrusted()
            if key_id in current:
                return False
            now = format_rfc3339(datetime.now(UTC).replace(microsecond=0))
            entries = list(self._doc()["distrusted"])
            self._write(keys, [*entries, {"keyId": key_id, "name": name, "added": now}])
        return True

    def keys(self) -> list[PinnedKey]:
        """Every pinned key (empty when the store does not exist yet).

        Raises:
            TrustMaterialError: the store file is corrupt (never silently reset).
        """
        doc = self._doc()
        out: list[PinnedKey] = []
        for item in doc["keys"]:
            if not isinstance(item, dict) or item.get("role") not in ROLES:
                raise TrustMaterialError(f"trust store {self.path}: malformed entry")
            key = load_pem(str(item.get("pem", "")).encode())
            if item.get("keyId") != key.key_id:
                raise TrustMaterialError(f"trust store {self.path}: key id does not match its key")
            out.append(
                PinnedKey(
                    key=key,
                    role=item["role"],
                    name=str(item.get("name", "")),
                    added=str(item.get("added", "")),
                )
            )
        return out

    def by_role(self, role: Role) -> list[PinnedKey]:
        """The keys pinned for ``role``."""
        return [k for k in self.keys() if k.role == role]

    def add(self, pem: bytes, *, role: str, name: str | None = None) -> tuple[PinnedKey, bool]:
        """Pin a key for a role; pinning the same key for the same role again is a no-op
        (provisioning scripts can run twice).

        Returns:
            The pinned key, and whether it was added now (False: it already was).

        Raises:
            UsageError: unknown role, or the key is pinned under the other role.
            TrustMaterialError: not a PEM public key.
        """
        if role not in ROLES:
            raise UsageError(f"role must be exporter or publisher, not {role!r}")
        key = load_pem(pem)
        with self._locked():
            return self._add(key, role, name)

    def _add(self, key: PublicKey, role: str, name: str | None) -> tuple[PinnedKey, bool]:
        keys = self.keys()
        for k in keys:
            if k.key_id == key.key_id and k.role == role:
                return k, False
            if k.key_id == key.key_id:
                raise UsageError(
                    f"key {key.key_id[:16]} is already pinned as {k.role} ({k.name}); "
                    "a key has one role"
                )
        pinned = PinnedKey(
            key=key,
            role=role,  # type: ignore[arg-type]
            name=name or f"{role}-{key.key_id[:12]}",
            added=format_rfc3339(datetime.now(UTC).replace(microsecond=0)),
        )
        self._write([*keys, pinned], self._doc()["distrusted"])
        return pinned, True

    def remove(self, which: str) -> PinnedKey:
        """Unpin the key named ``which``, or whose id starts with ``which`` (at least 8
        hex digits).

        Raises:
            UsageError: no key, or more than one, matches.
        """
        with self._locked():
            return self._remove(which)

    def _remove(self, which: str) -> PinnedKey:
        keys = self.keys()
        matches = [k for k in keys if k.name == which]
        if not matches and len(which) < 8:
            raise UsageError(
                f"no pinned key is named {which!r}; give its name or at least 8 hex digits "
                "of its id ('dhi-offline trust list')"
            )
        if not matches:
            matches = [k for k in keys if k.key_id.startswith(which.lower())]
        if len(matches) != 1:
            raise UsageError(f"{len(matches)} pinned keys match {which!r}")
        self._write([k for k in keys if k is not matches[0]], self._doc()["distrusted"])
        return matches[0]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write of the store between processes."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(
                self.directory / ".trust.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except OSError as e:
            raise InputError(
                f"cannot write the trust store {self.directory}: {e.strerror or e}"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, keys: list[PinnedKey], distrusted: list[dict[str, Any]]) -> None:
        doc = {"keys": [k.to_json() for k in keys], "distrusted": distrusted}
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{STORE_FILE}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(doc, indent=1, sort_keys=True))
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(self.path)
        except OSError as e:
            raise InputError(f"cannot write the trust store {self.path}: {e.strerror or e}") from e
