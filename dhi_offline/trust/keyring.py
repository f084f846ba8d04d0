"""Keyrings: named publisher keys with a status and a validity window.

A keyring answers one question: is this key trusted to have signed at this time? An
``active`` key is trusted inside its window; an ``inactive`` key only for signatures
shown (by a verified time) to predate the end of its window; a ``revoked`` key never.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Literal

from dhi_offline.encoding import format_rfc3339, parse_rfc3339
from dhi_offline.errors import KeyMismatchError, TrustMaterialError, ValidityWindowError
from dhi_offline.trust.keys import PublicKey, load_pem

KeyStatus = Literal["active", "inactive", "revoked"]
_STATUSES: frozenset[str] = frozenset({"active", "inactive", "revoked"})


@dataclass(frozen=True)
class KeyringEntry:
    """One key of a keyring."""

    name: str
    key: PublicKey
    status: KeyStatus = "active"
    not_before: datetime | None = None
    not_after: datetime | None = None

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the key's DER SubjectPublicKeyInfo."""
        return self.key.key_id

    def valid_at(self, when: datetime) -> bool:
        """Whether the key may have signed at ``when`` (closed interval, never if revoked)."""
        if self.status == "revoked":
            return False
        if self.not_before is not None and when < self.not_before:
            return False
        return self.not_after is None or when <= self.not_after

    def check_signing_times(self, times: list[datetime], *, fallback: datetime) -> None:
        """Every verified signing time must lie in the window.

        With no verified time the signature could have been made at any moment up to
        ``fallback`` (the verification's reference time), so the key must be valid then.

        Raises:
            ValidityWindowError: the key was not trusted at one of those times.
        """
        for t in times or [fallback]:
            if not self.valid_at(t):
                how = (
                    "verified signing time"
                    if times
                    else "reference time (no verified signing time)"
                )
                raise ValidityWindowError(
                    f"key {self.name} ({self.status}) was not valid at the {how} "
                    f"{format_rfc3339(t)}{self._window_text()}"
                )

    def _window_text(self) -> str:
        lo = format_rfc3339(self.not_before) if self.not_before else "-"
        hi = format_rfc3339(self.not_after) if self.not_after else "-"
        return f"; its window is [{lo}, {hi}]"


@dataclass(frozen=True)
class Keyring:
    """A set of keys, looked up by key id."""

    name: str
    entries: tuple[KeyringEntry, ...] = field(default_factory=tuple)

    def by_id(self, key_id: str) -> KeyringEntry | None:
        """The entry with this key id (hex SHA-256 of DER), if any."""
        for e in self.entries:
            if e.key_id == key_id.lower():
                return e
        return None

    def require(self, key: PublicKey) -> KeyringEntry:
        """The entry for ``key``.

        Raises:
            KeyMismatchError: the key is not in this keyring.
        """
        entry = self.by_id(key.key_id)
        if entry is None:
            raise KeyMismatchError(f"key {key.key_id[:16]} is not in keyring {self.name}")
        return entry

    def with_entry(self, entry: KeyringEntry) -> Keyring:
        """A keyring with ``entry`` added (replacing one with the same key id)."""
        rest = tuple(e for e in self.entries if e.key_id != entry.key_id)
        return Keyring(name=self.name, entries=(*rest, entry))

    def to_json(self) -> dict[str, object]:
        """The keyring in its JSON form, keys inline as PEM."""
        keys: list[dict[str, object]] = []
        for e in self.entries:
            vf: dict[str, str] = {}
            if e.not_before:
                vf["start"] = format_rfc3339(e.not_before)
            if e.not_after:
                vf["end"] = format_rfc3339(e.not_after)
            keys.append(
                {"name": e.name, "pem": e.key.pem().decode(), "status": e.status, "validFor": vf}
            )
        return {"name": self.name, "keys": keys}


def keyring_from_json(data: bytes, *, files: dict[str, bytes] | None = None) -> Keyring:
    """Parse a keyring document.

    Each key is given inline (``"pem"``) or by ``"file"`` name looked up in ``files``.

    Raises:
        TrustMaterialError: malformed document or key.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise TrustMaterialError("keyring is not valid JSON") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise TrustMaterialError("keyring must be an object with a 'keys' list")
    entries: list[KeyringEntry] = []
    for i, k in enumerate(doc["keys"]):
        where = f"keyring.keys[{i}]"
        if not isinstance(k, dict):
            raise TrustMaterialError(f"{where} must be an object")
        if isinstance(k.get("pem"), str):
            pem = k["pem"].encode()
        elif isinstance(k.get("file"), str) and files is not None and k["file"] in files:
            pem = files[k["file"]]
        else:
            raise TrustMaterialError(f"{where}: no key material")
        status = k.get("status", "active")
        if status not in _STATUSES:
            raise TrustMaterialError(f"{where}: unknown status {status!r}")
        vf = k.get("validFor", {})
        if not isinstance(vf, dict):
            raise TrustMaterialError(f"{where}.validFor must be an object")
        start = (
            parse_rfc3339(vf["start"], what=f"{where}.validFor.start") if "start" in vf else None
        )
        end = parse_rfc3339(vf["end"], what=f"{where}.validFor.end") if "end" in vf else None
        if start and end and end < start:
            raise TrustMaterialError(f"{where}: validFor ends before it starts")
        entries.append(
            KeyringEntry(
                name=str(k.get("name", f"key-{i}")),
                key=load_pem(pem),
                status=status,
                not_before=start,
                not_after=end,
            )
        )
    ids = [e.key_id for e in entries]
    if len(set(ids)) != len(ids):
        raise TrustMaterialError("keyring lists the same key twice")
    return Keyring(name=str(doc.get("name", "keyring")), entries=tuple(entries))


def shipped_dhi_keyring() -> Keyring:
    """The Docker Hardened Images keyring shipped in the package (dhi-2 active, dhi-1 inactive)."""
    base = resources.files("dhi_offline") / "data" / "keyring"
    doc = (base / "keyring.json").read_bytes()
    files = {p.name: p.read_bytes() for p in base.iterdir() if p.name.endswith(".pub")}
    return keyring_from_json(doc, files=files)
