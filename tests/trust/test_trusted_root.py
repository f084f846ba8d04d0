"""Trusted roots from sigstore-go and sigstore-js, read with the outcomes those projects
assert (``tests/vectors/README.md``), and one regression test per protobuf-specs field
rule of ``dhi_offline/trust/trusted_root.py``."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from dhi_offline.errors import TrustMaterialError
from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.trust.trusted_root import TrustedRoot
from tests.conftest import CONFORMANCE, VECTORS

ROOTS = VECTORS / "trusted_roots"
GO = ROOTS / "sigstore-go"
JS = ROOTS / "sigstore-js" / "packages"
JS_VERIFY = JS / "verify" / "src" / "__tests__" / "__fixtures__"
JS_CLIENT = JS / "client" / "src" / "__tests__" / "__fixtures__"
REKOR_V1 = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR = datetime(2999, 1, 1, tzinfo=UTC)


def _load(path: Path) -> TrustedRoot:
    return TrustedRoot.from_path(path)


# -- the upstream vectors ---------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning")  # scaffolding.json's CA: country "USA"
def test_sigstore_go_roots_parse() -> None:
    # pkg/root/trusted_root_test.go TestGetSigstoreTrustedRoot, TestValidityPeriods.
    good = _load(GO / "examples" / "trusted-root-public-good.json")
    assert (len(good.tlogs), len(good.ctlogs)) == (1, 2)
    assert (len(good.certificate_authorities), len(good.timestamp_authorities)) == (2, 1)
    (rekor,) = good.tlog_by_id(bytes.fromhex(REKOR_V1))
    assert rekor.key is not None and rekor.key.key_id == REKOR_V1
    assert rekor.valid_for.end is None
    ct2022 = good.ctlog_by_id(
        bytes.fromhex("dd3d306ac6c7113263191e1c99673702a24a5eb8de3cadff878a72802f29ee8e")
    )
    assert ct2022 and ct2022[0].valid_for.end is None
    assert good.certificate_authorities[1].valid_for.end is None
    assert good.timestamp_authorities[0].valid_for.end is None
    assert good.timestamp_authorities[0].uri == ""  # no "uri" in the file
    # pkg/verify/signed_entity_test.go TestEntityWithOthernameSan verifies with it.
    scaffolding = _load(GO / "pkg" / "testing" / "data" / "trusted-roots" / "scaffolding.json")
    assert [len(x) for x in (scaffolding.tlogs, scaffolding.ctlogs)] == [1, 1]
    assert scaffolding.tlogs[0].log_id.hex().startswith("f6fb357e")
    assert scaffolding.tlogs[0].key is not None and not scaffolding.timestamp_authorities
    # TestPublicKeyValidityCheckedAgainstSignedTimestamp: timestamps with 9 fraction digits.
    validity = _load(GO / "pkg" / "testing" / "data" / "trusted-roots" / "public-key-validity.json")
    (tsa,) = validity.timestamp_authorities
    assert tsa.valid_for.start == datetime(2026, 6, 4, 12, 43, 29, 186617, tzinfo=UTC)
    assert tsa.valid_for.end is not None and not validity.tlogs


def test_sigstore_js_verify_fixture_parses() -> None:
    # packages/verify/src/__tests__/trust/index.test.ts: 2 CAs, 2 TSAs, 2 tlogs, 3 ctlogs.
    root = _load(JS_VERIFY / "trust.json")
    assert [len(x) for x in (root.certificate_authorities, root.timestamp_authorities)] == [2, 2]
    assert [len(x) for x in (root.tlogs, root.ctlogs)] == [2, 3]
    # Its first tlog has no validFor, its first CA an empty one: both unbounded.
    assert root.tlogs[0].valid_for.contains(EPOCH) and root.tlogs[0].valid_for.contains(FAR)
    assert root.certificate_authorities[0].valid_for.contains(EPOCH)
    assert root.tlogs[1].log_id.hex().startswith("cf119915")  # log2025-1, Ed25519
    assert all(t.key is not None for t in (*root.tlogs, *root.ctlogs))  # incl. PKCS#1 RSA


def test_sigstore_js_client_fixture_parses() -> None:
    # packages/client/src/__tests__/sigstore.test.ts verifies with JSON.stringify of it.
    root = _load(JS_CLIENT / "trust.json")
    assert [len(x) for x in (root.tlogs, root.ctlogs, root.certificate_authorities)] == [1, 1, 1]
    assert root.tlogs[0].log_id.hex() == REKOR_V1
    assert root.tlogs[0].valid_for.contains(EPOCH)


@pytest.mark.parametrize("fixture", [JS_VERIFY, JS_CLIENT], ids=["verify", "client"])
def test_sigstore_js_json_is_the_ts_fixture(fixture: Path) -> None:
    # The .json is JSON.stringify of the .ts object literal (README): the same string
    # values in the same order, so the transcription changed nothing.
    ts = (fixture / "trust.ts").read_text(encoding="utf-8")
    literal = ts[ts.index("const trustedRootJSON = ") :]
    ts_strings = re.findall(r"'([^']*)'", literal)

    def strings(node: Any) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return []

    doc = json.loads((fixture / "trust.json").read_text(encoding="utf-8"))
    assert strings(doc) == ts_strings


def test_conformance_root_without_a_tlog_validity_start_is_refused() -> None:
    path = CONFORMANCE / "trust-root-tlog-missing-validity-start_fail" / "trusted_root.json"
    with pytest.raises(TrustMaterialError, match=r"tlogs\[1\]\.publicKey: validFor must have"):
        _load(path)


# -- one regression test per field rule ---------------------------------------------------


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((JS_CLIENT / "trust.json").read_bytes())
    return doc


def _parse(doc: dict[str, Any]) -> TrustedRoot:
    return TrustedRoot.from_bytes(json.dumps(doc).encode())


def _spki(key: Any) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def test_public_key_validity_absent_is_unbounded_and_present_needs_a_start() -> None:
    doc = _doc()
    doc["ctlogs"][0]["publicKey"].pop("validFor", None)
    assert _parse(doc).ctlogs[0].valid_for.contains(EPOCH)
    doc["ctlogs"][0]["publicKey"]["validFor"] = {"end": "2030-01-01T00:00:00Z"}
    with pytest.raises(TrustMaterialError, match=r"ctlogs\[0\]\.publicKey: validFor must have"):
        _parse(doc)
    doc["ctlogs"][0]["publicKey"]["validFor"] = None  # protobuf JSON: null is absent
    assert _parse(doc).ctlogs[0].valid_for.end is None


def test_authority_validity_is_optional_start_included() -> None:
    doc = _doc()
    ca = doc["certificateAuthorities"][0]
    del ca["validFor"]
    assert _parse(doc).certificate_authorities[0].valid_for.contains(EPOCH)
    ca["validFor"] = {"end": "2031-10-05T13:56:58Z"}
    vf = _parse(doc).certificate_authorities[0].valid_for
    assert vf.contains(EPOCH) and not vf.contains(FAR)


@pytest.mark.parametrize(
    ("value", "usable"),
    [("SHA2_256", True), (1, True), ("SHA2_384", False), (None, False), ("SHA3_256", False)],
)
def test_hash_algorithm_decides_whether_a_log_is_usable(value: object, usable: bool) -> None:
    doc = _doc()
    doc["tlogs"][0]["hashAlgorithm"] = value
    assert (_parse(doc).tlogs[0].key is not None) is usable


@pytest.mark.parametrize("value", ["SHA2_257", 99, True, {"x": 1}])
def test_unknown_hash_algorithm_refuses_the_root(value: object) -> None:
    doc = _doc()
    doc["tlogs"][0]["hashAlgorithm"] = value
    with pytest.raises(TrustMaterialError, match="hashAlgorithm: unknown value"):
        _parse(doc)


def test_key_details_must_match_the_key() -> None:
    doc = _doc()
    pk = doc["tlogs"][0]["publicKey"]
    pk["keyDetails"] = "PKIX_ED25519"  # the key is ECDSA P-256
    with pytest.raises(TrustMaterialError, match="does not match the key"):
        _parse(doc)
    pk["keyDetails"] = "NOT_AN_ALGORITHM"
    with pytest.raises(TrustMaterialError, match="keyDetails: unknown value"):
        _parse(doc)
    pk["keyDetails"] = 5  # PKIX_ECDSA_P256_SHA_256 by number
    assert _parse(doc).tlogs[0].key is not None
    pk["rawBytes"] = _spki(ed25519.Ed25519PrivateKey.generate())
    pk["keyDetails"] = "PKIX_ED25519"
    assert _parse(doc).tlogs[0].key is not None
    pk["keyDetails"] = "PKIX_ECDSA_P384_SHA_384"
    with pytest.raises(TrustMaterialError, match="does not match the key"):
        _parse(doc)
    pk["rawBytes"] = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    with pytest.raises(TrustMaterialError, match="is no PKIX_ECDSA_P384_SHA_384 key"):
        _parse(doc)


def test_rsa_key_details_fix_size_and_encoding() -> None:
    doc = _doc()
    pk = doc["ctlogs"][0]["publicKey"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pk["rawBytes"] = _spki(key)
    pk["keyDetails"] = "PKIX_RSA_PKCS1V15_2048_SHA256"
    assert _parse(doc).ctlogs[0].key is not None
    pk["keyDetails"] = "PKIX_RSA_PKCS1V15_4096_SHA256"
    with pytest.raises(TrustMaterialError, match="2048 bits"):
        _parse(doc)
    pk["keyDetails"] = "PKCS1_RSA_PKCS1V5"  # says PKCS#1, the bytes are SPKI
    with pytest.raises(TrustMaterialError, match="not the PKCS#1 encoding"):
        _parse(doc)
    pkcs1 = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    pk["rawBytes"] = base64.b64encode(pkcs1).decode()
    assert _parse(doc).ctlogs[0].key is not None
    pk["keyDetails"] = "PKIX_RSA_PSS_2048_SHA256"
    with pytest.raises(TrustMaterialError, match="not the SubjectPublicKeyInfo encoding"):
        _parse(doc)


@pytest.mark.parametrize(
    "details", ["ML_DSA_65", "PKIX_ED25519_PH", "PKIX_ECDSA_P384_SHA_256", "LMS_SHA256"]
)
def test_key_details_this_tool_cannot_verify_with_leave_the_log_unusable(details: str) -> None:
    doc = _doc()
    doc["tlogs"][0]["publicKey"]["keyDetails"] = details
    assert _parse(doc).tlogs[0].key is None


def test_unspecified_key_details_let_the_key_say_what_it_is() -> None:
    doc = _doc()
    pk = doc["tlogs"][0]["publicKey"]
    pk.pop("keyDetails")
    pk["rawBytes"] = _spki(ec.generate_private_key(ec.SECP384R1()))
    key = _parse(doc).tlogs[0].key
    assert key is not None and key.algorithm == "ecdsa-p384"
    pk["rawBytes"] = base64.b64encode(b"not a key").decode()
    assert _parse(doc).tlogs[0].key is None
    del pk["rawBytes"]  # optional in the spec: no key, no verification
    assert _parse(doc).tlogs[0].key is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("logId", {"keyId": ""}, r"logId\.keyId is empty"),
        ("logId", None, r"logId missing"),
        ("checkpointKeyId", "AAAA", r"checkpointKeyId missing"),
        ("checkpointKeyId", {}, r"checkpointKeyId\.keyId: expected base64"),
        ("baseUrl", 7, r"baseUrl must be a string"),
    ],
)
def test_log_identity_fields(field: str, value: object, message: str) -> None:
    doc = _doc()
    doc["tlogs"][0][field] = value
    with pytest.raises(TrustMaterialError, match=message):
        _parse(doc)


def test_checkpoint_key_id_is_read() -> None:
    doc = _doc()
    doc["tlogs"][0]["checkpointKeyId"] = {"keyId": base64.b64encode(b"\x01\x02\x03\x04").decode()}
    log = _parse(doc).tlogs[0]
    assert log.checkpoint_key_id == log.checkpoint_hint == b"\x01\x02\x03\x04"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uri", 5, r"uri must be a string"),
        ("subject", "sigstore", r"subject must be an object"),
        ("certChain", {"certificates": []}, r"missing a certificate"),
        ("validFor", "always", r"validFor must be an object"),
    ],
)
def test_authority_fields(field: str, value: object, message: str) -> None:
    doc = _doc()
    doc["certificateAuthorities"][0][field] = value
    with pytest.raises(TrustMaterialError, match=message):
        _parse(doc)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2022-04-13T20:06:15Z", True),
        ("2022-04-13T20:06:15.123456789Z", True),
        ("2022-04-13T22:06:15+02:00", True),
        ("2022-04-13 20:06:15Z", False),
        ("2022-04-13T20:06Z", False),
        ("2022-04-13", False),
        ("2022-04-13T20:06:15", False),
        (1649880375, False),
    ],
)
def test_times_are_protobuf_json_timestamps(value: object, ok: bool) -> None:
    doc = _doc()
    doc["certificateAuthorities"][0]["validFor"] = {"start": value}
    if ok:
        start = _parse(doc).certificate_authorities[0].valid_for.start
        assert start.replace(microsecond=0) == datetime(2022, 4, 13, 20, 6, 15, tzinfo=UTC)
    else:
        with pytest.raises(TrustMaterialError, match=r"validFor\.start"):
            _parse(doc)


def test_null_lists_are_empty_and_the_spec_media_types_only() -> None:
    doc = _doc()
    doc["timestampAuthorities"] = None
    assert _parse(doc).timestamp_authorities == ()
    doc["mediaType"] = "application/vnd.dev.sigstore.trustedroot+json;version=0.2"  # not in spec
    with pytest.raises(TrustMaterialError, match="media type"):
        _parse(doc)


# -- moved from test_trust_material.py ------------------------------------------------


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
