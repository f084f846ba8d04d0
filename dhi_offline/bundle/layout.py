"""Every path, name and constant of the evidence bundle format, and nowhere else.

The bundle is ONE zstd-compressed USTAR archive (``*.dhi.tar.zst``). Everything that
names a member, or decides whether a member name is acceptable, lives in this module so
the writer, the reader, the exporter and ``docs/format.md`` cannot drift apart (Zarf's
``layout.go`` rule). ``tests/bundle/test_format_doc.py`` checks that every constant
below appears in ``docs/format.md``.

Adding a path is a format change: add it here and to ``docs/format.md``; readers of an
older format refuse members they do not know.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

FORMAT_VERSION: Final = 1
"""The archive format version written when a bundle carries no ``tuf/`` member."""

FORMAT_VERSION_TUF: Final = 2
"""Version 1 plus the optional ``tuf/`` members; written only when they are present."""

FORMAT_VERSIONS: Final = frozenset({FORMAT_VERSION, FORMAT_VERSION_TUF})
"""The versions this code reads. A version-1 bundle must not carry ``tuf/`` members."""

MEDIA_TYPE: Final = "application/vnd.dhi-offline.bundle.v1+tar+zstd"
"""Media type of a whole bundle file."""

FILE_SUFFIX: Final = ".dhi.tar.zst"
"""File name suffix of a bundle."""

MANIFEST_PAYLOAD_TYPE: Final = "application/vnd.dhi-offline.manifest.v1+json"
"""DSSE ``payloadType`` of the manifest signature envelope."""

# -- fixed members ---------------------------------------------------------------------

MANIFEST: Final = "manifest.json"
"""First member: the manifest (RFC 8785 canonical JSON), listing every other member."""

MANIFEST_SIGNATURE: Final = "manifest.sig.json"
"""Second member: a DSSE envelope over the exact bytes of :data:`MANIFEST`."""

KEYS_PREFIX: Final = "keys/"
KEYRING: Final = "keys/publisher-keyring.json"
"""The publisher keyring the evidence was checked against on the connected side."""

TRUSTED_ROOT: Final = "keys/trusted_root.json"
"""The sigstore trusted root (transparency logs, CAs, TSAs) the evidence needs."""

EVIDENCE_PREFIX: Final = "evidence/"
EVIDENCE: Final = "evidence/index.json"
"""Index of images to their attestations; its semantics belong to the verifier."""

SIGSTORE_BUNDLE_TEMPLATE: Final = "evidence/sigstore/{id}.sigstore.json"
"""A standard sigstore bundle (v0.3) for a Rekor-backed cosign signature, written so
other Sigstore clients can verify the same evidence; informative, never required."""

# -- Sigstore TUF metadata (format version 2) ------------------------------------------

TUF_PREFIX: Final = "tuf/"
TUF_ROOT_TEMPLATE: Final = "tuf/root/{version}.root.json"
"""Every TUF root version the exporter fetched, 1 (or ``--tuf-root-from``) to newest."""
TUF_TIMESTAMP: Final = "tuf/timestamp.json"
TUF_SNAPSHOT: Final = "tuf/snapshot.json"
TUF_TARGETS: Final = "tuf/targets.json"
TUF_TARGET_TEMPLATE: Final = "tuf/targets/{name}"
"""A target file by its TUF target name (no consistent-snapshot hash prefix)."""
TUF_TARGET_NAMES: Final = (
    "trusted_root.json",
    "signing_config.v0.2.json",
    "signing_config.json",
)
"""The only targets a bundle carries."""
TUF_FIXED_MEMBERS: Final = frozenset({TUF_TIMESTAMP, TUF_SNAPSHOT, TUF_TARGETS})

# -- content-addressed and per-log members ----------------------------------------------

BLOBS_PREFIX: Final = "blobs/sha256/"
BLOB_TEMPLATE: Final = "blobs/sha256/{hex}"

TLOG_PREFIX: Final = "tlog/"
TLOG_ENTRY_TEMPLATE: Final = "tlog/{log_id}/entries/{index}.json"
CHECKPOINT_TEMPLATE: Final = "tlog/{log_id}/checkpoint.txt"
CONSISTENCY_TEMPLATE: Final = "tlog/{log_id}/consistency/{old}-{new}.json"

FIXED_MEMBERS: Final = frozenset({MANIFEST, MANIFEST_SIGNATURE, KEYRING, TRUSTED_ROOT, EVIDENCE})
"""Members with a fixed name (all optional except the manifest and its signature)."""

# -- archive encoding -----------------------------------------------------------------

ZSTD_LEVEL: Final = 10
"""Compression level. Measured on SBOM-like DSSE envelopes: level 10 gives ratio 8.5 at
~70 MB/s; level 19 gives 9.2 at ~1 MB/s, too slow for bundles of hundreds of MB."""

ZSTD_MAX_WINDOW: Final = 1 << 25
"""Largest zstd window a reader accepts (32 MiB): bounds decompression memory. The
writer's level never needs more than 8 MiB."""

