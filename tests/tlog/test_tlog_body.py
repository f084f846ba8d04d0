"""Log entry bodies bound to what was signed: every kind, and each way of lying (CVE-2022-36056)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.errors import LogEntryBindingError, MalformedEvidenceError
from dhi_offline.evidence.dsse import DsseSignature, Envelope
from dhi_offline.tlog.body import SignedContent, verify_entry_body
from dhi_offline.trust.keys import PublicKey, from_crypto


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def new_key() -> PublicKey:
    return from_crypto(ec.generate_private_key(ec.SECP256R1()).public_key())


KEY, OTHER = new_key(), new_key()
SIG, OTHER_SIG = b"\x30\x44" + b"s" * 68, b"\x30\x44" + b"t" * 68
ARTIFACT = hashlib.sha256(b"artifact").digest()
ENV = Envelope("application/vnd.in-toto+json", b'{"_type":"stmt"}', (DsseSignature(SIG, ""),))
ENV_BYTES = json.dumps(ENV.to_json()).encode()


def hashedrekord_001(
    digest: bytes = ARTIFACT, sig: bytes = SIG, key: PublicKey = KEY
) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
            "signature": {"content": b64(sig), "publicKey": {"content": b64(key.pem())}},
        },
    }


def hashedrekord_002(
    digest: bytes = ARTIFACT, sig: bytes = SIG, key: PublicKey = KEY
) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {
            "hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": b64(digest)},
                "signature": {
                    "content": b64(sig),
                    "verifier": {
                        "publicKey": {"rawBytes": b64(key.der)},
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    },
                },
            }
        },
    }


def dsse_001(
    payload: bytes = ENV.payload, sig: bytes = SIG, key: PublicKey = KEY
) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(ENV_BYTES).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": b64(sig), "verifier": b64(key.pem())}],
        },
    }


def intoto_002(
    payload: bytes = ENV.payload, sig: bytes = SIG, key: PublicKey = KEY
) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {
            "content": {
                "envelope": {
                    "payloadType": ENV.payload_type,
                    "signatures": [{"sig": b64(b64(sig).encode()), "publicKey": b64(key.pem())}],
                },
                "hash": {"algorithm": "sha256", "value": hashlib.sha256(ENV_BYTES).hexdigest()},
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
            }
        },
    }


def intoto_001(
    payload: bytes = ENV.payload, sig: bytes = SIG, key: PublicKey = KEY
) -> dict[str, Any]:
    del sig  # intoto 0.0.1 does not record the signature
    return {
        "apiVersion": "0.0.1",
        "kind": "intoto",
        "spec": {
            "content": {
                "hash": {"algorithm": "sha256", "value": hashlib.sha256(ENV_BYTES).hexdigest()},
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
            },
            "publicKey": b64(key.pem()),
        },
    }


MESSAGE = SignedContent(signature=SIG, key=KEY, artifact_digest=ARTIFACT)
DSSE = SignedContent(signature=SIG, key=KEY, envelope=ENV, envelope_bytes=ENV_BYTES)


def check(body: dict[str, Any], content: SignedContent) -> None:
    verify_entry_body(
        kind=body["kind"],
        version=body["apiVersion"],
        body=json.dumps(body).encode(),
        content=content,
    )


@pytest.mark.parametrize(
    ("make", "content"),
    [
        (hashedrekord_001, MESSAGE),
        (hashedrekord_002, MESSAGE),
        (dsse_001, DSSE),
        (intoto_001, DSSE),
        (intoto_002, DSSE),
    ],
)
def test_each_kind_binds_and_refuses_each_lie(
    make: Callable[..., dict[str, Any]], content: SignedContent
) -> None:
    check(make(), content)
    if make in (hashedrekord_001, hashedrekord_002):
        lies = [
            make(digest=hashlib.sha256(b"other").digest()),
            make(sig=OTHER_SIG),
            make(key=OTHER),
        ]
    elif make is intoto_001:
        lies = [make(payload=b"other"), make(key=OTHER)]
    else:
        lies = [make(payload=b"other"), make(sig=OTHER_SIG), make(key=OTHER)]
    for lie in lies:
        with pytest.raises(LogEntryBindingError):
            check(lie, content)


def test_hashedrekord_002_binds_dsse_by_pae_digest() -> None:
    body = hashedrekord_002(digest=hashlib.sha256(ENV.pae).digest())
    check(body, DSSE)
    with pytest.raises(LogEntryBindingError):
        check(hashedrekord_002(digest=hashlib.sha256(ENV.payload).digest()), DSSE)


def test_declared_kind_must_match_body() -> None:
    body = hashedrekord_001()
    with pytest.raises(LogEntryBindingError, match="declares"):
        verify_entry_body(
            kind="hashedrekord", version="0.0.2", body=json.dumps(body).encode(), content=MESSAGE
        )
    with pytest.raises(LogEntryBindingError, match="declares"):
        verify_entry_body(
            kind="dsse", version="0.0.1", body=json.dumps(body).encode(), content=MESSAGE
        )


def test_wrong_content_kind_and_unknown_kinds() -> None:
    with pytest.raises(LogEntryBindingError):
        check(hashedrekord_001(), DSSE)  # a DSSE envelope is never logged as hashedrekord 0.0.1
    with pytest.raises(LogEntryBindingError):
        check(dsse_001(), MESSAGE)
    body = {"apiVersion": "0.0.1", "kind": "rekord", "spec": {}}
    with pytest.raises(LogEntryBindingError, match="unsupported"):
        check(body, MESSAGE)


def test_envelope_hash_checked_when_exact_bytes_known() -> None:
    other_bytes = SignedContent(
        signature=SIG, key=KEY, envelope=ENV, envelope_bytes=ENV_BYTES + b" "
    )
    for make in (dsse_001, intoto_001, intoto_002):
        with pytest.raises(LogEntryBindingError, match="different envelope"):
            check(make(), other_bytes)


def test_malformed_bodies() -> None:
    with pytest.raises(MalformedEvidenceError):
        verify_entry_body(kind="hashedrekord", version="0.0.1", body=b"{not json", content=MESSAGE)
    body = hashedrekord_001()
    body["spec"]["data"]["hash"]["value"] = "zz"
    with pytest.raises(MalformedEvidenceError):
        check(body, MESSAGE)
