"""Sigstore ``trusted_root.json``: transparency logs, CT logs, CAs and timestamp authorities.

Parsed from bytes only (no I/O here), as sigstore protobuf-specs
(``sigstore_trustroot.proto``, ``sigstore_common.proto``) define the fields, read in their
JSON form. The media types the spec names (v0.2, v0.1 and the older ``+json;version=0.1``)
are accepted, and so is a ``ClientTrustConfig`` wrapping one. ``validFor`` intervals are
closed. A Rekor v1 log is identified by SHA-256 of its DER key; a Rekor v2 log by its
signed-note checkpoint key id, which the file gives as ``logId`` (and, in v0.2, as
``checkpointKeyId``).

Field rules (``tests/trust/test_trusted_root.py`` holds a regression test each):

- ``publicKey.validFor`` is optional: absent, the key is valid from the beginning of time
  with no end. Present, its ``start`` is required (sigstore-conformance
  ``trust-root-tlog-missing-validity-start_fail``); ``end`` is optional.
- A CA's or TSA's ``validFor`` is optional too, and so is its ``start`` (as sigstore-go
  and sigstore-js read it): the certificate chain's own validity still bounds it.
- ``hashAlgorithm`` and ``publicKey.keyDetails`` must name values of their enums. A log
  is usable only with a SHA2_256 tree and a key this tool verifies with; a ``keyDetails``
  naming a supported algorithm must match the key (a contradiction refuses the root);
  ``PUBLIC_KEY_DETAILS_UNSPECIFIED`` (or absent) lets the key say what it is.
- ``logId.keyId`` (and ``checkpointKeyId.keyId`` when given) is required and non-empty;
  ``certChain`` needs one certificate at least; times are protobuf JSON timestamps
  (RFC 3339, ``T``, up to 9 fractional digits, ``Z`` or an offset); ``null`` is absent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dhi_offline.encoding import parse_rfc3339
from dhi_offline.errors import TrustMaterialError
from dhi_offline.trust.keys import Algorithm, PublicKey, load_der
from dhi_offline.trust.timerange import TimeRange

TRUSTED_ROOT_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "application/vnd.dev.sigstore.trustedroot.v0.1+json",
        "application/vnd.dev.sigstore.trustedroot.v0.2+json",
    }
)
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"

BEGINNING_OF_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""The start of a validity the root leaves unbounded (no ``validFor``, or no ``start``
where the spec allows that)."""
UNBOUNDED = TimeRange(start=BEGINNING_OF_TIME)

