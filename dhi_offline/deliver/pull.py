"""``pull``: fetch a bundle that ``push`` stored in a registry, to verify it offline.

The registry is only a carrier: what ``pull`` writes is the bundle file, byte for byte
(its digest checked while it streams), and the host trusts it only after ``verify``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dhi_offline.bundle import layout
from dhi_offline.deliver import names
from dhi_offline.encoding import loads_json, require_dict
from dhi_offline.errors import InputError, MalformedEvidenceError
from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.mediatypes import Descriptor
from dhi_offline.oci.reference import Reference

MAX_BUNDLE_SIZE = 8 * 1024**3
"""Largest bundle file ``pull`` accepts (readers accept 4 GiB inflated; ratio ~10)."""


@dataclass(frozen=True)
class Pulled:
    """What ``pull`` wrote."""

    reference: str
    manifest_digest: str
    bundle: Descriptor
    path: Path
    exporter_key_id: str | None
    sequence: str | None


def bundle_descriptor(data: bytes, what: str) -> tuple[Descriptor, dict[str, str]]:
    """The bundle layer of a pushed bundle's manifest, and the manifest's annotations.

    Raises:
        InputError: not a dhi-offline bundle artifact (the wrong REF: exit 2).
    """
    try:
        doc = require_dict(loads_json(data, what=what), what=what)
        layers = doc.get("layers")
        layer = (
            Descriptor.from_json(layers[0], what=f"{what} layer")
            if isinstance(layers, list) and len(layers) == 1
            else None
        )
    except MalformedEvidenceError as e:
        raise InputError(f"{what} is not a dhi-offline bundle: {e.message}") from e
    if doc.get("artifactType") != names.BUNDLE_ARTIFACT_TYPE:
        raise InputError(
            f"{what} is not a dhi-offline bundle (artifactType {doc.get('artifactType')!r}, "
            f"expected {names.BUNDLE_ARTIFACT_TYPE})"
        )
    if layer is None:
        raise InputError(f"{what}: an evidence bundle artifact has exactly one layer")
    if layer.media_type != layout.MEDIA_TYPE:
        raise InputError(
            f"{what}: layer media type {layer.media_type!r}, expected {layout.MEDIA_TYPE}"
        )
    if layer.size > MAX_BUNDLE_SIZE:
        raise InputError(f"{what}: evidence bundle of {layer.size} bytes is over the limit")
    annotations = doc.get("annotations")
    ann = (
        {k: v for k, v in annotations.items() if isinstance(v, str)}
        if isinstance(annotations, dict)
        else {}
    )
    return layer, ann


def pull_bundle(client: RegistryClient, ref: Reference, output: Path) -> Pulled:
    """Fetch the bundle at ``ref`` into ``output`` (atomically: whole, or nothing).

    Raises:
        RegistryError: the registry failed, or the bytes are not those of the digest.
        InputError: ``ref`` is not a bundle artifact, or ``output`` cannot be written.
    """
    fetched = client.get_manifest(ref.registry, ref.repository, ref.tag_or_digest)
    layer, annotations = bundle_descriptor(fetched.data, str(ref))
    directory = output.parent if str(output.parent) else Path()
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{output.name}.", suffix=".partial")
    except OSError as e:
        raise InputError(f"cannot write {output}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            client.download_blob(
                ref.registry,
                ref.repository,
                layer.digest,
                out,
                size=layer.size,
                limit=MAX_BUNDLE_SIZE,
            )
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(output)
    except OSError as e:
        raise InputError(f"cannot write {output}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return Pulled(
        reference=str(ref),
        manifest_digest=fetched.digest,
        bundle=layer,
        path=output,
        exporter_key_id=annotations.get(names.ANN_EXPORTER_KEY_ID),
        sequence=annotations.get(names.ANN_SEQUENCE),
    )
