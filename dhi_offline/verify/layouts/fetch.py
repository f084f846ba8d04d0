"""Connected-side helpers: read evidence manifests and keep them byte-exact.

Every manifest and blob read is kept in the blob store as served (its digest is checked
by the source), so every digest can be re-verified offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dhi_offline.encoding import loads_json, require_dict
from dhi_offline.evidence.records import MemoryBlobStore
from dhi_offline.oci.content import Fetched

if TYPE_CHECKING:  # a protocol: importing oci.source at run time would pull in the client
    from dhi_offline.oci.source import Source


def fetched_json(fetched: Fetched, what: str) -> dict[str, Any]:
    """A fetched manifest as a JSON object."""
    return require_dict(loads_json(fetched.data, what=what), what=what)


def layers(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The layer descriptors of a manifest that are objects (none when malformed)."""
    found = manifest.get("layers")
    return [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []


def declared_size(desc: Mapping[str, Any]) -> int | None:
    """A descriptor's ``size`` when it is an integer (checked while the blob streams)."""
    size = desc.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def keep(store: MemoryBlobStore, fetched: Fetched) -> None:
    """Keep a fetched manifest in the store."""
    store.blobs[fetched.digest] = fetched.data


def keep_config(source: Source, fetched: Fetched, store: MemoryBlobStore) -> None:
    """Keep the config blob of an evidence manifest, so ``push`` can put the manifest
    into another registry unchanged (a registry refuses a manifest whose blobs it lacks)."""
    doc = fetched_json(fetched, "evidence manifest")
    config = doc.get("config")
    if not isinstance(config, dict):
        return
    digest = config.get("digest")
    if not isinstance(digest, str) or digest in store.blobs:
        return
    store.blobs[digest] = source.blob(digest, declared_size(config))
