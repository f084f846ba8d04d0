"""The remembered intermediate-to-anchor links of ``verify_certificate_chain``.

A whole-path validation (leaf -> intermediate -> anchor) lets later leaves of the same
intermediate be validated with the intermediate as the trust anchor. These tests mint
their own CAs (fixed validity windows, explicit verification times) and check that the
shortcut never accepts what a whole-path validation refuses: an intermediate or anchor
expired at the signing time, an intermediate of the same name and key that the pinned
root did not sign, a root of the same name with another key, a certificate authority the
trusted root no longer trusts, and name constraints (never remembered).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import ClientVerifier

from dhi_offline.errors import CertificateError
from dhi_offline.evidence import certificate
from dhi_offline.evidence.certificate import (
    clear_validated_links,
    verify_certificate_chain,
    verify_certificate_chain_at_times,
)
from dhi_offline.trust.trusted_root import TrustedRoot

T0 = datetime(2031, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dhi-offline test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ca(
    cn: str,
    *,
    start: datetime,
    end: datetime,
    issuer: CA | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    constraints: x509.NameConstraints | None = None,
) -> CA:
    """A CA certificate in the WebPKI profile; self-signed when ``issuer`` is None."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    )
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    return CA(builder.sign(signer_key, hashes.SHA256()), key)


def _leaf(issuer: CA, *, start: datetime, email: str = "signer@example.com") -> x509.Certificate:
    """A Fulcio-like leaf: empty subject, critical SAN, codeSigning, valid 10 minutes."""
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + 10 * MINUTE)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _trusted_root(
    *chains: list[x509.Certificate], start: datetime = T0, end: datetime | None = None
) -> TrustedRoot:
    """A trusted root whose certificate authorities are ``chains`` (intermediate first)."""
    valid_for = {"start": _rfc3339(start)} | ({"end": _rfc3339(end)} if end else {})
    doc: dict[str, Any] = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "ctlogs": [],
        "timestampAuthorities": [],
        "certificateAuthorities": [
            {
                "subject": {"organization": "dhi-offline test", "commonName": f"ca-{i}"},
                "uri": f"https://ca-{i}.test",
                "certChain": {
                    "certificates": [
                        {"rawBytes": base64.b64encode(c.public_bytes(Encoding.DER)).decode()}
                        for c in chain
                    ]
                },
                "validFor": valid_for,
            }
            for i, chain in enumerate(chains)
        ],
    }
    return TrustedRoot.from_bytes(json.dumps(doc).encode())


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    clear_validated_links()
    yield
    clear_validated_links()


@pytest.fixture
def anchors_used(monkeypatch: pytest.MonkeyPatch) -> list[x509.Certificate]:
    """Records the trust anchor of every path validation (the intermediate when cached)."""
    used: list[x509.Certificate] = []
    real = certificate._path_verifier

    def spy(anchor: x509.Certificate, when: datetime) -> ClientVerifier:
        used.append(anchor)
        return real(anchor, when)

    monkeypatch.setattr(certificate, "_path_verifier", spy)
    return used


def _pki() -> tuple[CA, CA]:
    root = _ca("root", start=T0, end=T0 + 100 * DAY)
    intermediate = _ca("intermediate", start=T0, end=T0 + 50 * DAY, issuer=root)
    return root, intermediate


def _link(trusted: TrustedRoot) -> tuple[bytes, bytes]:
    ders = trusted.certificate_authorities[0].chain_der
    return ders[0], ders[-1]


# --------------------------------------------------------------------------- tests


def test_cached_path_returns_the_uncached_chain(anchors_used: list[x509.Certificate]) -> None:
    root, intermediate = _pki()
    trusted = _trusted_root([intermediate.cert, root.cert])
    first, second = _leaf(intermediate, start=T0 + DAY), _leaf(intermediate, start=T0 + 2 * DAY)

    verify_certificate_chain(first, trusted, T0 + DAY + MINUTE)
    assert _link(trusted) in certificate._VALIDATED_LINKS
    cached = verify_certificate_chain(second, trusted, T0 + 2 * DAY + MINUTE)
    # The second leaf was validated against the intermediate alone...
    assert anchors_used == [root.cert, intermediate.cert]

    clear_validated_links()
    uncached = verify_certificate_chain(second, trusted, T0 + 2 * DAY + MINUTE)
    assert anchors_used[-1] == root.cert
    # ...and yields the very chain a whole-path validation gives.
    assert list(cached) == list(uncached) == [second, intermediate.cert, root.cert]