TAR_BLOCK: Final = 512
TAR_RECORD: Final = 10240
"""The tar stream is padded with zeros to a multiple of this (20 blocks, as ``tar``)."""

MEMBER_MODE: Final = 0o644
MAX_PATH_LENGTH: Final = 255
"""USTAR's limit: ``prefix`` (155) + ``/`` + ``name`` (100) bytes."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TUF_ROOT = re.compile(r"tuf/root/([1-9][0-9]{0,8})\.root\.json")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# One path segment: the POSIX portable filename characters, not starting with "." (no
# hidden files, no "." or "..") or "-" (never mistaken for an option).
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_USTAR_NAME = 100
_USTAR_PREFIX = 155


def blob_path(digest: str) -> str:
    """``blobs/sha256/<hex>`` for ``sha256:<hex>`` or a bare 64-hex ``<hex>``.

    Raises:
        ValueError: not a lowercase SHA-256 hex digest.
    """
    hex_digest = digest.removeprefix("sha256:")
    if not _HEX64.fullmatch(hex_digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return BLOB_TEMPLATE.format(hex=hex_digest)


def _check_log_id(log_id_hex: str) -> str:
    # A log id is the SHA-256 of the log's public key (RFC 6962 section 3.2).
    if not _HEX64.fullmatch(log_id_hex):
        raise ValueError(f"not a 64-hex log id: {log_id_hex!r}")
    return log_id_hex


def _check_index(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def tlog_entry_path(log_id_hex: str, index: int) -> str:
    """``tlog/<log-id>/entries/<index>.json``: one transparency-log entry."""
    return TLOG_ENTRY_TEMPLATE.format(
        log_id=_check_log_id(log_id_hex), index=_check_index(index, "log index")
    )


def sigstore_bundle_path(record_id: str) -> str:
    """``evidence/sigstore/<record-id>.sigstore.json``."""
    if not re.fullmatch(r"[0-9a-f]{16,64}", record_id):
        raise ValueError(f"not a record id: {record_id!r}")
    return SIGSTORE_BUNDLE_TEMPLATE.format(id=record_id)


def checkpoint_path(log_id_hex: str) -> str:
    """``tlog/<log-id>/checkpoint.txt``: the newest signed checkpoint seen for the log."""
    return CHECKPOINT_TEMPLATE.format(log_id=_check_log_id(log_id_hex))


def consistency_path(log_id_hex: str, old: int, new: int) -> str:
    """``tlog/<log-id>/consistency/<old>-<new>.json``: a proof between two tree sizes."""
    _check_index(old, "old tree size")
    _check_index(new, "new tree size")
    if old > new:
        raise ValueError(f"consistency proof from {old} to a smaller tree {new}")
    return CONSISTENCY_TEMPLATE.format(log_id=_check_log_id(log_id_hex), old=old, new=new)


def _fits_ustar(path: str) -> bool:
    # USTAR stores a name of up to 100 bytes, or splits it at a "/" into a prefix of up
    # to 155 bytes and a name of up to 100; format v1 never uses pax or GNU long names.
    if len(path) <= _USTAR_NAME:
        return True
    for i, ch in enumerate(path):
        if ch == "/" and i <= _USTAR_PREFIX and len(path) - i - 1 <= _USTAR_NAME:
            return True
    return False


def tuf_root_path(version: int) -> str:
    """``tuf/root/<version>.root.json``: one TUF root version (>= 1)."""
    if _check_index(version, "TUF root version") < 1:
        raise ValueError("a TUF root version starts at 1")
    return TUF_ROOT_TEMPLATE.format(version=version)


def tuf_target_path(name: str) -> str:
    """``tuf/targets/<name>``: one of :data:`TUF_TARGET_NAMES`."""
    if name not in TUF_TARGET_NAMES:
        raise ValueError(f"not a TUF target a bundle carries: {name!r}")
    return TUF_TARGET_TEMPLATE.format(name=name)


def tuf_root_version_of(path: str) -> int | None:
    """The version a ``tuf/root/<N>.root.json`` member is named by, else None."""
    m = _TUF_ROOT.fullmatch(path)
    return int(m.group(1)) if m else None


def format_version_for(paths: Iterable[str]) -> int:
    """The format version a bundle with these member paths is written as."""
    return FORMAT_VERSION_TUF if any(p.startswith(TUF_PREFIX) for p in paths) else FORMAT_VERSION


def _tuf_path_problem(path: str) -> str | None:
    if path in TUF_FIXED_MEMBERS or tuf_root_version_of(path) is not None:
        return None
    if path.removeprefix("tuf/targets/") in TUF_TARGET_NAMES and path.startswith("tuf/targets/"):
        return None
    return (
        "a TUF member must be tuf/root/<N>.root.json, tuf/timestamp.json, tuf/snapshot.json, "
        "tuf/targets.json or tuf/targets/<trusted_root.json|signing_config...>"
    )


def member_path_problem(path: str) -> str | None:
    """Why ``path`` is not an acceptable member name, or None when it is.

    Generic checks come first so the message names the actual problem (traversal,
    absolute path, ...) rather than only "unknown prefix".
    """
    if not path:
        return "empty path"
    if len(path) > MAX_PATH_LENGTH:
        return f"longer than {MAX_PATH_LENGTH} characters"
    if "\x00" in path:
        return "contains NUL"
    if _CONTROL.search(path):
        return "contains a control character"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "absolute path"
    segments = path.split("/")
    if ".." in segments:
        return "contains a '..' segment (path traversal)"
    if "." in segments or "" in segments:
        return "contains an empty or '.' segment"
    if not path.isascii():
        return "contains a non-ASCII character"
    bad = next((s for s in segments if not _SEGMENT.fullmatch(s)), None)
    if bad is not None:
        return f"segment {bad!r} is not [A-Za-z0-9_][A-Za-z0-9._-]*"
    if not _fits_ustar(path):
        return "does not fit a USTAR header (name <= 100 after a '/' split at <= 155)"
    if path in FIXED_MEMBERS:
        return None
    if path.startswith(BLOBS_PREFIX):
        if len(segments) == 3 and _HEX64.fullmatch(segments[2]):
            return None
        return "a blob must be named blobs/sha256/<64 lowercase hex>"
    if path.startswith((EVIDENCE_PREFIX, TLOG_PREFIX)):
        return None
    if path.startswith(TUF_PREFIX):
        return _tuf_path_problem(path)
    return "not a known member path (see docs/format.md)"


def is_valid_member_path(path: str) -> bool:
    """True when ``path`` may name a member: relative POSIX, no traversal, a known prefix."""
    return member_path_problem(path) is None


def blob_digest_of(path: str) -> str | None:
    """The hex digest a blob member is named by, or None for a non-blob path."""
    if path.startswith(BLOBS_PREFIX):
        name = path[len(BLOBS_PREFIX) :]
        if _HEX64.fullmatch(name):
            return name
    return None
