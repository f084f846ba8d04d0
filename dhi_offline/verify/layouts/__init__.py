"""Evidence layouts: the ways attestations are stored in a registry, one module each.

:data:`LAYOUTS` is the registry, in the order discovery tries them on a layer. Adding a
layout is one module with a :class:`Layout` subclass (its ``name`` declared there) and one
line here. The registry hands the names to
:func:`dhi_offline.evidence.records.register_layout_names`, so record files naming any
other layout are refused when the evidence index is parsed.
"""

from __future__ import annotations

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence.records import register_layout_names
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


def _registry(*layouts: Layout) -> dict[str, Layout]:
    """``layouts`` by name, in order.

    Raises:
        ValueError: two layouts share a name (record ids hash it: it must be unique).
    """
    registry: dict[str, Layout] = {}
    for layout in layouts:
        if layout.name in registry:
            raise ValueError(f"two evidence layouts are named {layout.name!r}")
        registry[layout.name] = layout
    return registry


LAYOUTS: dict[str, Layout] = _registry(
    DhiScout(),
    CosignAtt(),
    SigstoreBundle(),
    BuildKit(),
)
register_layout_names(LAYOUTS)


def layout_named(name: str) -> Layout:
    """The layout ``name``.

    Raises:
        MalformedEvidenceError: no such layout.
    """
    layout = LAYOUTS.get(name)
    if layout is None:
        raise MalformedEvidenceError(f"unknown attestation layout {name!r}")
    return layout
