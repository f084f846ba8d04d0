"""Keyless certificate checks against sigstore-conformance bundles and made-up certs."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dhi_offline.errors import CertificateError, IdentityError, SCTError
from dhi_offline.evidence.certificate import (
    OIDC_ISSUER_V1_OID,
    OIDC_ISSUER_V2_OID,
    OTHERNAME_SAN_OID,
    CertificateIdentity,
    certificate_identity,
    check_identity,
    reject_root_in_chain,
    verify_certificate_chain,
    verify_embedded_scts,
)
from dhi_offline.evidence.timestamp import verify_rfc3161
from dhi_offline.trust.trusted_root import TrustedRoot

TESTS = Path(__file__).resolve().parents[1]
CONFORMANCE = TESTS / "vectors" / "sigstore-conformance" / "test" / "assets" / "bundle-verify"
ROOTS = TESTS.parent / "dhi_offline" / "data" / "trusted_root"
PRODUCTION = ROOTS / "production.json"
STAGING = ROOTS / "staging.json"

IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"


# ------------------------------------------------------------------------ helpers


def _bundle(case: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFORMANCE / case / "bundle.sigstore.json").read_text())
    return data


def _root_path(case: str) -> Path:
    own = CONFORMANCE / case / "trusted_root.json"
    return own if own.exists() else PRODUCTION


def _root(case: str) -> TrustedRoot:
    return TrustedRoot.from_path(_root_path(case))


def _root_edited(path: Path, edit: Any) -> TrustedRoot:
    doc = json.loads(path.read_text())
    edit(doc)
    return TrustedRoot.from_bytes(json.dumps(doc).encode())


def _certs(case: str) -> list[x509.Certificate]:
    vm = _bundle(case)["verificationMaterial"]
    if "certificate" in vm:
        ders = [vm["certificate"]["rawBytes"]]
    else:
        ders = [c["rawBytes"] for c in vm["x509CertificateChain"]["certificates"]]
    return [x509.load_der_x509_certificate(base64.b64decode(d)) for d in ders]


def _leaf(case: str) -> x509.Certificate:
    return _certs(case)[0]


def _integrated_time(case: str) -> datetime:
    entry = _bundle(case)["verificationMaterial"]["tlogEntries"][0]
    return datetime.fromtimestamp(int(entry["integratedTime"]), UTC)


def _tsa_time(case: str) -> datetime:
    bundle = _bundle(case)
    vm = bundle["verificationMaterial"]
    ts = base64.b64decode(
        vm["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
    )
    sig = base64.b64decode(bundle["messageSignature"]["signature"])
    return verify_rfc3161(ts, sig, _root(case))


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------- chain


@pytest.mark.parametrize("case", ["happy-path-v0.1", "happy-path-v0.3"])
def test_chain_verifies_at_integrated_time(case: str) -> None:
    leaf = _leaf(case)
    chain = verify_certificate_chain(leaf, _root(case), _integrated_time(case))
    assert chain[0] == leaf
    assert len(chain) >= 2
    # The path ends at a trust anchor taken from the trusted root, not the bundle.
    anchors = {ca.chain[-1] for ca in _root(case).certificate_authorities}
    assert chain[-1] in anchors
    assert chain[1].subject == leaf.issuer


@pytest.mark.parametrize("case", ["happy-path-v0.1", "happy-path-v0.3"])
def test_chain_fails_after_leaf_expiry(case: str) -> None:
    leaf = _leaf(case)
    late = leaf.not_valid_after_utc + timedelta(seconds=1)
    with pytest.raises(CertificateError, match="not valid at"):
        verify_certificate_chain(leaf, _root(case), late)


def test_chain_fails_before_leaf_not_before() -> None:
    leaf = _leaf("happy-path-v0.3")
    early = leaf.not_valid_before_utc - timedelta(seconds=1)
    with pytest.raises(CertificateError, match="not valid at"):
        verify_certificate_chain(leaf, _root("happy-path-v0.3"), early)


def test_chain_at_leaf_validity_bounds_is_inclusive() -> None:
    leaf = _leaf("happy-path-v0.3")
    root = _root("happy-path-v0.3")
    verify_certificate_chain(leaf, root, leaf.not_valid_before_utc)
    verify_certificate_chain(leaf, root, leaf.not_valid_after_utc)


def test_staging_certificate_does_not_chain_to_production_root() -> None:
    case = "bundle-from-wrong-instance_fail"
    assert _root_path(case) == PRODUCTION
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(_leaf(case), _root(case), _integrated_time(case))


def test_staging_certificate_chains_to_staging_root() -> None:
    # Control for the test above: the certificate itself is fine.
    case = "bundle-from-wrong-instance_fail"
    staging = TrustedRoot.from_path(STAGING)
    chain = verify_certificate_chain(_leaf(case), staging, _integrated_time(case))
    assert len(chain) >= 2


def _set_ca_end(end: datetime) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        # Production's current Fulcio CA is the open-ended one.
        for ca in doc["certificateAuthorities"]:
            if "end" not in ca["validFor"]:
                ca["validFor"]["end"] = _rfc3339(end)

    return edit


def test_chain_fails_when_ca_not_trusted_at_time() -> None:
    case = "happy-path-v0.3"
    when = _integrated_time(case)
    root = _root_edited(PRODUCTION, _set_ca_end(when - timedelta(seconds=1)))
    with pytest.raises(CertificateError, match="no certificate authority"):
        verify_certificate_chain(_leaf(case), root, when)


def test_chain_ca_validity_end_is_inclusive() -> None:
    case = "happy-path-v0.3"
    when = _integrated_time(case)
    root = _root_edited(PRODUCTION, _set_ca_end(when))
    verify_certificate_chain(_leaf(case), root, when)


def test_chain_ignores_ca_valid_at_time_but_not_the_issuer() -> None:
    # Only the expired 2021 CA is trusted at this time, and it did not issue the leaf.
    case = "happy-path-v0.3"
    when = _integrated_time(case)

    def edit(doc: dict[str, Any]) -> None:
        for ca in doc["certificateAuthorities"]:
            if "end" not in ca["validFor"]:
                ca["validFor"]["start"] = _rfc3339(when + timedelta(days=1))
            else:
                ca["validFor"]["end"] = _rfc3339(when + timedelta(days=1))

    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(_leaf(case), _root_edited(PRODUCTION, edit), when)


def test_chain_rejects_naive_time() -> None:
    case = "happy-path-v0.3"
    with pytest.raises(ValueError, match="timezone"):
        verify_certificate_chain(
            _leaf(case), _root(case), _integrated_time(case).replace(tzinfo=None)
        )


def test_rekor2_chain_verifies_at_tsa_time() -> None:
    case = "rekor2-happy-path"
    chain = verify_certificate_chain(_leaf(case), _root(case), _tsa_time(case))
    assert chain[0] == _leaf(case)


def test_rekor2_timestamp_with_incorrect_time_fails_chain() -> None:
    # The timestamp itself is good; the leaf had expired by its genTime.
    case = "rekor2-timestamp-with-incorrect-time_fail"
    when = _tsa_time(case)
    assert when > _leaf(case).not_valid_after_utc
    with pytest.raises(CertificateError, match="not valid at"):
        verify_certificate_chain(_leaf(case), _root(case), when)


# -------------------------------------------------------------- bundle root certs


def test_bundle_with_root_certificate_rejected() -> None:
    # The vector orders the chain leaf, root, intermediate.
    certs = _certs("bundle-with-root-cert_fail")
    assert len(certs) == 3
    with pytest.raises(CertificateError, match=r"certificate 1 .* self-signed root"):
        reject_root_in_chain(certs)
    # The leaf and the intermediate alone are acceptable.
    reject_root_in_chain([certs[0], certs[2]])


@pytest.mark.parametrize("case", ["happy-path-v0.1", "happy-path-v0.3"])
def test_bundle_without_root_certificate_accepted(case: str) -> None:
    reject_root_in_chain(_certs(case))


# ---------------------------------------------------------------------------- SCT


@pytest.mark.parametrize("case", ["happy-path-v0.3", "bundle-with-sct-with-extensions"])
def test_embedded_sct_verifies(case: str) -> None:
    leaf = _leaf(case)
    root = _root(case)
    when = _integrated_time(case) if case.startswith("happy") else _tsa_time(case)
    chain = verify_certificate_chain(leaf, root, when)
    verify_embedded_scts(leaf, chain[1], root)


def test_sct_with_extensions_has_nonempty_extensions() -> None:
    # Guards the vector: the case is only meaningful if the extensions are signed over.
    ext = _leaf("bundle-with-sct-with-extensions").extensions.get_extension_for_class(
        x509.PrecertificateSignedCertificateTimestamps
    )
    assert any(sct.extension_bytes for sct in ext.value)


def test_sct_from_log_not_in_root_fails() -> None:
    case = "invalid-ct-key_fail"
    leaf = _leaf(case)
    root = _root(case)
    chain = verify_certificate_chain(leaf, root, _integrated_time(case))
    with pytest.raises(SCTError):
        verify_embedded_scts(leaf, chain[1], root)


def _happy_chain() -> tuple[x509.Certificate, x509.Certificate]:
    case = "happy-path-v0.3"
    chain = verify_certificate_chain(_leaf(case), _root(case), _integrated_time(case))
    return chain[0], chain[1]


def test_sct_bad_signature_fails() -> None:
    leaf, issuer = _happy_chain()
    sct_log_id = base64.b64encode(
        next(
            iter(
                leaf.extensions.get_extension_for_class(
                    x509.PrecertificateSignedCertificateTimestamps
                ).value
            )
        ).log_id
    ).decode()

    def swap_key(doc: dict[str, Any]) -> None:
        # Same log id, someone else's key (Rekor's): the SCT must not verify.
        rekor_key = doc["tlogs"][0]["publicKey"]["rawBytes"]
        for log in doc["ctlogs"]:
            if log["logId"]["keyId"] == sct_log_id:
                log["publicKey"]["rawBytes"] = rekor_key

    with pytest.raises(SCTError, match="does not verify"):
        verify_embedded_scts(leaf, issuer, _root_edited(PRODUCTION, swap_key))


def test_sct_wrong_issuer_key_fails() -> None:
    # issuer_key_hash is part of the signed data: another CA's key must not verify.
    leaf, _ = _happy_chain()
    root = _root("happy-path-v0.3")
    other_ca = next(ca.chain[-1] for ca in root.certificate_authorities if len(ca.chain) == 1)
    with pytest.raises(SCTError, match="does not verify"):
        verify_embedded_scts(leaf, other_ca, root)


def test_sct_outside_log_validity_fails() -> None:
    leaf, issuer = _happy_chain()

    def end_logs(doc: dict[str, Any]) -> None:
        for log in doc["ctlogs"]:
            log["publicKey"]["validFor"]["end"] = "2022-10-31T00:00:00Z"
            log["publicKey"]["validFor"]["start"] = "2021-01-01T00:00:00Z"

    with pytest.raises(SCTError, match="outside the log's validity"):
        verify_embedded_scts(leaf, issuer, _root_edited(PRODUCTION, end_logs))


# ------------------------------------------------------------------------ identity


def test_identity_of_happy_path() -> None:
    found = check_identity(_leaf("happy-path-v0.3"), identity=IDENTITY, issuer=ISSUER)
    assert found == CertificateIdentity(sans=(IDENTITY,), issuer=ISSUER)


def test_identity_mismatch_raises() -> None:
    other = IDENTITY.replace("refs/heads/main", "refs/heads/evil")
    with pytest.raises(IdentityError, match="expected") as info:
        check_identity(_leaf("happy-path-v0.3"), identity=other, issuer=ISSUER)
    assert other in info.value.message
    assert IDENTITY in info.value.message


def test_issuer_mismatch_raises() -> None:
    with pytest.raises(IdentityError, match="issuer") as info:
        check_identity(
            _leaf("happy-path-v0.3"), identity=IDENTITY, issuer="https://accounts.google.com"
        )
    assert ISSUER in info.value.message


def _make_cert(
    *, san: list[x509.GeneralName], extensions: list[tuple[x509.ObjectIdentifier, bytes]]
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName(san), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    )
    for oid, value in extensions:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return builder.sign(key, hashes.SHA256())


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 0x80
    return bytes([0x0C, len(raw)]) + raw


def test_identity_reads_othername_email_and_v2_issuer() -> None:
    cert = _make_cert(
        san=[
            x509.RFC822Name("someone@example.com"),
            x509.OtherName(OTHERNAME_SAN_OID, _der_utf8("someone!example.com")),
            x509.OtherName(x509.ObjectIdentifier("1.2.3.4"), _der_utf8("ignored")),
        ],
        extensions=[
            (OIDC_ISSUER_V1_OID, b"https://v1.example"),
            (OIDC_ISSUER_V2_OID, _der_utf8("https://v2.example")),
        ],
    )
    found = certificate_identity(cert)
    assert found.issuer == "https://v2.example"
    assert set(found.sans) == {"someone@example.com", "someone!example.com"}
    check_identity(cert, identity="someone!example.com", issuer="https://v2.example")


def test_identity_issuer_falls_back_to_v1() -> None:
    cert = _make_cert(
        san=[x509.UniformResourceIdentifier("https://example.com/wf")],
        extensions=[(OIDC_ISSUER_V1_OID, b"https://v1.example")],
    )
    assert certificate_identity(cert) == CertificateIdentity(
        sans=("https://example.com/wf",), issuer="https://v1.example"
    )


def test_identity_without_issuer_extension() -> None:
    cert = _make_cert(san=[x509.UniformResourceIdentifier("https://x")], extensions=[])
    assert certificate_identity(cert).issuer is None
    with pytest.raises(IdentityError, match="None"):
        check_identity(cert, identity="https://x", issuer=ISSUER)


def test_sct_missing_raises() -> None:
    cert = _make_cert(san=[x509.UniformResourceIdentifier("https://x")], extensions=[])
    _, issuer = _happy_chain()
    with pytest.raises(SCTError, match="no embedded SCT"):
        verify_embedded_scts(cert, issuer, _root("happy-path-v0.3"))
