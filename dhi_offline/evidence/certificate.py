"""Keyless (Fulcio) signing certificates: chain, SCT and identity checks.

A keyless signature is trusted when its leaf certificate

1. chains, at a verified signing time, to a certificate authority of the trusted root
   that was itself trusted at that time, using only the root's own certificates;
2. carries an embedded precertificate SCT signed by a CT log of the trusted root
   (RFC 6962 section 3.2);
3. names the expected identity (a SAN) and OIDC issuer (a Fulcio extension).

The checks follow sigstore-python's ``Verifier`` (``_verify_chain_at_time``,
``_internal/sct.py``, ``verify/policy.py``) and sigstore-go's ``pkg/verify``.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.certificate_transparency import (
    LogEntryType,
    SignatureAlgorithm,
    SignedCertificateTimestamp,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, ObjectIdentifier
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as X509VerificationError

from dhi_offline.errors import CertificateError, IdentityError, SCTError
from dhi_offline.trust.trusted_root import Authority, LogInstance, TrustedRoot

# Fulcio certificate extensions (sigstore/fulcio docs/oid-info.md).
OIDC_ISSUER_V1_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
"""Issuer as raw UTF-8 bytes (deprecated form, still present in every Fulcio cert)."""
OTHERNAME_SAN_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
"""Type id of the otherName SAN Fulcio uses for username identities."""
OIDC_ISSUER_V2_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
"""Issuer as a DER UTF8String."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UTF8STRING_TAG = 0x0C


# --------------------------------------------------------------------------- chain


def _aware_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        # A naive time is ambiguous; refusing it keeps every comparison below honest.
        raise ValueError("verification time must be timezone-aware")
    return at.astimezone(UTC)


def _fmt(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check_fulcio_leaf_profile(leaf: x509.Certificate) -> None:
    """Reject a leaf that is a CA or lacks digitalSignature / code-signing usage."""
    # Looked up by OID: the same extensions as by class, without an ABC isinstance
    # check per extension (Fulcio leaves carry a dozen).
    extensions = leaf.extensions
    try:
        bc = extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    except x509.ExtensionNotFound:
        bc = None
    if isinstance(bc, x509.BasicConstraints) and bc.ca:
        raise CertificateError("signing certificate is a CA certificate, not a leaf")
    try:
        ku = extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound as e:
        raise CertificateError("signing certificate has no KeyUsage extension") from e
    if not isinstance(ku, x509.KeyUsage) or not ku.digital_signature:
        raise CertificateError("signing certificate KeyUsage lacks digitalSignature")
    try:
        eku = extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    except x509.ExtensionNotFound as e:
        raise CertificateError("signing certificate has no ExtendedKeyUsage extension") from e
    if not isinstance(eku, x509.ExtendedKeyUsage) or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise CertificateError("signing certificate ExtendedKeyUsage lacks codeSigning")


# Fulcio leaves carry code-signing, not the client-auth EKU a client verifier demands;
# relax only the EKU rule, as sigstore-python does, so every other WebPKI extension rule
# stays in force. Built once: the policies are immutable and hold no time.
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
)
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
)
_PATH_ERRORS = (X509VerificationError, x509.UnsupportedGeneralNameType, ValueError)


class _ValidatedLinks:
    """Intermediate-to-anchor links that a whole-path validation has proved.

    A key is ``(intermediate DER, anchor DER)``, both taken from a trusted root's
    certificate authority, recorded after ``leaf -> intermediate -> anchor`` validated.
    What that proved and no later leaf can change: the anchor's signature on the
    intermediate, and both certificates' extension profile (the CA policy does not
    depend on the leaf once name constraints are excluded). What depends on the time is
    checked again on every use. Bounded (oldest first out); the lock keeps concurrent
    verifications from corrupting the dict, and a race can only cost a re-validation.
    """

    def __init__(self, limit: int) -> None:
        self._links: dict[tuple[bytes, bytes], None] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def __contains__(self, link: tuple[bytes, bytes]) -> bool:
        with self._lock:
            return link in self._links

    def __len__(self) -> int:
        with self._lock:
            return len(self._links)

    def add(self, link: tuple[bytes, bytes]) -> None:
        with self._lock:
            if link in self._links:
                return
            while len(self._links) >= self._limit:
                del self._links[next(iter(self._links))]
            self._links[link] = None

    def clear(self) -> None:
        with self._lock:
            self._links.clear()


_VALIDATED_LINKS = _ValidatedLinks(limit=64)