# sigstore_common.proto enums, by number (protobuf JSON accepts the name or the number).
_HASH_ALGORITHMS: Mapping[int, str] = dict(
    enumerate(
        ("HASH_ALGORITHM_UNSPECIFIED", "SHA2_256", "SHA2_384", "SHA2_512", "SHA3_256", "SHA3_384")
    )
)
_KEY_DETAILS: Mapping[int, str] = {
    0: "PUBLIC_KEY_DETAILS_UNSPECIFIED",
    1: "PKCS1_RSA_PKCS1V5",
    2: "PKCS1_RSA_PSS",
    3: "PKIX_RSA_PKCS1V5",
    4: "PKIX_RSA_PSS",
    5: "PKIX_ECDSA_P256_SHA_256",
    6: "PKIX_ECDSA_P256_HMAC_SHA_256",
    7: "PKIX_ED25519",
    8: "PKIX_ED25519_PH",
    9: "PKIX_RSA_PKCS1V15_2048_SHA256",
    10: "PKIX_RSA_PKCS1V15_3072_SHA256",
    11: "PKIX_RSA_PKCS1V15_4096_SHA256",
    12: "PKIX_ECDSA_P384_SHA_384",
    13: "PKIX_ECDSA_P521_SHA_512",
    14: "LMS_SHA256",
    15: "LMOTS_SHA256",
    16: "PKIX_RSA_PSS_2048_SHA256",
    17: "PKIX_RSA_PSS_3072_SHA256",
    18: "PKIX_RSA_PSS_4096_SHA256",
    19: "PKIX_ECDSA_P384_SHA_256",
    20: "PKIX_ECDSA_P521_SHA_256",
    21: "ML_DSA_65",
    22: "ML_DSA_87",
    23: "ML_DSA_44",
}
_VERIFIABLE: Mapping[str, tuple[Algorithm, int | None]] = {
    "PKIX_ECDSA_P256_SHA_256": ("ecdsa-p256", None),
    "PKIX_ECDSA_P384_SHA_384": ("ecdsa-p384", None),
    "PKIX_ECDSA_P521_SHA_512": ("ecdsa-p521", None),
    "PKIX_ED25519": ("ed25519", None),
    "PKCS1_RSA_PKCS1V5": ("rsa", None),
    "PKCS1_RSA_PSS": ("rsa", None),
    "PKIX_RSA_PKCS1V5": ("rsa", None),
    "PKIX_RSA_PSS": ("rsa", None),
    "PKIX_RSA_PKCS1V15_2048_SHA256": ("rsa", 2048),
    "PKIX_RSA_PKCS1V15_3072_SHA256": ("rsa", 3072),
    "PKIX_RSA_PKCS1V15_4096_SHA256": ("rsa", 4096),
    "PKIX_RSA_PSS_2048_SHA256": ("rsa", 2048),
    "PKIX_RSA_PSS_3072_SHA256": ("rsa", 3072),
    "PKIX_RSA_PSS_4096_SHA256": ("rsa", 4096),
}
"""keyDetails this tool verifies with: the algorithm (and RSA size) the key must have.
``PKCS1_*`` keys are DER RSAPublicKey, every other one DER SubjectPublicKeyInfo. The
other values (HMAC, prehashed Ed25519, ECDSA with a hash other than its curve's, LMS,
ML-DSA) leave the log without a usable key."""
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


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
            tlogs=tuple(_logs(doc.get("tlogs"), "tlogs")),
            ctlogs=tuple(_logs(doc.get("ctlogs"), "ctlogs")),
            certificate_authorities=tuple(
                _authorities(doc.get("certificateAuthorities"), "certificateAuthorities")
            ),
            timestamp_authorities=tuple(
                _authorities(doc.get("timestampAuthorities"), "timestampAuthorities")
            ),
            raw=data,
        )


def _list(items: object, what: str) -> list[object]:
    # Protobuf JSON reads null as an absent repeated field: empty.
    if items is None:
        return []
    if not isinstance(items, list):
        raise TrustMaterialError(f"{what} must be a list")
    return items


