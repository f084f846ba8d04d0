"""What a verified TUF chain leaves behind, and what the host accepted last time.

Apart from :mod:`dhi_offline.trust.tuf_chain` (the rules, python-tuf) so that the host's
pinned state (:mod:`dhi_offline.trust.tuf_store`), read by every verification, does not
import python-tuf (~15 ms of start-up).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TufAccepted:
    """The metadata this host accepted last time, loaded first for rollback checks
    (as ngclient loads its local copies before the remote ones)."""

    timestamp: bytes | None = None
    snapshot: bytes | None = None
    targets: bytes | None = None


@dataclass(frozen=True)
class TufResult:
    """A verified chain: the newest root and the target files it vouches for."""

    root: bytes
    """The newest root (to pin as the next starting point)."""
    pinned_version: int
    """The version of the root the chain started from."""
    root_version: int
    timestamp: bytes
    snapshot: bytes
    targets: bytes
    timestamp_version: int
    snapshot_version: int
    targets_version: int
    trusted_root: bytes
    """The ``trusted_root.json`` target, verified against the targets role."""
    signing_config: bytes | None
    signing_config_name: str | None
    expires: datetime
    """The earliest expiry of the final root, timestamp, snapshot and targets."""

    @property
    def trusted_root_sha256(self) -> str:
        """Hex SHA-256 of :attr:`trusted_root`."""
        return hashlib.sha256(self.trusted_root).hexdigest()
