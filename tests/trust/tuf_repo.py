"""A small TUF repository built in the test with python-tuf's Metadata API.

Root v1 has three root keys with threshold 2 and one key per other role; ``new_root``
adds versions (optionally rotating keys), ``publish`` writes new targets, snapshot and
timestamp versions listing the given target files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from dhi_offline.bundle import layout

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TRUSTED_ROOT = (
    Path(__file__).parents[2] / "dhi_offline" / "data" / "trusted_root" / "production.json"
).read_bytes()


def _signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


# Metadata[T] takes one role class, not a union of them.
_Signed = TypeVar("_Signed", Root, Timestamp, Snapshot, Targets)


@dataclass
class TufRepo:
    """Signers and every published version, as bytes."""

    root_signers: list[CryptoSigner] = field(default_factory=lambda: [_signer() for _ in range(3)])
    signers: dict[str, CryptoSigner] = field(
        default_factory=lambda: {r: _signer() for r in ("timestamp", "snapshot", "targets")}
    )
    roots: list[bytes] = field(default_factory=list)
    root: Root | None = None
    expires: datetime = NOW + timedelta(days=365)
    targets_version: int = 0
    timestamp: bytes = b""
    snapshot: bytes = b""
    targets: bytes = b""
    files: dict[str, bytes] = field(default_factory=dict)
    consistent_snapshot: bool = True

    def __post_init__(self) -> None:
        root = Root(expires=self.expires, consistent_snapshot=self.consistent_snapshot)
        for s in self.root_signers:
            root.add_key(s.public_key, "root")
        root.roles["root"].threshold = 2
        for role, s in self.signers.items():
            root.add_key(s.public_key, role)
        self.root = root
        self.roots.append(self._sign(root, self.root_signers))

    @staticmethod
    def _sign(signed: _Signed, signers: list[CryptoSigner]) -> bytes:
        md = Metadata(signed)
        for s in signers:
            md.sign(s, append=True)
        return md.to_bytes()

    def new_root(
        self,
        *,
        rotate_root: bool = False,
        rotate_timestamp: bool = False,
        sign_with: list[CryptoSigner] | None = None,
        version: int | None = None,
        expires: datetime | None = None,
    ) -> bytes:
        """The next root, signed by the old and new root keys (or ``sign_with``)."""
        assert self.root is not None
        root = Root.from_dict(self.root.to_dict())
        root.version = version or self.root.version + 1
        if expires is not None:
            root.expires = expires
        old = list(self.root_signers)
        if rotate_root:
            gone = self.root_signers[0]
            root.revoke_key(gone.public_key.keyid, "root")
            fresh = _signer()
            root.add_key(fresh.public_key, "root")
            self.root_signers = [*self.root_signers[1:], fresh]
        if rotate_timestamp:
            gone = self.signers["timestamp"]
            root.revoke_key(gone.public_key.keyid, "timestamp")
            self.signers["timestamp"] = _signer()
            root.add_key(self.signers["timestamp"].public_key, "timestamp")
        signers = (
            sign_with
            if sign_with is not None
            else list({id(s): s for s in old + self.root_signers}.values())
        )
        data = self._sign(root, signers)
        self.root = root
        self.roots.append(data)
        return data

    def publish(
        self,
        files: dict[str, bytes] | None = None,
        *,
        timestamp_expires: datetime | None = None,
        listed: dict[str, bytes] | None = None,
    ) -> None:
        """New targets, snapshot and timestamp versions (``listed``: what targets
        lists, when it should differ from the files carried)."""
        self.files = dict(files if files is not None else {"trusted_root.json": TRUSTED_ROOT})
        self.targets_version += 1
        v = self.targets_version
        targets = Targets(version=v, expires=self.expires)
        for name, data in (listed if listed is not None else self.files).items():
            targets.targets[name] = TargetFile.from_data(name, data, ["sha256"])
        self.targets = self._sign(targets, [self.signers["targets"]])
        snapshot = Snapshot(version=v, expires=self.expires)
        snapshot.meta["targets.json"] = MetaFile(version=v)
        self.snapshot = self._sign(snapshot, [self.signers["snapshot"]])
        timestamp = Timestamp(
            version=v,
            expires=timestamp_expires or self.expires,
            snapshot_meta=MetaFile(
                version=v,
                length=len(self.snapshot),
                hashes={"sha256": hashlib.sha256(self.snapshot).hexdigest()},
            ),
        )
        self.timestamp = self._sign(timestamp, [self.signers["timestamp"]])

    def write(self, directory: Path) -> Path:
        """The repository as a TUF client reads it over HTTP (consistent snapshot)."""
        directory.mkdir(parents=True, exist_ok=True)
        for n, data in enumerate(self.roots, start=1):
            (directory / f"{n}.root.json").write_bytes(data)
        (directory / "timestamp.json").write_bytes(self.timestamp)
        v = self.targets_version
        if self.consistent_snapshot:
            (directory / f"{v}.snapshot.json").write_bytes(self.snapshot)
            (directory / f"{v}.targets.json").write_bytes(self.targets)
        else:
            (directory / "snapshot.json").write_bytes(self.snapshot)
            (directory / "targets.json").write_bytes(self.targets)
        (directory / "targets").mkdir(exist_ok=True)
        for name, data in self.files.items():
            prefix = f"{hashlib.sha256(data).hexdigest()}." if self.consistent_snapshot else ""
            (directory / "targets" / f"{prefix}{name}").write_bytes(data)
        return directory


def bundle_members(repo: TufRepo, *, root_from: int = 1) -> list[tuple[str, bytes]]:
    """The ``tuf/`` members an export writes for ``repo``."""
    out = [
        (layout.tuf_root_path(n), data)
        for n, data in enumerate(repo.roots, start=1)
        if n >= root_from
    ]
    out += [
        (layout.TUF_TIMESTAMP, repo.timestamp),
        (layout.TUF_SNAPSHOT, repo.snapshot),
        (layout.TUF_TARGETS, repo.targets),
    ]
    out += [(layout.tuf_target_path(name), data) for name, data in repo.files.items()]
    return out


def seed_host(config_dir: Path, repo: TufRepo, instance: str = "production") -> None:
    """Pin ``repo``'s root v1 as this host's TUF starting point (instead of Sigstore's)."""
    (config_dir / "tuf").mkdir(parents=True, exist_ok=True)
    doc = {"repository": instance, "root": repo.roots[0].decode()}
    (config_dir / "tuf" / f"{instance}.json").write_text(json.dumps(doc))
