"""The evidence bundle: ONE signed, deterministic, zstd-compressed tar archive.

Written on the connected machine (:func:`write_bundle`), verified and extracted on the
air-gapped host (:func:`open_bundle`). The format is specified in ``docs/format.md``;
every member path is defined in :mod:`dhi_offline.bundle.layout`.
"""

from dhi_offline.bundle.manifest import BundleManifest, ImageEntry, Member, PlatformImage
from dhi_offline.bundle.reader import Limits, OpenedBundle, inspect_bundle, open_bundle
from dhi_offline.bundle.sequence_state import current_sequence, next_sequence
from dhi_offline.bundle.signing import (
    DETERMINISTIC_SIGNATURES,
    GeneratedKeyPair,
    generate_keypair,
    load_private_key,
    sign_manifest,
    verify_manifest_signature,
)
from dhi_offline.bundle.writer import WrittenBundle, source_date_epoch_from_env, write_bundle

__all__ = [
    "DETERMINISTIC_SIGNATURES",
    "BundleManifest",
    "GeneratedKeyPair",
    "ImageEntry",
    "Limits",
    "Member",
    "OpenedBundle",
    "PlatformImage",
    "WrittenBundle",
    "current_sequence",
    "generate_keypair",
    "inspect_bundle",
    "load_private_key",
    "next_sequence",
    "open_bundle",
    "sign_manifest",
    "source_date_epoch_from_env",
    "verify_manifest_signature",
    "write_bundle",
]
