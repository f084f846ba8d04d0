"""Evidence layouts: the ways attestations are stored in a registry, one module each.

:data:`LAYOUTS` is the registry, in the order discovery tries them on a layer. Adding a
layout is one module with a :class:`Layout` subclass and one line here (and its name in
``evidence.records.Layout``, which record files are checked against).
"""

from __future__ import annotations

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.verify.layouts.buildkit import BuildKit
from dhi_offline.verify.layouts.cosign_att import CosignAtt
from dhi_offline.verify.layouts.dhi_scout import DhiScout
from dhi_offline.verify.layouts.interface import (
    AttestationResult,
    Found,
    Layout,
    LogEntryRef,
    PublisherTrust,
    TlogStatus,
    annotation,
)
from dhi_offline.verify.layouts.sigstore_bundle import SigstoreBundle

__all__ = [
    "LAYOUTS",
    "AttestationResult",
    "Found",
    "Layout",
    "LogEntryRef",
    "PublisherTrust",
    "TlogStatus",
    "annotation",
    "layout_named",
]

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        DhiScout(),
        CosignAtt(),
        SigstoreBundle(),
        BuildKit(),
    )
}


def layout_named(name: str) -> Layout:
    """The layout ``name``.

    Raises:
        MalformedEvidenceError: no such layout.
    """
    layout = LAYOUTS.get(name)
    if layout is None:
        raise MalformedEvidenceError(f"unknown attestation layout {name!r}")
    return layout