def test_leaf_signed_by_another_key_refused_though_cached() -> None:
    root, intermediate = _pki()
    trusted = _trusted_root([intermediate.cert, root.cert])
    verify_certificate_chain(_leaf(intermediate, start=T0 + DAY), trusted, T0 + DAY + MINUTE)
    # Same issuer name as the intermediate, another key: the leaf's signature is checked.
    impostor = CA(intermediate.cert, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(
            _leaf(impostor, start=T0 + 2 * DAY), trusted, T0 + 2 * DAY + MINUTE
        )


def test_intermediate_expired_at_signing_time_refused_though_cached() -> None:
    root, intermediate = _pki()  # the intermediate expires at T0 + 50 days
    trusted = _trusted_root([intermediate.cert, root.cert])
    verify_certificate_chain(_leaf(intermediate, start=T0 + DAY), trusted, T0 + DAY + MINUTE)
    assert _link(trusted) in certificate._VALIDATED_LINKS

    late = _leaf(intermediate, start=T0 + 60 * DAY)  # issued after the intermediate expired
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(late, trusted, T0 + 60 * DAY + MINUTE)


def test_anchor_expired_at_signing_time_refused_though_cached() -> None:
    root = _ca("root", start=T0, end=T0 + 20 * DAY)
    intermediate = _ca("intermediate", start=T0, end=T0 + 50 * DAY, issuer=root)
    trusted = _trusted_root([intermediate.cert, root.cert])
    verify_certificate_chain(_leaf(intermediate, start=T0 + DAY), trusted, T0 + DAY + MINUTE)
    assert _link(trusted) in certificate._VALIDATED_LINKS

    leaf = _leaf(intermediate, start=T0 + 30 * DAY)  # intermediate valid, root expired
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(leaf, trusted, T0 + 30 * DAY + MINUTE)


def test_intermediate_of_same_name_and_key_not_signed_by_pinned_root_refused() -> None:
    root, intermediate = _pki()
    verify_certificate_chain(
        _leaf(intermediate, start=T0 + DAY),
        _trusted_root([intermediate.cert, root.cert]),
        T0 + DAY + MINUTE,
    )
    # Another root signs a twin of the intermediate (same name, same key); a trusted
    # root that pins the genuine root but lists the twin must not reuse the link.
    other_root = _ca("other root", start=T0, end=T0 + 100 * DAY)
    twin = _ca("intermediate", start=T0, end=T0 + 50 * DAY, issuer=other_root, key=intermediate.key)
    assert twin.cert.subject == intermediate.cert.subject
    assert twin.cert.public_key() == intermediate.cert.public_key()
    leaf = _leaf(intermediate, start=T0 + 2 * DAY)
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(leaf, _trusted_root([twin.cert, root.cert]), T0 + 2 * DAY)


def test_root_of_same_name_with_another_key_refused_though_link_cached() -> None:
    root, intermediate = _pki()
    verify_certificate_chain(
        _leaf(intermediate, start=T0 + DAY),
        _trusted_root([intermediate.cert, root.cert]),
        T0 + DAY + MINUTE,
    )
    # The genuine intermediate under a root that merely shares the pinned root's name.
    lookalike = _ca("root", start=T0, end=T0 + 100 * DAY)
    assert lookalike.cert.subject == root.cert.subject
    leaf = _leaf(intermediate, start=T0 + 2 * DAY)
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(
            leaf, _trusted_root([intermediate.cert, lookalike.cert]), T0 + 2 * DAY
        )


def test_authority_no_longer_trusted_at_signing_time_refused_though_cached() -> None:
    root, intermediate = _pki()
    # The certificates are valid until T0 + 50 days, the trusted root's CA only to T0 + 10.
    trusted = _trusted_root([intermediate.cert, root.cert], end=T0 + 10 * DAY)
    verify_certificate_chain(_leaf(intermediate, start=T0 + DAY), trusted, T0 + DAY + MINUTE)
    assert _link(trusted) in certificate._VALIDATED_LINKS

    leaf = _leaf(intermediate, start=T0 + 20 * DAY)
    with pytest.raises(CertificateError, match="no certificate authority"):
        verify_certificate_chain(leaf, trusted, T0 + 20 * DAY + MINUTE)


@pytest.mark.parametrize("constrained", ["intermediate", "root"])
def test_name_constrained_links_are_not_cached(
    constrained: str, anchors_used: list[x509.Certificate]
) -> None:
    only_example = x509.NameConstraints(
        permitted_subtrees=[x509.RFC822Name("example.com")], excluded_subtrees=None
    )
    root = _ca(
        "root",
        start=T0,
        end=T0 + 100 * DAY,
        constraints=only_example if constrained == "root" else None,
    )
    intermediate = _ca(
        "intermediate",
        start=T0,
        end=T0 + 50 * DAY,
        issuer=root,
        constraints=only_example if constrained == "intermediate" else None,
    )
    trusted = _trusted_root([intermediate.cert, root.cert])
    verify_certificate_chain(
        _leaf(intermediate, start=T0 + DAY, email="a@example.com"), trusted, T0 + DAY + MINUTE
    )
    assert len(certificate._VALIDATED_LINKS) == 0

    # Outside the permitted names: the whole path is validated again, and refuses it.
    outside = _leaf(intermediate, start=T0 + 2 * DAY, email="a@elsewhere.test")
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain(outside, trusted, T0 + 2 * DAY + MINUTE)
    assert anchors_used == [root.cert, root.cert]


def test_links_cache_is_bounded() -> None:
    links = certificate._ValidatedLinks(limit=2)
    for i in range(3):
        links.add((bytes([i]), b"anchor"))
    assert len(links) == 2
    assert (b"\x00", b"anchor") not in links
    assert (b"\x02", b"anchor") in links


# ------------------------------------------------------------- several verified times


def test_chain_at_times_checks_the_path_once_for_times_it_stays_valid(
    anchors_used: list[x509.Certificate],
) -> None:
    root, intermediate = _pki()
    trusted = _trusted_root([intermediate.cert, root.cert])
    leaf = _leaf(intermediate, start=T0 + DAY)
    times = [T0 + DAY + MINUTE, T0 + DAY + 2 * MINUTE, T0 + DAY + 3 * MINUTE]
    chain = verify_certificate_chain_at_times(leaf, trusted, times)
    assert list(chain) == [leaf, intermediate.cert, root.cert]
    assert anchors_used == [root.cert]


def test_chain_at_times_refuses_a_time_the_path_is_not_valid_at() -> None:
    root, intermediate = _pki()
    trusted = _trusted_root([intermediate.cert, root.cert])
    leaf = _leaf(intermediate, start=T0 + DAY)
    good, late = T0 + DAY + MINUTE, T0 + DAY + 11 * MINUTE  # the leaf lasts 10 minutes
    with pytest.raises(CertificateError, match="not valid at") as info:
        verify_certificate_chain_at_times(leaf, trusted, [good, late])
    with pytest.raises(CertificateError) as alone:
        verify_certificate_chain(leaf, trusted, late)
    assert info.value.message == alone.value.message


def test_chain_at_times_refuses_an_intermediate_expired_at_a_later_time() -> None:
    root = _ca("root", start=T0, end=T0 + 100 * DAY)
    # The intermediate expires between the two times; the leaf outlives it.
    intermediate = _ca("intermediate", start=T0, end=T0 + DAY + 5 * MINUTE, issuer=root)
    trusted = _trusted_root([intermediate.cert, root.cert])
    leaf = _leaf(intermediate, start=T0 + DAY)
    with pytest.raises(CertificateError, match="does not chain"):
        verify_certificate_chain_at_times(leaf, trusted, [T0 + DAY + MINUTE, T0 + DAY + 6 * MINUTE])


def test_chain_at_times_needs_a_time() -> None:
    root, intermediate = _pki()
    with pytest.raises(ValueError, match="at least one"):
        verify_certificate_chain_at_times(
            _leaf(intermediate, start=T0 + DAY), _trusted_root([intermediate.cert, root.cert]), []
        )
