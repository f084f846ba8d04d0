"""``SHA256SUMS`` and ``SHA256SUMS.sig`` of the offline installer.

``SHA256SUMS`` is the ``sha256sum -c`` format: one ``<hex>  <path>`` line per file
(two spaces: text mode), paths relative to the installer's top directory with ``/``,
sorted by path, every file of the installer except the two below. ``SHA256SUMS.sig`` is
the exporter key's ECDSA P-256 / SHA-256 signature of the exact ``SHA256SUMS`` bytes,
DER, raw bytes: ``openssl dgst -sha256 -verify exporter.pub -signature SHA256SUMS.sig
SHA256SUMS`` checks it. The public key is never part of the installer: the operator
brings a trusted copy.

This module takes bytes and digests only; reading a tarball or directory is
:mod:`dhi_offline.dist.verify`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dhi_offline.bundle.signing import ExporterPrivateKey, sign_bytes
from dhi_offline.errors import DistIntegrityError, SignatureError
from dhi_offline.trust.keys import PublicKey

SUMS = "SHA256SUMS"
"""The checksum list, at the top of the installer."""
SIGNATURE = "SHA256SUMS.sig"
"""The exporter's signature of :data:`SUMS`."""
UNLISTED = frozenset({SUMS, SIGNATURE})
"""The only files ``SHA256SUMS`` does not list."""

SUMS_LIMIT = 1 << 20
"""Largest ``SHA256SUMS`` read (a few thousand lines at most in practice)."""
SIGNATURE_LIMIT = 1024
"""Largest ``SHA256SUMS.sig`` read (a DER P-256 signature is at most 72 bytes)."""

_LINE = re.compile(r"([0-9a-f]{64})  ([^\n]+)")


def check_path(path: str) -> str:
    """``path`` if it is a safe relative path of the installer, as ``SHA256SUMS`` lists it.

    Raises:
        DistIntegrityError: absolute, empty, with ``.``/``..`` or empty components, a
            backslash, or control characters (a name ``sha256sum -c`` would escape).
    """
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise DistIntegrityError(f"{path!r}: not a plain relative path")
    return path


def render_sums(digests: Mapping[str, str]) -> bytes:
    """The ``SHA256SUMS`` bytes for ``{relative path: hex sha256}``, sorted by path.

    Raises:
        DistIntegrityError: a path is unsafe, is one of the unlisted names, or a digest
            is not 64 lowercase hex digits.
    """
    lines = []
    for path in sorted(digests):
        check_path(path)
        if path in UNLISTED:
            raise DistIntegrityError(f"{path} cannot list itself")
        digest = digests[path]
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise DistIntegrityError(f"{path}: {digest!r} is not a hex SHA-256")
        lines.append(f"{digest}  {path}\n")
    return "".join(lines).encode()


def parse_sums(data: bytes) -> dict[str, str]:
    """``{relative path: hex sha256}`` from ``SHA256SUMS`` bytes, strictly as written.

    Raises:
        DistIntegrityError: not UTF-8, a malformed line (the first is named), an unsafe
            or duplicated path, or no line at all.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise DistIntegrityError(f"{SUMS} is not UTF-8 text") from e
    if not text.endswith("\n"):
        raise DistIntegrityError(f"{SUMS} does not end with a newline")
    listed: dict[str, str] = {}
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        m = _LINE.fullmatch(line)
        if m is None:
            raise DistIntegrityError(f"{SUMS} line {number} is not '<sha256>  <path>'")
        digest, path = m.groups()
        check_path(path)
        if path in UNLISTED:
            raise DistIntegrityError(f"{SUMS} line {number} lists {path}")
        if path in listed:
            raise DistIntegrityError(f"{SUMS} lists {path} twice")
        listed[path] = digest
    if not listed:
        raise DistIntegrityError(f"{SUMS} lists no file")
    return listed


def check_files(listed: Mapping[str, str], found: Mapping[str, str]) -> None:
    """Compare the listed digests with those of the files found (``UNLISTED`` excluded).

    Paths are taken in sorted order, so the error names the first bad file.

    Raises:
        DistIntegrityError: a file is missing, not listed, or has another digest.
    """
    for path in sorted(set(listed) | set(found)):
        if path not in found:
            raise DistIntegrityError(f"{path}: listed in {SUMS} but missing")
        if path not in listed:
            raise DistIntegrityError(f"{path}: not listed in {SUMS}")
        if found[path] != listed[path]:
            raise DistIntegrityError(f"{path}: sha256 differs from {SUMS}")


def sign_sums(sums: bytes, private_key: ExporterPrivateKey) -> bytes:
    """The ``SHA256SUMS.sig`` bytes: a DER ECDSA P-256 / SHA-256 signature of ``sums``."""
    return sign_bytes(sums, private_key)


def verify_sums_signature(sums: bytes, signature: bytes, key: PublicKey) -> None:
    """Check ``SHA256SUMS.sig`` over the exact ``SHA256SUMS`` bytes with a trusted key.

    Raises:
        SignatureError: the signature does not verify with ``key``, or ``key`` is not
            the ECDSA P-256 kind of key an exporter signs with.
    """
    if key.algorithm != "ecdsa-p256":
        raise SignatureError(
            f"{SIGNATURE}: exporter keys are ECDSA P-256, the key given is {key.algorithm}"
        )
    try:
        key.verify(signature, sums)
    except SignatureError as e:
        raise SignatureError(f"{SIGNATURE} does not verify with exporter key {key.key_id}") from e
