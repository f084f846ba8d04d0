"""Reading the files named on the command line, with errors that name the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dhi_offline.errors import InputError
from dhi_offline.evidence.sigstore_bundle import SigstoreBundle, parse_bundle
from dhi_offline.files import read_file
from dhi_offline.trust.keys import PublicKey, load_pem
from dhi_offline.trust.shipped import load_trusted_root
from dhi_offline.verify.sigstore import Artifact

__all__ = [
    "load_artifact",
    "load_bundle_file",
    "load_key_file",
    "load_trusted_root",
    "read_file",
]

# A sigstore bundle is a few KiB; refuse to slurp something absurd into memory.
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


def load_key_file(path: Path) -> PublicKey:
    """A PEM public key file."""
    data = read_file(path, what="public key", limit=1024 * 1024)
    try:
        return load_pem(data)
    except InputError as e:
        raise InputError(f"public key {path}: {e.message}") from e


def load_bundle_file(path: Path) -> SigstoreBundle:
    """A sigstore bundle file (parse errors are verification failures, not input errors)."""
    return parse_bundle(read_file(path, what="bundle", limit=MAX_BUNDLE_BYTES))


def load_artifact(value: str) -> Artifact:
    """``sha256:<hex>``, else a file path whose content is hashed."""
    if value.startswith("sha256:"):
        return Artifact.from_digest(value)
    path = Path(value)
    try:
        with path.open("rb") as f:  # streamed: artifacts can be large
            return Artifact(sha256=hashlib.file_digest(f, "sha256").digest())
    except OSError as e:
        raise InputError(f"cannot read artifact {path}: {e.strerror or e}") from e
