"""Rekor signed entry timestamps with a freshly generated log key."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from dhi_offline.errors import SignedEntryTimestampError
from dhi_offline.tlog.set import canonical_set_payload, verify_signed_entry_timestamp
from dhi_offline.trust.keys import from_crypto
from dhi_offline.trust.timerange import TimeRange
from dhi_offline.trust.trusted_root import LogInstance

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())
LOG_ID = hashlib.sha256(
    KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).digest()
LOG = LogInstance(
    base_url="https://rekor.example.dev",
    log_id=LOG_ID,
    key=from_crypto(KEY.public_key()),
    valid_for=TimeRange(start=datetime(2020, 1, 1, tzinfo=UTC)),
)
BODY = base64.b64encode(b'{"apiVersion":"0.0.1","kind":"hashedrekord"}').decode()
FIELDS: dict[str, Any] = {
    "body_b64": BODY,
    "integrated_time": 1_700_000_000,
    "log_index": 123_456_789,
    "log_id": LOG_ID,
}


def sign(payload: bytes, key: ec.EllipticCurvePrivateKey = KEY) -> bytes:
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


def test_canonical_payload_bytes() -> None:
    got = canonical_set_payload(
        body_b64="YWJj", integrated_time=1, log_index=2, log_id=bytes.fromhex("00ff")
    )
    # RFC 8785: keys sorted, no whitespace, lowercase hex log id.
    assert got == b'{"body":"YWJj","integratedTime":1,"logID":"00ff","logIndex":2}'


def test_canonical_payload_rejects_non_integers() -> None:
    with pytest.raises(SignedEntryTimestampError):
        canonical_set_payload(body_b64="", integrated_time=True, log_index=1, log_id=b"")
    with pytest.raises(SignedEntryTimestampError):
        canonical_set_payload(
            body_b64="",
            integrated_time=1,
            log_index="1",  # type: ignore[arg-type]
            log_id=b"",
        )
    with pytest.raises(SignedEntryTimestampError, match="canonicalize"):
        canonical_set_payload(body_b64="", integrated_time=2**60, log_index=1, log_id=b"")


def test_valid_set() -> None:
    sig = sign(canonical_set_payload(**FIELDS))
    verify_signed_entry_timestamp(**FIELDS, signature=sig, log=LOG)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body_b64", base64.b64encode(b'{"apiVersion":"0.0.1","kind":"dsse"}').decode()),
        ("integrated_time", 1_700_000_001),
        ("log_index", 123_456_788),
    ],
)
def test_tampered_field(field: str, value: object) -> None:
    sig = sign(canonical_set_payload(**FIELDS))
    with pytest.raises(SignedEntryTimestampError, match="does not verify") as info:
        verify_signed_entry_timestamp(**{**FIELDS, field: value}, signature=sig, log=LOG)
    assert info.value.step == "signed entry timestamp"


def test_wrong_key_and_garbage_signature() -> None:
    payload = canonical_set_payload(**FIELDS)
    for sig in (sign(payload, OTHER), b"", b"\x30\x00", sign(payload)[:-1]):
        with pytest.raises(SignedEntryTimestampError):
            verify_signed_entry_timestamp(**FIELDS, signature=sig, log=LOG)


def test_set_naming_another_log() -> None:
    # Even a genuine signature by this key does not vouch for an entry in another log.
    other_id = bytes(32)
    sig = sign(canonical_set_payload(**{**FIELDS, "log_id": other_id}))
    with pytest.raises(SignedEntryTimestampError, match="names log"):
        verify_signed_entry_timestamp(**{**FIELDS, "log_id": other_id}, signature=sig, log=LOG)


def test_log_without_key() -> None:
    log = LogInstance(base_url="https://x", log_id=LOG_ID, key=None, valid_for=LOG.valid_for)
    with pytest.raises(SignedEntryTimestampError, match="key type"):
        verify_signed_entry_timestamp(
            **FIELDS, signature=sign(canonical_set_payload(**FIELDS)), log=log
        )


def test_ed25519_log_signs_raw_payload() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    log = LogInstance(
        base_url="https://x",
        log_id=LOG_ID,
        key=from_crypto(key.public_key()),
        valid_for=LOG.valid_for,
    )
    verify_signed_entry_timestamp(
        **FIELDS, signature=key.sign(canonical_set_payload(**FIELDS)), log=log
    )


@pytest.mark.parametrize(
    ("body_b64", "integrated_time", "log_index"),
    [
        ("YWJj", 1, 2),
        ("", 0, 0),
        ("a+/b==", -(2**53) + 1, 2**53 - 1),
        ("YWJj", 2**53 - 1, 0),
        ('say "hi"\\', 1, 1),  # needs escaping: the general serializer writes it
        ("caf\u00e9\u2028", 1, 1),
        ("line\nbreak", 1, 1),
    ],
)
def test_canonical_payload_is_what_rfc8785_writes(
    body_b64: str, integrated_time: int, log_index: int
) -> None:
    import rfc8785

    log_id = bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
    expected = rfc8785.dumps(
        {
            "body": body_b64,
            "integratedTime": integrated_time,
            "logID": log_id.hex(),
            "logIndex": log_index,
        }
    )
    got = canonical_set_payload(
        body_b64=body_b64, integrated_time=integrated_time, log_index=log_index, log_id=log_id
    )
    assert got == expected


@pytest.mark.parametrize("value", [2**53, -(2**53)])
def test_canonical_payload_refuses_integers_beyond_jcs_range(value: int) -> None:
    with pytest.raises(SignedEntryTimestampError, match="canonicalize"):
        canonical_set_payload(body_b64="YWJj", integrated_time=value, log_index=1, log_id=b"")
    with pytest.raises(SignedEntryTimestampError, match="canonicalize"):
        canonical_set_payload(body_b64="YWJj", integrated_time=1, log_index=value, log_id=b"")
