"""Keys, keyrings with windows, and trusted roots."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from dhi_offline.errors import SignatureError, TrustMaterialError, ValidityWindowError
from dhi_offline.trust.keyring import keyring_from_json, shipped_dhi_keyring
from dhi_offline.trust.keys import load_any, load_pem
from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.trust.timerange import TimeRange
from dhi_offline.trust.trusted_root import TrustedRoot

DHI2_ID = "118ba556dd52f4aec67018efd316c285c783cd3e54cc0f4527605715c643887c"
DHI1_ID = "1b431f0d467ecc9e3d97e5b446980599a99c3a386e42ea628b172db1051c737b"


def _pem(priv: object) -> bytes:
    return priv.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_shipped_dhi_keyring_ids_and_status() -> None:
    ring = shipped_dhi_keyring()
    dhi2, dhi1 = ring.by_id(DHI2_ID), ring.by_id(DHI1_ID)
    assert dhi2 is not None and dhi2.name == "dhi-2" and dhi2.status == "active"
    assert dhi1 is not None and dhi1.name == "dhi-1" and dhi1.status == "inactive"
    assert dhi2.key.algorithm == "ecdsa-p256"


def test_inactive_key_only_before_rotation() -> None:
    dhi1 = shipped_dhi_keyring().by_id(DHI1_ID)
    assert dhi1 is not None
    before = datetime(2025, 4, 1, tzinfo=UTC)
    after = datetime(2026, 1, 1, tzinfo=UTC)
    dhi1.check_signing_times([before], fallback=after)
    with pytest.raises(ValidityWindowError, match="dhi-1"):
        dhi1.check_signing_times([after], fallback=after)
    # No verified time: judged at the reference time, which is after the rotation.
    with pytest.raises(ValidityWindowError, match="no verified signing time"):
        dhi1.check_signing_times([], fallback=after)


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ecdsa-p256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-p384"),
        (ed25519.Ed25519PrivateKey.generate, "ed25519"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa"),
    ],
)
def test_key_algorithms_sign_and_verify(make: object, alg: str) -> None:
    priv = make()  # type: ignore[operator]
    key = load_pem(_pem(priv))
    assert key.algorithm == alg
    assert load_any(key.der).key_id == key.key_id
    msg = b"payload"
    if alg.startswith("ecdsa"):
        h = hashes.SHA256() if alg == "ecdsa-p256" else hashes.SHA384()
        sig = priv.sign(msg, ec.ECDSA(h))
    elif alg == "ed25519":
        sig = priv.sign(msg)
    else:
        sig = priv.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    key.verify(sig, msg)
    with pytest.raises(SignatureError):
        key.verify(sig, msg + b"!")


def test_bad_key_material() -> None:
    with pytest.raises(TrustMaterialError):
        load_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(TrustMaterialError, match="too small"):
        load_pem(_pem(small))


def test_keyring_document_rules() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1())).decode()
    good = {"keys": [{"name": "a", "pem": pem, "status": "revoked", "validFor": {}}]}
    ring = keyring_from_json(json.dumps(good).encode())
    assert not ring.entries[0].valid_at(datetime(2030, 1, 1, tzinfo=UTC))
    dup = {"keys": [{"pem": pem}, {"pem": pem}]}
    with pytest.raises(TrustMaterialError, match="twice"):
        keyring_from_json(json.dumps(dup).encode())
    bad_status = {"keys": [{"pem": pem, "status": "maybe"}]}
    with pytest.raises(TrustMaterialError, match="status"):
        keyring_from_json(json.dumps(bad_status).encode())
    inverted = {
        "keys": [
            {
                "pem": pem,
                "validFor": {"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"},
            }
        ]
    }
    with pytest.raises(TrustMaterialError, match="ends before"):
        keyring_from_json(json.dumps(inverted).encode())


def test_time_range_is_closed() -> None:
    r = TimeRange.from_json(
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}, what="x"
    )
    assert r.contains(datetime(2025, 1, 1, tzinfo=UTC))
    assert r.contains(datetime(2025, 1, 2, tzinfo=UTC))
    assert not r.contains(datetime(2025, 1, 2, 0, 0, 1, tzinfo=UTC))
    assert TimeRange.from_json({"start": "2025-01-01T00:00:00Z", "end": None}, what="x").end is None
    with pytest.raises(TrustMaterialError):
        TimeRange.from_json({"end": "2025-01-01T00:00:00Z"}, what="x")
    with pytest.raises(TrustMaterialError):
        TimeRange.from_json({"start": "2025-01-01T00:00:00"}, what="x")  # no zone


def test_shipped_roots_parse_with_known_log_ids() -> None:
    prod = shipped_trusted_root("production")
    rekor = prod.tlog_by_id(
        bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
    )
    assert rekor and rekor[0].key is not None
    assert rekor[0].key.key_id_bytes == rekor[0].log_id  # Rekor v1: log id = SHA-256(DER)
    v2 = [t for t in prod.tlogs if "log2025-1" in t.base_url]
    assert v2 and v2[0].log_id.hex().startswith("cf119915")  # signed-note key id, not SHA-256(DER)
    assert prod.certificate_authorities and prod.ctlogs and prod.timestamp_authorities
    staging = shipped_trusted_root("staging")
    assert any(t.log_id.hex().startswith("d32f30a3") for t in staging.tlogs)  # rekor.sigstage.dev


def test_trusted_root_media_types_and_client_trust_config() -> None:
    doc = json.loads(shipped_trusted_root("production").raw)
    for mt in (
        "application/vnd.dev.sigstore.trustedroot.v0.1+json",
        "application/vnd.dev.sigstore.trustedroot.v0.2+json",
    ):
        doc["mediaType"] = mt
        assert TrustedRoot.from_bytes(json.dumps(doc).encode()).media_type == mt
    wrapped = {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": doc,
    }
    assert TrustedRoot.from_bytes(json.dumps(wrapped).encode()).tlogs
    doc["mediaType"] = "application/vnd.dev.sigstore.trustedroot+json;version=9"
    with pytest.raises(TrustMaterialError, match="media type"):
        TrustedRoot.from_bytes(json.dumps(doc).encode())
    with pytest.raises(TrustMaterialError):
        TrustedRoot.from_bytes(b"{")


def test_der_key_ending_in_a_whitespace_byte_loads() -> None:
    # Regression: load_any stripped whitespace from binary DER, so about one key in 40
    # (those whose last byte is 0x09-0x0d or 0x20) failed to load.
    for _ in range(5000):
        key = load_pem(_pem(ec.generate_private_key(ec.SECP256R1())))
        if key.der[-1:] in (b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c"):
            break
    else:
        pytest.skip("no key ending in a whitespace byte was generated")
    assert load_any(key.der).key_id == key.key_id


def test_trusted_root_certificate_with_a_duplicated_extension_is_refused() -> None:
    # The certificate of the regression vector in tests/evidence/test_regressions.py
    # (DuplicateExtension, which is no ValueError), here as trust material.
    import base64

    from tests.conftest import CONFORMANCE

    data = (CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes()
    mutated = json.loads(data[:448] + b"I" + data[449:])
    raw = mutated["verificationMaterial"]["certificate"]["rawBytes"]
    assert base64.b64decode(raw)
    doc = json.loads(shipped_trusted_root("production").raw)
    doc["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] = raw
    with pytest.raises(TrustMaterialError, match="not a DER certificate"):
        TrustedRoot.from_bytes(json.dumps(doc).encode())
