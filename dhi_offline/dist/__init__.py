"""The offline installer: dhi-offline and every dependency as wheels, for a host with no
package index.

``dist build`` (connected side) writes ``dhi-offline-<version>-<platform>-py<XY>.tar.gz``:
``wheels/``, ``install.sh``, ``SHA256SUMS`` and ``SHA256SUMS.sig`` (signed with the
exporter key) under one top directory. ``dist verify`` (either side) checks the signature
with a trusted exporter public key, then every file against ``SHA256SUMS``. The layout
and what is and is not verified: ``docs/install.md``.
"""

from __future__ import annotations

from dhi_offline.dist.build import DistBuild, Target, build_dist, resolve_target
from dhi_offline.dist.verify import DistCheck, verify_dist

__all__ = ["DistBuild", "DistCheck", "Target", "build_dist", "resolve_target", "verify_dist"]