def _string(obj: dict[str, object], name: str, *, what: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TrustMaterialError(f"{what}.{name} must be a string")
    return value


def _enum(value: object, names: Mapping[int, str], *, what: str) -> str:
    """An enum given by name or number; absent (or null) is the zero value."""
    if value is None:
        return names[0]
    if isinstance(value, str) and value in names.values():
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in names:
        return names[value]
    raise TrustMaterialError(f"{what}: unknown value {value!r}")


def _timestamp(value: object, *, what: str) -> datetime:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise TrustMaterialError(f"{what}: {value!r} is not a protobuf JSON timestamp (RFC 3339)")
    return parse_rfc3339(value, what=what)


def _time_range(obj: object, *, what: str, start_required: bool) -> TimeRange:
    """A ``validFor`` (``TimeRange``); absent (None) means unbounded."""
    if obj is None:
        return UNBOUNDED
    if not isinstance(obj, dict):
        raise TrustMaterialError(f"{what}.validFor must be an object")
    if obj.get("start") is None:
        if start_required:
            raise TrustMaterialError(f"{what}: validFor must have a start")
        start = BEGINNING_OF_TIME
    else:
        start = _timestamp(obj["start"], what=f"{what}.validFor.start")
    end = (
        _timestamp(obj["end"], what=f"{what}.validFor.end") if obj.get("end") is not None else None
    )
    if end is not None and end < start:
        raise TrustMaterialError(f"{what}: validFor ends before it starts")
    return TimeRange(start=start, end=end)


def _key_id(obj: object, *, what: str) -> bytes:
    if not isinstance(obj, dict):
        raise TrustMaterialError(f"{what} missing")
    key_id = _b64(obj.get("keyId"), what=f"{what}.keyId")
    if not key_id:
        raise TrustMaterialError(f"{what}.keyId is empty")
    return key_id


def _log_key(pk: dict[str, object], *, where: str, tree_hash: str) -> PublicKey | None:
    """The log's key, or None when this tool cannot verify with it (the log never verifies).

    Raises:
        TrustMaterialError: malformed fields, or a key contradicting its ``keyDetails``.
    """
    what = f"{where}.publicKey"
    details = _enum(pk.get("keyDetails"), _KEY_DETAILS, what=f"{what}.keyDetails")
    if pk.get("rawBytes") is None:
        return None
    der = _b64(pk["rawBytes"], what=f"{what}.rawBytes")
    expected = _VERIFIABLE.get(details)
    if details == _KEY_DETAILS[0]:
        try:
            key: PublicKey | None = load_der(der)
        except TrustMaterialError:
            key = None  # the root does not say, and we cannot tell: unusable, not malformed
    elif expected is None:
        key = None  # an algorithm or encoding this tool does not verify with
    else:
        try:
            key = load_der(der)
        except TrustMaterialError as e:
            raise TrustMaterialError(f"{what}.rawBytes is no {details} key: {e.message}") from e
        algorithm, bits = expected
        size = key.key.key_size if isinstance(key.key, rsa.RSAPublicKey) else None
        if key.algorithm != algorithm or (bits is not None and size != bits):
            raise TrustMaterialError(
                f"{what}: keyDetails {details} does not match the key ({key.algorithm}"
                + (f" {size} bits)" if size else ")")
            )
        # The loader takes RSA keys in either encoding; keyDetails says which one it is.
        pkcs1 = details.startswith("PKCS1_")
        if isinstance(key.key, rsa.RSAPublicKey) and pkcs1 != (key.der != der):
            raise TrustMaterialError(
                f"{what}.rawBytes is not the {'PKCS#1' if pkcs1 else 'SubjectPublicKeyInfo'} "
                f"encoding keyDetails {details} names"
            )
    # Proofs are checked with SHA-256 only: a log over another tree hash cannot verify.
    return key if tree_hash == "SHA2_256" else None


def _logs(items: object, what: str) -> list[LogInstance]:
    out: list[LogInstance] = []
    for i, item in enumerate(_list(items, what)):
        where = f"{what}[{i}]"
        if not isinstance(item, dict):
            raise TrustMaterialError(f"{where} must be an object")
        pk = item.get("publicKey")
        if not isinstance(pk, dict):
            raise TrustMaterialError(f"{where}.publicKey missing")
        tree_hash = _enum(
            item.get("hashAlgorithm"), _HASH_ALGORITHMS, what=f"{where}.hashAlgorithm"
        )
        key = _log_key(pk, where=where, tree_hash=tree_hash)
        valid_for = _time_range(pk.get("validFor"), what=f"{where}.publicKey", start_required=True)
        log_id = _key_id(item.get("logId"), what=f"{where}.logId")
        ckid_obj = item.get("checkpointKeyId")
        ckid = _key_id(ckid_obj, what=f"{where}.checkpointKeyId") if ckid_obj is not None else None
        out.append(
            LogInstance(
                base_url=_string(item, "baseUrl", what=where),
                log_id=log_id,
                key=key,
                valid_for=valid_for,
                checkpoint_key_id=ckid,
            )
        )
    return out


def _authorities(items: object, what: str) -> list[Authority]:
    out: list[Authority] = []
    for i, item in enumerate(_list(items, what)):
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
        subject = item.get("subject")
        if subject is None:
            subject = {}
        if not isinstance(subject, dict):
            raise TrustMaterialError(f"{where}.subject must be an object")
        org = _string(subject, "organization", what=f"{where}.subject")
        cn = _string(subject, "commonName", what=f"{where}.subject")
        out.append(
            Authority(
                uri=_string(item, "uri", what=where),
                subject=f"{org}/{cn}",
                chain=tuple(chain),
                valid_for=_time_range(item.get("validFor"), what=where, start_required=False),
            )
        )
    return out