def clear_validated_links() -> None:
    """Forget every remembered intermediate-to-anchor link (the next chain check of each
    leaf validates the whole path again)."""
    _VALIDATED_LINKS.clear()


def _valid_at(cert: x509.Certificate, when: datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _has_name_constraints(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return False
    return True


def _path_verifier(anchor: x509.Certificate, when: datetime) -> ClientVerifier:
    # The verification time is part of the builder, so a verifier is built per call
    # (a few microseconds; the signature checks dominate).
    return (
        PolicyBuilder()
        .store(Store([anchor]))
        .time(when)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )


def _verify_with_authority(
    leaf: x509.Certificate, authority: Authority, when: datetime
) -> tuple[x509.Certificate, ...]:
    """Validate ``leaf`` under one certificate authority at ``when``.

    When the leaf's issuer is an intermediate of this authority whose link to the
    authority's anchor a whole-path validation already proved, and the intermediate and
    the anchor are both valid at ``when``, the leaf is validated with the intermediate as
    the trust anchor: the leaf's signature, validity, profile and the intermediate's
    validity and CA profile at ``when`` are checked again; the anchor's signature on the
    intermediate (time-independent) is not. Otherwise, and whenever that shorter check
    fails, the whole path is validated (so its error is the one reported).

    Raises:
        cryptography's VerificationError, UnsupportedGeneralNameType or ValueError.
    """
    anchor, intermediates = authority.chain[-1], authority.chain[:-1]
    ders = authority.chain_der
    for i, intermediate in enumerate(intermediates):
        if (
            (ders[i], ders[-1]) in _VALIDATED_LINKS
            and intermediate.subject == leaf.issuer
            and _valid_at(intermediate, when)
            and _valid_at(anchor, when)
        ):
            try:
                verified = _path_verifier(intermediate, when).verify(leaf, [])
            except _PATH_ERRORS:
                break
            return (verified.chain[0], intermediate, anchor)

    verified = _path_verifier(anchor, when).verify(leaf, list(intermediates))
    chain = tuple(verified.chain)
    if len(chain) == 3 and not (_has_name_constraints(chain[1]) or _has_name_constraints(anchor)):
        # Name constraints make the path check depend on the leaf's names: never cache.
        for i, intermediate in enumerate(intermediates):
            if intermediate == chain[1]:
                _VALIDATED_LINKS.add((ders[i], ders[-1]))
                break
    return chain


def _verify_chain(
    leaf: x509.Certificate,
    trusted_root: TrustedRoot,
    when: datetime,
    proven: list[tuple[Authority, tuple[x509.Certificate, ...]]],
) -> tuple[x509.Certificate, ...]:
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not not_before <= when <= not_after:
        raise CertificateError(
            f"signing certificate is not valid at {_fmt(when)} "
            f"(valid {_fmt(not_before)} to {_fmt(not_after)})"
        )
    _check_fulcio_leaf_profile(leaf)

    authorities = trusted_root.cas_at(when)
    if not authorities:
        raise CertificateError(
            f"no certificate authority of the trusted root is valid at {_fmt(when)}"
        )
    failures: list[str] = []
    for authority in authorities:
        for done_authority, done_chain in proven:
            # A path of this authority validated at another time of the same signature:
            # signatures and profiles do not depend on the time, validity does.
            if done_authority is authority and all(_valid_at(c, when) for c in done_chain):
                return done_chain
        try:
            chain = _verify_with_authority(leaf, authority, when)
        except _PATH_ERRORS as e:
            failures.append(f"{authority.subject or authority.uri}: {e}")
            continue
        proven.append((authority, chain))
        return chain
    raise CertificateError(
        f"signing certificate does not chain to a trusted certificate authority at "
        f"{_fmt(when)}: " + "; ".join(failures)
    )


def verify_certificate_chain(
    leaf: x509.Certificate, trusted_root: TrustedRoot, at: datetime
) -> tuple[x509.Certificate, ...]:
    """Verify that ``leaf`` chains to a trusted Fulcio CA at time ``at``.

    Only the trusted root's certificates are used: for each certificate authority
    whose ``validFor`` contains ``at``, its last certificate is the trust anchor and the
    others are the only intermediates offered. Certificates a bundle carries are never
    used for path building. Every certificate of the path must be valid at ``at``, and
    the leaf must fit the Fulcio profile (not a CA, digitalSignature, codeSigning).

    An intermediate-to-anchor link proved by an earlier whole-path validation is
    remembered (process-wide, bounded) and not re-verified for later leaves of that
    intermediate; see :func:`_verify_with_authority` for what is still checked.

    Args:
        leaf: the signing certificate.
        trusted_root: the trust root.
        at: a verified signing time (TSA genTime or Rekor integrated time); aware.

    Returns:
        The verified chain, leaf first and trust anchor last (``chain[1]`` is the
        leaf's issuer).

    Raises:
        CertificateError: the leaf is not valid at ``at``, does not fit the profile, or
            does not chain to a certificate authority trusted at ``at``.
        ValueError: ``at`` is a naive datetime.
    """
    return _verify_chain(leaf, trusted_root, _aware_utc(at), [])


def verify_certificate_chain_at_times(
    leaf: x509.Certificate, trusted_root: TrustedRoot, times: Sequence[datetime]
) -> tuple[x509.Certificate, ...]:
    """Verify ``leaf`` at every one of ``times``, as :func:`verify_certificate_chain` does.

    The same as calling :func:`verify_certificate_chain` for each time in order (the
    first time that fails raises its error), except that a path validated at one time is
    accepted at a later one, without checking its signatures again, when the same
    certificate authority is trusted then and every certificate of the path is valid.

    Returns:
        The chain verified at the last time.

    Raises:
        CertificateError: as :func:`verify_certificate_chain`, at the first failing time.
        ValueError: no time, or a naive one.
    """
    if not times:
        raise ValueError("at least one verification time is needed")
    proven: list[tuple[Authority, tuple[x509.Certificate, ...]]] = []
    chain: tuple[x509.Certificate, ...] = ()
    for at in times:
        chain = _verify_chain(leaf, trusted_root, _aware_utc(at), proven)
    return chain


def reject_root_in_chain(certs: Sequence[x509.Certificate]) -> None:
    """Refuse bundle-supplied certificates that are roots (self-issued).

    Trust comes only from the trusted root; a bundle that ships its own root is at
    best redundant and at worst an attempt to smuggle in an anchor, so clients reject
    it (sigstore-conformance ``bundle-with-root-cert_fail``). A certificate whose
    issuer name equals its subject is refused whether or not its self-signature
    verifies: no Fulcio leaf or intermediate is self-issued.

    Raises:
        CertificateError: some certificate is self-issued.
    """
    for i, cert in enumerate(certs):
        if cert.issuer != cert.subject:
            continue
        try:
            cert.verify_directly_issued_by(cert)
            kind = "a self-signed root"
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            kind = "self-issued"
        raise CertificateError(
            f"bundle certificate {i} ({cert.subject.rfc4514_string()}) is {kind}; "
            "trust anchors must come from the trusted root"
        )


# ----------------------------------------------------------------------------- SCT


def _u24(n: int) -> bytes:
    if not 0 < n < 1 << 24:
        raise SCTError(f"precertificate TBS length {n} does not fit a 24-bit length")
    return n.to_bytes(3, "big")


def _sct_signed_data(
    sct: SignedCertificateTimestamp, leaf: x509.Certificate, issuer_key_hash: bytes
) -> bytes:
    """The RFC 6962 section 3.2 ``digitally-signed`` input for a precert SCT."""
    ts = sct.timestamp
    if ts.tzinfo is None:  # cryptography returns naive UTC
        ts = ts.replace(tzinfo=UTC)
    # Integer milliseconds: float arithmetic could be off by one.
    millis = (ts - _EPOCH) // timedelta(milliseconds=1)
    tbs = leaf.tbs_precertificate_bytes  # the leaf's TBS minus its SCT list extension
    ext = sct.extension_bytes
    return b"".join(
        (
            struct.pack("!BBQH", sct.version.value, 0, millis, LogEntryType.PRE_CERTIFICATE.value),
            issuer_key_hash,
            _u24(len(tbs)),
            tbs,
            struct.pack("!H", len(ext)),
            ext,
        )
    )


def _verify_sct_signature(sct: SignedCertificateTimestamp, log: LogInstance, data: bytes) -> None:
    """Verify the SCT signature with the log key, under the algorithm the SCT declares."""
    if log.key is None:
        raise SCTError("the CT log's key type is not supported")
    key = log.key.key
    hash_alg = sct.signature_hash_algorithm
    if not isinstance(hash_alg, hashes.SHA256):
        # RFC 6962 logs sign with SHA-256; sigstore-python accepts nothing else.
        raise SCTError(f"SCT uses hash {hash_alg.name}, only SHA-256 is accepted")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if sct.signature_algorithm != SignatureAlgorithm.ECDSA:
                raise SCTError("SCT signature algorithm does not match the log's ECDSA key")
            key.verify(sct.signature, data, ec.ECDSA(hash_alg))
        elif isinstance(key, rsa.RSAPublicKey):
            if sct.signature_algorithm != SignatureAlgorithm.RSA:
                raise SCTError("SCT signature algorithm does not match the log's RSA key")
            key.verify(sct.signature, data, padding.PKCS1v15(), hash_alg)
        else:
            raise SCTError("CT log key is neither ECDSA nor RSA (RFC 6962 section 2.1.4)")
    except (InvalidSignature, ValueError, UnsupportedAlgorithm) as e:
        raise SCTError("SCT signature does not verify with the CT log key") from e


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return bc.value.ca


def _is_precert_signing(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CERTIFICATE_TRANSPARENCY in eku


# What SCT checks read from an issuer, by id() of the certificate object, which the
# entry holds (so the id cannot be reused while cached). The issuer comes from the
# verified chain, i.e. the trusted root's own certificate objects, so the same few
# objects recur; encoding a P-384 key to hash it costs more than the SCT's own check.
_ISSUER_FACTS: dict[int, tuple[x509.Certificate, tuple[bool, bool, bytes]]] = {}
_ISSUER_FACTS_LIMIT = 64


def _issuer_facts(issuer: x509.Certificate) -> tuple[bool, bool, bytes]:
    """``(is a CA, is a precertificate-signing cert, SHA-256 of its DER key)``."""
    hit = _ISSUER_FACTS.get(id(issuer))
    if hit is not None and hit[0] is issuer:
        return hit[1]
    key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    facts = (_is_ca(issuer), _is_precert_signing(issuer), key_hash)
    if len(_ISSUER_FACTS) >= _ISSUER_FACTS_LIMIT:
        _ISSUER_FACTS.clear()
    _ISSUER_FACTS[id(issuer)] = (issuer, facts)
    return facts


def _ctlogs_for(trusted_root: TrustedRoot, log_id: bytes) -> list[LogInstance]:
    """CT logs whose stated ``logId`` or computed key id (SHA-256 of DER key) is ``log_id``.

    Real trust roots do not always agree with themselves here (staging's RSA test log
    states a ``logId`` other than the hash of its key); sigstore-go matches the stated
    id and sigstore-python the computed one, so accept either. The signature must still
    verify under the matched log's key.
    """
    logs = list(trusted_root.ctlog_by_id(log_id))
    logs.extend(
        log
        for log in trusted_root.ctlogs
        if log not in logs and log.key is not None and log.key.key_id_bytes == log_id
    )
    return logs


def verify_embedded_scts(
    leaf: x509.Certificate, issuer: x509.Certificate, trusted_root: TrustedRoot
) -> None:
    """Require at least one embedded precertificate SCT from a trusted CT log.

    An SCT counts when a CT log of the trusted root has its log id (SHA-256 of the
    log's DER key), that log's ``validFor`` contains the SCT time, and the log's
    signature verifies over the precertificate entry: ``issuer_key_hash`` (SHA-256 of
    ``issuer``'s SubjectPublicKeyInfo), the leaf's TBS without the SCT list, and the
    SCT's extensions (non-empty for Static CT logs).

    Args:
        leaf: the signing certificate.
        issuer: the certificate that issued ``leaf``, from the verified chain
            (``verify_certificate_chain(...)[1]``), never from the bundle.
        trusted_root: the trust root supplying the CT logs.

    Raises:
        SCTError: no embedded SCT, none from a known log, or none verifies.
    """
    try:
        scts = list(
            leaf.extensions.get_extension_for_class(
                x509.PrecertificateSignedCertificateTimestamps
            ).value
        )
    except x509.ExtensionNotFound as e:
        raise SCTError("signing certificate has no embedded SCT") from e
    if not scts:
        raise SCTError("signing certificate has an empty embedded SCT list")
    is_ca, precert_signing, issuer_key_hash = _issuer_facts(issuer)
    if not is_ca:
        raise SCTError("the SCT issuer certificate is not a CA")
    if precert_signing:
        # RFC 6962 section 3.2 would need the precertificate-signing cert's own
        # issuer key here, which this interface does not receive; Fulcio never uses one.
        raise SCTError("precertificate-signing issuer certificates are not supported")

    failures: list[str] = []
    for i, sct in enumerate(scts):
        where = f"SCT {i} (log {sct.log_id.hex()[:16]})"
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            failures.append(f"{where}: not a precertificate SCT")
            continue
        logs = _ctlogs_for(trusted_root, sct.log_id)
        if not logs:
            failures.append(f"{where}: no CT log of the trusted root has this id")
            continue
        sct_time = sct.timestamp if sct.timestamp.tzinfo else sct.timestamp.replace(tzinfo=UTC)
        try:
            data = _sct_signed_data(sct, leaf, issuer_key_hash)
        except SCTError as e:
            failures.append(f"{where}: {e.message}")
            continue
        for log in logs:
            if not log.valid_for.contains(sct_time):
                failures.append(f"{where}: SCT time {_fmt(sct_time)} is outside the log's validity")
                continue
            try:
                _verify_sct_signature(sct, log, data)
            except SCTError as e:
                failures.append(f"{where}: {e.message}")
                continue
            return
    raise SCTError("no embedded SCT verifies: " + "; ".join(failures))


# ------------------------------------------------------------------------ identity


@dataclass(frozen=True)
class CertificateIdentity:
    """Who a Fulcio certificate was issued to: its SAN identities and OIDC issuer."""

    sans: tuple[str, ...]
    """SAN URIs, then emails, then Fulcio otherName usernames, in certificate order."""
    issuer: str | None
    """OIDC issuer (extension 1.3.6.1.4.1.57264.1.8, else 1.1); None when absent."""


def _der_utf8string(data: bytes) -> str | None:
    """Decode a whole DER UTF8String, or return None when ``data`` is not one."""
    if len(data) < 2 or data[0] != _UTF8STRING_TAG:
        return None
    first = data[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or len(data) < 2 + n:
            return None
        length, offset = int.from_bytes(data[2 : 2 + n], "big"), 2 + n
        if length < 0x80 or data[2] == 0:  # DER demands the minimal length form
            return None
    if offset + length != len(data):
        return None
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _extension_bytes(leaf: x509.Certificate, oid: ObjectIdentifier) -> bytes | None:
    try:
        value = leaf.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    # Fulcio's private extensions parse as UnrecognizedExtension (raw value bytes).
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _oidc_issuer(leaf: x509.Certificate) -> str | None:
    v2 = _extension_bytes(leaf, OIDC_ISSUER_V2_OID)
    if v2 is not None:
        decoded = _der_utf8string(v2)
        if decoded is not None:
            return decoded
    v1 = _extension_bytes(leaf, OIDC_ISSUER_V1_OID)
    if v1 is not None:
        try:
            return v1.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def certificate_identity(leaf: x509.Certificate) -> CertificateIdentity:
    """Read the SAN identities and OIDC issuer of a Fulcio certificate."""
    sans: list[str] = []
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        sans.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
        sans.extend(san.get_values_for_type(x509.RFC822Name))
        for other in san.get_values_for_type(x509.OtherName):
            if other.type_id == OTHERNAME_SAN_OID:
                # The value is the DER of the [0] EXPLICIT content: a UTF8String.
                name = _der_utf8string(other.value)
                if name is not None:
                    sans.append(name)
    return CertificateIdentity(sans=tuple(sans), issuer=_oidc_issuer(leaf))


def check_identity(
    leaf: x509.Certificate,
    *,
    identity: str | None,
    issuer: str | None,
    identity_regexp: str | None = None,
    issuer_regexp: str | None = None,
) -> CertificateIdentity:
    """Require the certificate to name ``identity`` among its SANs and ``issuer``.

    Exact values are compared for string equality, as sigstore-python's ``Identity``
    policy does; a regular expression must match the whole value (``re.fullmatch``,
    as cosign's ``--certificate-identity-regexp``), so ``a.*`` does not match a SAN
    that merely contains an ``a``. One of each pair must be given.

    Returns:
        The certificate's identity.

    Raises:
        IdentityError: the issuer or the identity differs, naming what was found.
    """
    found = certificate_identity(leaf)
    if issuer_regexp is not None:
        if not re.fullmatch(issuer_regexp, found.issuer or ""):
            raise IdentityError(
                f"certificate OIDC issuer is {found.issuer!r}, which does not match "
                f"{issuer_regexp!r}"
            )
    elif found.issuer != issuer:
        raise IdentityError(f"certificate OIDC issuer is {found.issuer!r}, expected {issuer!r}")
    if identity_regexp is not None:
        matched = any(re.fullmatch(identity_regexp, s) for s in found.sans)
    else:
        matched = identity in found.sans
    if not matched:
        shown = ", ".join(repr(s) for s in found.sans) or "none"
        wanted = f"a match of {identity_regexp!r}" if identity_regexp else repr(identity)
        raise IdentityError(
            f"certificate identity does not match: expected {wanted}, found {shown}"
        )
    return found
