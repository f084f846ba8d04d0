"""Public keys: loading, identifying and verifying signatures with them.

A key's id is the lowercase hex SHA-256 of its DER SubjectPublicKeyInfo, the value
RFC 6962 section 3.2 and Rekor use as a log id, and the recommended sigstore
``publicKey.hint``. Supported: ECDSA P-256/P-384/P-521, Ed25519, RSA (PKCS#1 v1.5 and
PSS with SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from dhi_offline.errors import SignatureError, TrustMaterialError

PublicKeyTypes = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
Algorithm = Literal["ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa"]

_CURVE_HASH: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}
_CURVE_ALG: dict[str, Algorithm] = {
    "secp256r1": "ecdsa-p256",
    "secp384r1": "ecdsa-p384",
    "secp521r1": "ecdsa-p521",
}


@dataclass(frozen=True)
class PublicKey:
    """A parsed public key with its DER encoding and stable id."""

    key: PublicKeyTypes
    der: bytes
    """DER SubjectPublicKeyInfo."""
    algorithm: Algorithm

    # Cached: log and keyring lookups read these in loops, and ``der`` never changes.
    @cached_property
    def key_id(self) -> str:
        """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo."""
        return self.key_id_bytes.hex()

    @cached_property
    def key_id_bytes(self) -> bytes:
        """Raw SHA-256 of the DER SubjectPublicKeyInfo."""
        return hashlib.sha256(self.der).digest()

    def pem(self) -> bytes:
        """The key as a PEM ``PUBLIC KEY`` block."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def raw_ed25519(self) -> bytes:
        """Raw 32-byte Ed25519 public key (used by signed-note key ids)."""
        if not isinstance(self.key, ed25519.Ed25519PublicKey):
            raise TrustMaterialError("not an Ed25519 key")
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Verify ``signature`` over ``data`` (hashing as the key's algorithm requires).

        Raises:
            SignatureError: the signature does not verify.
        """
        try:
            self._verify(signature, data, prehashed=False)
        except (InvalidSignature, ValueError, UnsupportedAlgorithm) as e:
            raise SignatureError(f"signature does not verify with key {self.key_id[:16]}") from e

    def verify_digest(self, signature: bytes, digest: bytes) -> None:
        """Verify ``signature`` over a SHA-256 ``digest`` computed elsewhere.

        Ed25519 signs messages, not digests, so it cannot verify a bare digest.

        Raises:
            SignatureError: the signature does not verify.
        """
        try:
            self._verify(signature, digest, prehashed=True)
        except (InvalidSignature, ValueError, UnsupportedAlgorithm) as e:
            raise SignatureError(f"signature does not verify with key {self.key_id[:16]}") from e

    def _verify(self, signature: bytes, data: bytes, *, prehashed: bool) -> None:
        key = self.key
        if isinstance(key, ed25519.Ed25519PublicKey):
            if prehashed:
                raise ValueError("Ed25519 cannot verify a prehashed digest")
            key.verify(signature, data)
            return
        if isinstance(key, ec.EllipticCurvePublicKey):
            h = _CURVE_HASH[key.curve.name]
            if prehashed:
                if len(data) != hashes.SHA256.digest_size:
                    raise ValueError("expected a SHA-256 digest")
                key.verify(signature, data, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            else:
                key.verify(signature, data, ec.ECDSA(h))
            return
        algo: hashes.HashAlgorithm | utils.Prehashed = (
            utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        )
        try:
            key.verify(signature, data, padding.PKCS1v15(), algo)
        except InvalidSignature:
            key.verify(
                signature,
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                algo,
            )


def from_crypto(key: object) -> PublicKey:
    """Wrap a ``cryptography`` public key object.

    Raises:
        TrustMaterialError: the key type or curve is not supported.
    """
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _CURVE_ALG.get(key.curve.name)
        if alg is None:
            raise TrustMaterialError(f"unsupported elliptic curve {key.curve.name}")
        k: PublicKeyTypes = key
    elif isinstance(key, ed25519.Ed25519PublicKey):
        alg, k = "ed25519", key
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise TrustMaterialError(f"RSA key of {key.key_size} bits is too small")
        alg, k = "rsa", key
    else:
        raise TrustMaterialError(f"unsupported public key type {type(key).__name__}")
    der = k.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PublicKey(key=k, der=der, algorithm=alg)


def load_pem(data: bytes) -> PublicKey:
    """Load a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo).

    Raises:
        TrustMaterialError: not a PEM public key, or an unsupported algorithm.
    """
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm, TypeError) as e:
        raise TrustMaterialError(
            "not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')"
        ) from e
    return from_crypto(key)


def load_der(data: bytes) -> PublicKey:
    """Load a DER SubjectPublicKeyInfo.

    Raises:
        TrustMaterialError: not a DER public key, or an unsupported algorithm.
    """
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm, TypeError) as e:
        raise TrustMaterialError("not a DER SubjectPublicKeyInfo") from e
    return from_crypto(key)


def load_any(data: bytes) -> PublicKey:
    """Load a public key given as PEM, DER or base64 DER (as Rekor bodies carry them)."""
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        return load_pem(stripped)
    try:
        # DER is binary: never strip it (a key may end in a byte that looks like space).
        return load_der(data)
    except TrustMaterialError:
        pass
    try:
        decoded = base64.b64decode(stripped, validate=True)
    except ValueError as e:
        raise TrustMaterialError("not a PEM, DER or base64 DER public key") from e
    if decoded.startswith(b"-----BEGIN"):
        return load_pem(decoded)
    return load_der(decoded)
