"""DSSE envelopes, in-toto statements and cosign simple-signing payloads."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.encoding import b64decode, loads_json
from dhi_offline.errors import (
    KeyMismatchError,
    MalformedEvidenceError,
    SignatureError,
    SubjectMismatchError,
)
from dhi_offline.evidence.dsse import Envelope, envelope_from_bytes, pae, verify_envelope
from dhi_offline.evidence.intoto import parse_statement
from dhi_offline.evidence.simplesigning import parse_simple_signing, require_manifest_digest
from dhi_offline.trust.keys import PublicKey, from_crypto

DIGEST = "a" * 64


def test_pae_matches_the_spec_vector() -> None:
    # secure-systems-lab/dsse protocol.md test vector.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "


def _signed(payload: bytes, *, urlsafe: bool = False, keyid: str = "") -> tuple[bytes, PublicKey]:
    priv = ec.generate_private_key(ec.SECP256R1())
    sig = priv.sign(pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    env = {
        "payload": enc(payload).decode().rstrip("=" if urlsafe else ""),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": keyid, "sig": enc(sig).decode()}],
    }
    return json.dumps(env).encode(), from_crypto(priv.public_key())


@pytest.mark.parametrize("urlsafe", [False, True])
def test_envelope_verifies_in_both_base64_alphabets(urlsafe: bool) -> None:
    payload = b'{"x": "\xff\xfe?>"}' if not urlsafe else b"??>>" * 10
    data, key = _signed(payload, urlsafe=urlsafe)
    env = envelope_from_bytes(data)
    assert env.payload == payload
    verify_envelope(env, key, exactly_one=True)


def test_envelope_rejects_other_key_and_changed_payload() -> None:
    data, key = _signed(b"statement")
    _, other = _signed(b"statement")
    env = envelope_from_bytes(data)
    with pytest.raises(SignatureError):
        verify_envelope(env, other)
    changed = Envelope(env.payload_type, b"statemenT", env.signatures)
    with pytest.raises(SignatureError):
        verify_envelope(changed, key)
    retyped = Envelope("text/plain", env.payload, env.signatures)
    with pytest.raises(SignatureError):
        verify_envelope(retyped, key)


def test_envelope_exactly_one_and_keyid_hint() -> None:
    data, key = _signed(b"s", keyid="hint-a")
    env = envelope_from_bytes(data)
    verify_envelope(env, key, exactly_one=True, expected_keyid="hint-a")
    with pytest.raises(KeyMismatchError):
        verify_envelope(env, key, exactly_one=True, expected_keyid="hint-b")
    doubled = Envelope(env.payload_type, env.payload, env.signatures * 2)
    with pytest.raises(MalformedEvidenceError, match="exactly one"):
        verify_envelope(doubled, key, exactly_one=True)


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"payload": "e30=", "payloadType": "t", "signatures": []},
        {"payload": "e30=", "payloadType": "t", "signatures": [{"sig": ""}]},
        {"payload": "!!", "payloadType": "t", "signatures": [{"sig": "AA=="}]},
        {"payload": "e30=", "payloadType": 5, "signatures": [{"sig": "AA=="}]},
    ],
)
def test_malformed_envelopes(doc: object) -> None:
    with pytest.raises(MalformedEvidenceError):
        envelope_from_bytes(json.dumps(doc).encode())


def _statement(version: str = "v1", digest: str = DIGEST) -> bytes:
    return json.dumps(
        {
            "_type": f"https://in-toto.io/Statement/{version}",
            "subject": [{"name": "index.docker.io/x", "digest": {"sha256": digest}}],
            "predicateType": "https://scout.docker.com/tests/v0.1",
            "predicate": {"reportFormat": "CTRF"},
        }
    ).encode()


@pytest.mark.parametrize("version", ["v1", "v0.1"])
def test_statement_subject_matched_by_digest_not_name(version: str) -> None:
    st = parse_statement(_statement(version))
    assert st.predicate_type == "https://scout.docker.com/tests/v0.1"
    assert st.require_subject(f"sha256:{DIGEST}").name == "index.docker.io/x"
    assert st.require_subject(DIGEST).digest["sha256"] == DIGEST  # bare hex means sha256
    with pytest.raises(SubjectMismatchError):
        st.require_subject("sha256:" + "b" * 64)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        json.dumps(
            {"_type": "https://in-toto.io/Statement/v9", "subject": [], "predicateType": "x"}
        ).encode(),
        json.dumps(
            {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "x"}
        ).encode(),
        _statement(digest="abc"),
        b'{"_type": "https://in-toto.io/Statement/v1", "_type": "https://in-toto.io/Statement/v1"}',
    ],
)
def test_malformed_statements(payload: bytes) -> None:
    with pytest.raises(MalformedEvidenceError):
        parse_statement(payload)


def test_simple_signing_keys_are_case_insensitive() -> None:
    digest = "sha256:" + "c" * 64
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "dhi.io/python"},
                "image": {"Docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    parsed = parse_simple_signing(payload)
    assert parsed.manifest_digest == digest
    assert parsed.docker_reference == "dhi.io/python"
    require_manifest_digest(parsed, digest)
    with pytest.raises(SubjectMismatchError):
        require_manifest_digest(parsed, "sha256:" + "d" * 64)


@pytest.mark.parametrize(
    "critical",
    [
        {"image": {"docker-manifest-digest": "sha256:" + "c" * 64}, "type": "something else"},
        {
            "image": {"docker-manifest-digest": "sha256:short"},
            "type": "cosign container image signature",
        },
        {
            "image": {
                "docker-manifest-digest": "sha256:" + "c" * 64,
                "Docker-Manifest-Digest": "x",
            },
            "type": "cosign container image signature",
        },
        {"type": "cosign container image signature"},
    ],
)
def test_simple_signing_refuses(critical: dict[str, object]) -> None:
    with pytest.raises(MalformedEvidenceError):
        parse_simple_signing(json.dumps({"critical": critical}).encode())


def test_strict_json_and_base64() -> None:
    with pytest.raises(MalformedEvidenceError, match="nested"):
        loads_json(b"[" * 100 + b"]" * 100, what="x")
    with pytest.raises(MalformedEvidenceError, match="duplicate"):
        loads_json(b'{"a": 1, "a": 2}', what="x")
    with pytest.raises(MalformedEvidenceError):
        loads_json(b'{"a": NaN}', what="x")
    with pytest.raises(MalformedEvidenceError):
        loads_json(b'{"a": "\xff"}', what="x")
    assert b64decode("aGVs\nbG8=", what="x") == b"hello"
    with pytest.raises(MalformedEvidenceError):
        b64decode("aGVsbG8", what="x")  # missing padding is not standard base64
    assert b64decode("aGVsbG8", what="x", urlsafe_ok=True) == b"hello"
    with pytest.raises(MalformedEvidenceError):
        b64decode("a+b_", what="x", urlsafe_ok=True)  # mixed alphabets


@pytest.mark.parametrize(
    ("doc", "ok"),
    [
        ("[" * 64 + "1" + "]" * 64, True),  # 64 nested containers: the limit
        ("[" * 64 + "]" * 64, True),
        ("[" * 65 + "1" + "]" * 65, False),  # 65
        ('{"a":' * 64 + "1" + "}" * 64, True),
        ('{"a":' * 65 + "1" + "}" * 65, False),
        ('{"s": "' + "[" * 200 + '", "t": [1]}', True),  # brackets inside a string
        ("[" * 65 + "]" * 65, False),
    ],
)
def test_json_depth_limit_at_the_boundary(doc: str, ok: bool) -> None:
    if ok:
        loads_json(doc.encode(), what="x")
    else:
        with pytest.raises(MalformedEvidenceError, match="nested"):
            loads_json(doc.encode(), what="x")
