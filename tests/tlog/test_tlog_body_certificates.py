"""Keyless entry bodies: the logged certificate must be the signer's, in any encoding."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from dhi_offline.errors import LogEntryBindingError
from dhi_offline.tlog.body import SignedContent, verify_entry_body
from dhi_offline.trust.keys import from_crypto

SIG = b"\x30\x44" + b"s" * 68
ARTIFACT = hashlib.sha256(b"artifact").digest()


def _cert(cn: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = datetime(2031, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(minutes=10))
        .sign(key, hashes.SHA256())
    )


SIGNER, OTHER = _cert("signer"), _cert("other")
CONTENT = SignedContent(
    signature=SIG,
    key=from_crypto(SIGNER.public_key()),
    certificate=SIGNER,
    artifact_digest=ARTIFACT,
)


def _hashedrekord(verifier: bytes) -> bytes:
    doc: dict[str, Any] = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": ARTIFACT.hex()}},
            "signature": {
                "content": base64.b64encode(SIG).decode(),
                "publicKey": {"content": base64.b64encode(verifier).decode()},
            },
        },
    }
    return json.dumps(doc).encode()


def _verify(verifier: bytes) -> None:
    verify_entry_body(
        kind="hashedrekord", version="0.0.1", body=_hashedrekord(verifier), content=CONTENT
    )


PEM = SIGNER.public_bytes(Encoding.PEM)


@pytest.mark.parametrize(
    "material",
    [
        PEM,
        PEM.replace(b"\n", b"\r\n"),
        b"\n  " + PEM + b"\n\n",
        SIGNER.public_bytes(Encoding.DER),
    ],
    ids=["pem", "pem-crlf", "pem-padded", "der"],
)
def test_signer_certificate_binds(material: bytes) -> None:
    _verify(material)


@pytest.mark.parametrize(
    "material",
    [
        OTHER.public_bytes(Encoding.PEM),
        OTHER.public_bytes(Encoding.DER),
        PEM.replace(b"-----END CERTIFICATE-----", b"AAAA-----END CERTIFICATE-----"),
        b"a comment line\n" + PEM,  # not a certificate encoding the body kinds use
        from_crypto(SIGNER.public_key()).pem(),  # the signer's key, not its certificate
    ],
    ids=["other-pem", "other-der", "pem-with-extra-bytes", "pem-after-text", "bare-key"],
)
def test_other_material_does_not_bind(material: bytes) -> None:
    with pytest.raises(LogEntryBindingError, match="different key or certificate"):
        _verify(material)


def _ending_in_whitespace(encode: Any) -> tuple[Any, bytes]:
    """A certificate (or key) whose DER ends with a byte ``bytes.strip`` would remove."""
    for _ in range(2000):
        cert = _cert("signer")
        der = encode(cert)
        if der[-1:].isspace():
            return cert, der
    raise AssertionError("no DER ending in a whitespace byte in 2000 tries")


def test_der_ending_in_a_whitespace_byte_still_binds() -> None:
    # Regression: the material was .strip()ped before DER parsing, so a certificate or key
    # whose last DER byte is 0x09-0x0d or 0x20 (about 1 in 40) failed to bind.
    cert, der = _ending_in_whitespace(lambda c: c.public_bytes(Encoding.DER))
    content = SignedContent(
        signature=SIG,
        key=from_crypto(cert.public_key()),
        certificate=cert,
        artifact_digest=ARTIFACT,
    )
    verify_entry_body(
        kind="hashedrekord", version="0.0.1", body=_hashedrekord(der), content=content
    )
    key_cert, key_der = _ending_in_whitespace(lambda c: from_crypto(c.public_key()).der)
    keyed = SignedContent(
        signature=SIG, key=from_crypto(key_cert.public_key()), artifact_digest=ARTIFACT
    )
    verify_entry_body(
        kind="hashedrekord", version="0.0.1", body=_hashedrekord(key_der), content=keyed
    )
