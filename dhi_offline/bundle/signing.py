"""Exporter keys and the manifest signature (``manifest.sig.json``).

The exporter signs the exact bytes of ``manifest.json`` with an ECDSA P-256 key, as a
DSSE envelope (payload type :data:`layout.MANIFEST_PAYLOAD_TYPE`) whose ``keyid`` is
the hex SHA-256 of the public key's DER SubjectPublicKeyInfo. The air-gapped host
verifies it ONLY with a key it already trusts, looked up by that keyid: the archive
never supplies its own verification key.

Signatures are RFC 6979 deterministic ECDSA when the installed ``cryptography`` and
OpenSSL support it (cryptography >= 44 with OpenSSL >= 3.2), so the same inputs give a
byte-identical bundle; see :data:`DETERMINISTIC_SIGNATURES`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rfc8785
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle import layout
from dhi_offline.errors import (
    DhiError,
    InputError,
    ManifestSignatureError,
    UsageError,
)
from dhi_offline.evidence.dsse import (
    DsseSignature,
    Envelope,
    envelope_from_bytes,
    pae,
    verify_envelope,
)
from dhi_offline.trust.keys import PublicKey, from_crypto

ExporterPrivateKey = ec.EllipticCurvePrivateKey
"""An exporter signing key: ECDSA on P-256 (secp256r1)."""

_HEX64 = re.compile(r"[0-9a-f]{64}")

TrustedExporters = Callable[[str], PublicKey | None]
"""Look up a trusted exporter public key by its key id (hex SHA-256 of the DER SPKI)."""


def _signature_algorithm() -> tuple[ec.ECDSA, bool]:
    try:
        return ec.ECDSA(hashes.SHA256(), deterministic_signing=True), True
    except (TypeError, UnsupportedAlgorithm):
        # Older cryptography (< 44) or OpenSSL (< 3.2): randomized ECDSA still verifies
        # everywhere; only byte-identical rebuilds are lost.
        return ec.ECDSA(hashes.SHA256()), False


_ECDSA, DETERMINISTIC_SIGNATURES = _signature_algorithm()
"""Whether manifest signatures are RFC 6979 deterministic on this installation."""


@dataclass(frozen=True)
class GeneratedKeyPair:
    """The files :func:`generate_keypair` wrote."""

    private_key: Path
    """``PREFIX.pem``: PKCS#8 PEM, unencrypted, mode 0600."""
    public_key: Path
    """``PREFIX.pub``: SubjectPublicKeyInfo PEM, to install on air-gapped hosts."""
    key_id: str
    """Hex SHA-256 of the public key's DER SubjectPublicKeyInfo."""


