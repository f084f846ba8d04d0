"""Trust material shipped inside the package (see ``dhi_offline/data/README.md``)."""

from __future__ import annotations

from importlib import resources
from typing import Literal

from dhi_offline.trust.trusted_root import TrustedRoot

Instance = Literal["production", "staging"]


def shipped_trusted_root(instance: Instance = "production") -> TrustedRoot:
    """The Sigstore public-good trusted root copied into the package."""
    data = (
        resources.files("dhi_offline") / "data" / "trusted_root" / f"{instance}.json"
    ).read_bytes()
    return TrustedRoot.from_bytes(data)
