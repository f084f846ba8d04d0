"""Sigstore ``trusted_root.json``: transparency logs, CT logs, CAs and timestamp authorities.

Parsed from bytes only (no I/O here). Both media type spellings of v0.1 and v0.2 are
accepted, and so is a ``ClientTrustConfig`` wrapping one. ``validFor`` intervals are
closed. A Rekor v1 log is identified by SHA-256 of its DER key; a Rekor v2 log by its
signed-note checkpoint key id, which the file gives as ``logId`` (and, in v0.2, as
``checkpointKeyId``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from dhi_offline.errors import TrustMaterialError
from dhi_offline.trust.keys import PublicKey, load_der
from dhi_offline.trust.timerange import TimeRange

TRUSTED_ROOT_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "application/vnd.dev.sigstore.trustedroot.v0.1+json",
        "application/vnd.dev.sigstore.trustedroot+json;version=0.2",
        "application/vnd.dev.sigstore.trustedroot.v0.2+json",
    }
)
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"


def _b64(value: object, *, what: str) -> bytes:
    if not isinstance(value, str):
        raise TrustMaterialError(f"{what}: expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise TrustMaterialError(f"{what}: invalid base64") from e


@dataclass(frozen=True)
class LogInstance:
    """A transparency log or certificate-transparency log the root trusts."""

    base_url: str
    log_id: bytes
    """``logId.keyId``: SHA-256 of the key (v1) or the checkpoint key id (v2)."""
    key: PublicKey | None
    """None when the root names a key type this tool cannot use; such a log never verifies."""
    valid_for: TimeRange
    checkpoint_key_id: bytes | None = None

    @property
    def checkpoint_hint(self) -> bytes:
        """The 4-byte signed-note key hint this log signs checkpoints with."""
        return (self.checkpoint_key_id or self.log_id)[:4]

    @property
    def origin_host(self) -> str:
        """Host part of the base URL (the checkpoint origin starts with it for Rekor v1)."""
        url = self.base_url.split("://", 1)[-1]
        return url.split("/", 1)[0]


@dataclass(frozen=True)
class Authority:
    """A certificate or timestamp authority: its chain (leaf first) and validity."""

    uri: str
    subject: str
    chain: tuple[x509.Certificate, ...]
    valid_for: TimeRange

    @cached_property
    def chain_der(self) -> tuple[bytes, ...]:
        """The DER of each certificate of :attr:`chain`, in the same order (computed once)."""
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in self.chain)


@dataclass(frozen=True)
class TrustedRoot:
    """The parsed trust root. Build with :meth:`from_bytes` or :meth:`from_path`."""

    media_type: str
    tlogs: tuple[LogInstance, ...]
    ctlogs: tuple[LogInstance, ...]
    certificate_authorities: tuple[Authority, ...]
    timestamp_authorities: tuple[Authority, ...]
    raw: bytes = field(repr=False, default=b"")

    def tlog_by_id(self, log_id: bytes) -> list[LogInstance]:
        """Transparency logs whose ``logId`` (or checkpoint key id) equals ``log_id``."""
        return [t for t in self.tlogs if log_id in (t.log_id, t.checkpoint_key_id)]

    def ctlog_by_id(self, log_id: bytes) -> list[LogInstance]:
        """CT logs whose ``logId`` equals ``log_id``."""
        return [t for t in self.ctlogs if t.log_id == log_id]

    def cas_at(self, when: datetime) -> list[Authority]:
        """Certificate authorities valid at ``when``."""
        return [ca for ca in self.certificate_authorities if ca.valid_for.contains(when)]

    @classmethod
    def from_path(cls, path: Path) -> TrustedRoot:
        """Read and parse a trusted root file.

        Raises:
            TrustMaterialError: unreadable or malformed.
        """
        try:
            data = path.read_bytes()
        except OSError as e:
            raise TrustMaterialError(f"cannot read trusted root {path}: {e.strerror}") from e
        return cls.from_bytes(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustedRoot:
        """Parse a trusted root (or a ClientTrustConfig holding one).

        Raises:
            TrustMaterialError: not JSON, unknown media type, or a malformed entry.
        """
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise TrustMaterialError("trusted root is not valid JSON") from e
        if not isinstance(doc, dict):
            raise TrustMaterialError("trusted root must be a JSON object")
        if doc.get("mediaType") == CLIENT_TRUST_CONFIG_MEDIA_TYPE:
            doc = doc.get("trustedRoot")
            if not isinstance(doc, dict):
                raise TrustMaterialError("client trust config has no trustedRoot")
        media_type = doc.get("mediaType")
        if media_type not in TRUSTED_ROOT_MEDIA_TYPES:
            raise TrustMaterialError(f"unsupported trusted root media type {media_type!r}")
        return cls(
            media_type=media_type,
            tlogs=tuple(_logs(doc.get("tlogs", []), "tlogs")),
            ctlogs=tuple(_logs(doc.get("ctlogs", []), "ctlogs")),
            certificate_authorities=tuple(
                _authorities(doc.get("certificateAuthorities", []), "certificateAuthorities")
            ),
            timestamp_authorities=tuple(
                _authorities(doc.get("timestampAuthorities", []), "timestampAuthorities")
            ),
            raw=data,
        )


def _logs(items: object, what: str) -> list[LogInstance]:
    if not isinstance(items, list):
        raise TrustMaterialError(f"{what} must be a list")
    out: list[LogInstance] = []
    for i, item in enumerate(items):
        where = f"{what}[{i}]"
        if not isinstance(item, dict):
            raise TrustMaterialError(f"{where} must be an object")
        pk = item.get("publicKey")
        if not isinstance(pk, dict):
            raise TrustMaterialError(f"{where}.publicKey missing")
        valid_for = TimeRange.from_json(pk.get("validFor"), what=f"{where}.publicKey")
        key: PublicKey | None = None
        if "rawBytes" in pk:
            try:
                key = load_der(_b64(pk["rawBytes"], what=f"{where}.publicKey.rawBytes"))
            except TrustMaterialError:
                key = None  # an algorithm we do not support: the log can never verify
        log_id_obj = item.get("logId")
        if not isinstance(log_id_obj, dict):
            raise TrustMaterialError(f"{where}.logId missing")
        log_id = _b64(log_id_obj.get("keyId"), what=f"{where}.logId.keyId")
        ckid_obj = item.get("checkpointKeyId")
        ckid = (
            _b64(ckid_obj.get("keyId"), what=f"{where}.checkpointKeyId.keyId")
            if isinstance(ckid_obj, dict)
            else None
        )
        base_url = item.get("baseUrl", "")
        if not isinstance(base_url, str):
            raise TrustMaterialError(f"{where}.baseUrl must be a string")
        out.append(
            LogInstance(
                base_url=base_url,
                log_id=log_id,
                key=key,
                valid_for=valid_for,
                checkpoint_key_id=ckid,
            )
        )
    return out


def _authorities(items: object, what: str) -> list[Authority]:
    if not isinstance(items, list):
        raise TrustMaterialError(f"{what} must be a list")
    out: list[Authority] = []
    for i, item in enumerate(items):
        where = f"{what}[{i}]"
        if not isinstance(item, dict):
            raise TrustMaterialError(f"{where} must be an object")
        chain_obj = item.get("certChain")
        certs = chain_obj.get("certificates") if isinstance(chain_obj, dict) else None
        if not isinstance(certs, list) or not certs:
            raise TrustMaterialError(f"{where}: missing a certificate")
        chain: list[x509.Certificate] = []
        for j, c in enumerate(certs):
            if not isinstance(c, dict):
                raise TrustMaterialError(f"{where}.certChain[{j}] must be an object")
            der = _b64(c.get("rawBytes"), what=f"{where}.certChain[{j}].rawBytes")
            try:
                cert = x509.load_der_x509_certificate(der)
                # Parsed lazily by cryptography: touch what verification reads.
                _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key())
                chain.append(cert)
            except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as e:
                raise TrustMaterialError(f"{where}.certChain[{j}] is not a DER certificate") from e
        subject = item.get("subject", {})
        subject_text = (
            f"{subject.get('organization', '')}/{subject.get('commonName', '')}"
            if isinstance(subject, dict)
            else ""
        )
        out.append(
            Authority(
                uri=str(item.get("uri", "")),
                subject=subject_text,
                chain=tuple(chain),
                valid_for=TimeRange.from_json(item.get("validFor"), what=where),
            )
        )
    return out