def public_key_of(private_key: ExporterPrivateKey) -> PublicKey:
    """The public half of an exporter key, as a :class:`PublicKey`."""
    return from_crypto(private_key.public_key())


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` atomically, never replacing an existing file.

    The content goes to a temp file created 0600 by ``mkstemp`` (so a private key is
    never readable by others, whatever the umask), then ``link()`` publishes it: link
    fails with EEXIST rather than overwrite, and readers never see a partial file.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise UsageError(f"{path} already exists; refusing to overwrite it") from None
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # No hard links on this file system: O_EXCL still refuses to overwrite and
            # creates the file with ``mode`` from the start.
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(out, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def generate_keypair(prefix: Path) -> GeneratedKeyPair:
    """Create a new ECDSA P-256 exporter key as ``PREFIX.pem`` and ``PREFIX.pub``.

    Raises:
        UsageError: either file already exists, or the directory does not.
        InputError: the files cannot be written.
    """
    priv_path = prefix.with_name(prefix.name + ".pem")
    pub_path = prefix.with_name(prefix.name + ".pub")
    if not prefix.parent.is_dir():
        raise UsageError(f"directory {prefix.parent} does not exist")
    for p in (priv_path, pub_path):
        if p.exists() or p.is_symlink():
            raise UsageError(f"{p} already exists; refusing to overwrite it")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = public_key_of(key)
    try:
        _write_new_file(priv_path, private_pem, 0o600)
        try:
            _write_new_file(pub_path, public.pem(), 0o644)
        except BaseException:
            priv_path.unlink()  # ours: created a moment ago, unusable without its .pub
            raise
    except DhiError:
        raise
    except OSError as e:
        raise InputError(f"cannot write the key pair {prefix}: {e.strerror or e}") from e
    return GeneratedKeyPair(private_key=priv_path, public_key=pub_path, key_id=public.key_id)


def load_private_key(path: Path) -> ExporterPrivateKey:
    """Load an unencrypted PKCS#8 (or SEC1) PEM ECDSA P-256 exporter key.

    Raises:
        InputError: unreadable, not a PEM private key, encrypted, or not P-256.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the exporter key {path}: {e.strerror or e}") from e
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as e:
        # cryptography raises TypeError when a password is needed.
        raise InputError(f"{path}: encrypted private keys are not supported") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InputError(f"{path}: not a PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError(f"{path}: an exporter key must be ECDSA P-256")
    return key


def sign_bytes(data: bytes, private_key: ExporterPrivateKey) -> bytes:
    """A DER ECDSA P-256 / SHA-256 signature of ``data`` (RFC 6979 where supported), the
    form cosign, DSSE and sigstore bundles carry."""
    return private_key.sign(data, _ECDSA)


def sign_manifest(manifest_bytes: bytes, private_key: ExporterPrivateKey) -> bytes:
    """The ``manifest.sig.json`` bytes: a one-signature DSSE envelope, RFC 8785 JSON."""
    signature = sign_bytes(pae(layout.MANIFEST_PAYLOAD_TYPE, manifest_bytes), private_key)
    envelope = Envelope(
        payload_type=layout.MANIFEST_PAYLOAD_TYPE,
        payload=manifest_bytes,
        signatures=(DsseSignature(sig=signature, keyid=public_key_of(private_key).key_id),),
    )
    return bytes(rfc8785.dumps(envelope.to_json()))


def verify_manifest_signature(
    envelope_bytes: bytes, manifest_bytes: bytes, trusted: TrustedExporters
) -> PublicKey:
    """Check that a trusted exporter key signed exactly ``manifest_bytes``.

    Steps, in order: (1) the envelope parses and carries exactly one signature with a
    keyid; (2) its payload type is the manifest's and its payload equals
    ``manifest_bytes`` byte for byte; (3) the key comes from ``trusted(keyid)`` only,
    never from the archive; (4) the signature verifies under that key.

    Returns:
        The exporter key that signed.

    Raises:
        ManifestSignatureError: any step fails.
    """
    try:
        envelope = envelope_from_bytes(envelope_bytes, what=layout.MANIFEST_SIGNATURE)
    except DhiError as e:
        raise ManifestSignatureError(e.message) from e
    if len(envelope.signatures) != 1:
        raise ManifestSignatureError(
            f"{layout.MANIFEST_SIGNATURE} must carry exactly one signature, "
            f"has {len(envelope.signatures)}"
        )
    keyid = envelope.signatures[0].keyid
    if envelope.payload_type != layout.MANIFEST_PAYLOAD_TYPE:
        raise ManifestSignatureError(
            f"{layout.MANIFEST_SIGNATURE} payload type is {envelope.payload_type!r}, "
            f"expected {layout.MANIFEST_PAYLOAD_TYPE!r}"
        )
    if envelope.payload != manifest_bytes:
        raise ManifestSignatureError(
            f"{layout.MANIFEST_SIGNATURE} signs other bytes than {layout.MANIFEST}"
        )
    if not keyid:
        raise ManifestSignatureError(f"{layout.MANIFEST_SIGNATURE} names no keyid")
    key = trusted(keyid)
    if key is None:
        # The keyid is untrusted text: show a well-formed id as is, anything else quoted.
        shown = keyid if _HEX64.fullmatch(keyid) else repr(keyid[:80])
        raise ManifestSignatureError(f"not signed by a trusted exporter key {shown}")
    if key.key_id != keyid:
        # A lookup that returns some other key must not make us verify with it.
        raise ManifestSignatureError(f"trusted key lookup for {keyid} returned {key.key_id}")
    try:
        verify_envelope(envelope, key, exactly_one=True, expected_keyid=keyid)
    except DhiError as e:
        raise ManifestSignatureError(
            f"{layout.MANIFEST} signature does not verify with exporter key {keyid}"
        ) from e
    return key
