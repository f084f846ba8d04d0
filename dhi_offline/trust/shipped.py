"""Trust material shipped inside the package (see ``dhi_offline/data/README.md``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from dhi_offline.files import read_file
from dhi_offline.trust.trusted_root import TrustedRoot

Instance = Literal["production", "staging"]


def shipped_trusted_root(instance: Instance = "production") -> TrustedRoot:
    """The Sigstore public-good trusted root copied into the package."""
    data = (
        resources.files("dhi_offline") / "data" / "trusted_root" / f"{instance}.json"
    ).read_bytes()
    return TrustedRoot.from_bytes(data)


def shipped_tuf_root(instance: Instance = "production") -> bytes:
    """The Sigstore TUF root copied into the package: where the first chain starts."""
    return (resources.files("dhi_offline") / "data" / "tuf" / instance / "root.json").read_bytes()


def load_trusted_root(path: Path | None, *, staging: bool = False) -> TrustedRoot:
    """The trusted root from ``path``, else the shipped production or staging one.

    Raises:
        InputError: ``path`` cannot be read.
        TrustMaterialError: the document is not a usable trusted root.
    """
    if path is None:
        return shipped_trusted_root("staging" if staging else "production")
    return TrustedRoot.from_bytes(read_file(path, what="trusted root"))
