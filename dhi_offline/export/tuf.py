"""Fetch Sigstore's TUF metadata for the bundle (``export --tuf-metadata URL|DIR``).

The files are those a TUF client downloads (TUF specification 5.3-5.7): ``N.root.json``
from ``--tuf-root-from`` upward until one is missing, ``timestamp.json``, the snapshot
and top-level targets it leads to (``<version>.<role>.json`` under consistent snapshots),
and the ``trusted_root.json`` / signing-config targets (``targets/<hash>.<name>``). The
chain is verified here (:func:`~dhi_offline.trust.tuf_chain.verify_chain`, starting from
the first root fetched) so a broken repository fails the export; the host verifies it
again from the root it pinned itself, which is the check that counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from dhi_offline.bundle import layout
from dhi_offline.errors import DhiError, InputError, TufError
from dhi_offline.files import read_file
from dhi_offline.net.http import fetch_url
from dhi_offline.trust.tuf_chain import TARGET_NAMES, verify_chain
from dhi_offline.trust.tuf_state import TufResult

METADATA_LIMIT: Final = 4 * 1024 * 1024
"""Largest metadata file fetched (Sigstore's are a few KiB; targets grows slowly)."""
TARGET_LIMIT: Final = 4 * 1024 * 1024
MAX_ROOTS: Final = 1000
"""Root versions fetched at most, so a repository cannot make the export loop forever."""

Fetch = Callable[[str], bytes | None]
"""A repository-relative name -> bytes, or None when the repository has no such file."""


class _Missing(InputError):
    """A 403/404 from the repository (a CDN answers 403 for a missing object)."""


def _error(message: str) -> DhiError:
    if message.endswith(("HTTP 404", "HTTP 403")):
        return _Missing(message)
    return InputError(message)


def url_fetcher(base: str, *, timeout: float = 20.0) -> Fetch:
    """Files under the repository URL ``base``, through ``fetch_url`` (bounded)."""
    root = base.rstrip("/")

    def fetch(name: str) -> bytes | None:
        try:
            return fetch_url(
                f"{root}/{name}",
                limit=TARGET_LIMIT if name.startswith("targets/") else METADATA_LIMIT,
                what=f"TUF {name}",
                timeout=timeout,
                error=_error,
            )
        except _Missing:
            return None

    return fetch


def dir_fetcher(directory: Path) -> Fetch:
    """Files under a local copy of a repository (as served over HTTP)."""

    def fetch(name: str) -> bytes | None:
        path = directory / name
        if not path.is_file():
            return None
        return read_file(path, what=f"TUF {name}", limit=METADATA_LIMIT)

    return fetch


def fetcher_for(source: str) -> Fetch:
    """``https://...`` / ``http://...`` or a directory."""
    if source.startswith(("https://", "http://")):
        return url_fetcher(source)
    directory = Path(source)
    if not directory.is_dir():
        raise InputError(f"--tuf-metadata {source}: not a URL or a directory")
    return dir_fetcher(directory)


def _signed(data: bytes, what: str) -> dict[str, Any]:
    # Unverified: only to find file names; verify_chain judges the content.
    try:
        signed = json.loads(data)["signed"]
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        raise TufError(f"{what} is not TUF metadata") from e
    if not isinstance(signed, dict):
        raise TufError(f"{what} is not TUF metadata")
    return signed


def _version(meta: object, what: str) -> int:
    version = meta.get("version") if isinstance(meta, dict) else None
    if type(version) is not int or version < 1:
        raise TufError(f"{what} names no version")
    return int(version)


def _required(fetch: Fetch, name: str) -> bytes:
    data = fetch(name)
    if data is None:
        raise TufError(f"the TUF repository has no {name}")
    return data


@dataclass(frozen=True)
class TufCollected:
    """What goes into the bundle, and the chain verified over it."""

    members: list[tuple[str, bytes]]
    result: TufResult


def collect(fetch: Fetch, *, root_from: int, at: datetime) -> TufCollected:
    """Fetch and verify the metadata; the ``tuf/`` members to write.

    Raises:
        TufError: a file is missing or the chain does not verify.
        InputError: the repository cannot be read (other than a missing file).
    """
    if root_from < 1:
        raise InputError("--tuf-root-from must be at least 1")
    roots: list[bytes] = []
    while len(roots) < MAX_ROOTS:
        data = fetch(f"{root_from + len(roots)}.root.json")
        if data is None:
            break
        roots.append(data)
    if not roots:
        raise TufError(f"the TUF repository has no {root_from}.root.json")
    consistent = _signed(roots[-1], "the newest root").get("consistent_snapshot") is True
    timestamp = _required(fetch, "timestamp.json")
    snap_v = _version(
        _signed(timestamp, "timestamp.json").get("meta", {}).get("snapshot.json"),
        "timestamp.json's snapshot entry",
    )
    snapshot = _required(fetch, f"{snap_v}.snapshot.json" if consistent else "snapshot.json")
    meta = _signed(snapshot, "snapshot.json").get("meta", {})
    targets_v = _version(
        meta.get("targets.json") if isinstance(meta, dict) else None,
        "snapshot.json's targets entry",
    )
    targets = _required(fetch, f"{targets_v}.targets.json" if consistent else "targets.json")
    listed = _signed(targets, "targets.json").get("targets", {})
    files: dict[str, bytes] = {}
    for name in TARGET_NAMES:
        info = listed.get(name) if isinstance(listed, dict) else None
        if not isinstance(info, dict):
            continue
        hashes = info.get("hashes")
        if consistent:
            # As ngclient: the first hash names the file (targets/<hash>.<name>).
            if not isinstance(hashes, dict) or not hashes:
                raise TufError(f"targets.json lists {name} without hashes")
            files[name] = _required(fetch, f"targets/{next(iter(hashes.values()))}.{name}")
        else:
            files[name] = _required(fetch, f"targets/{name}")
    result = verify_chain(
        roots[0], roots[1:], timestamp, snapshot, targets, target_files=files, at=at
    )
    members = [(layout.tuf_root_path(root_from + i), r) for i, r in enumerate(roots)]
    members += [
        (layout.TUF_TIMESTAMP, timestamp),
        (layout.TUF_SNAPSHOT, snapshot),
        (layout.TUF_TARGETS, targets),
    ]
    members += [(layout.tuf_target_path(n), d) for n, d in sorted(files.items())]
    return TufCollected(members=members, result=result)
