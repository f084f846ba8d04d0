"""Keyrings with windows (``dhi_offline/trust/keyring.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.errors import TrustMaterialError, ValidityWindowError
from dhi_offline.trust.keyring import keyring_from_json, shipped_dhi_keyring

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
