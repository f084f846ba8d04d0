"""Regression vectors for bugs found by the mutation campaign."""

from __future__ import annotations

import base64
import json

import pytest

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence.sigstore_bundle import parse_bundle
from tests.conftest import CONFORMANCE

EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")


def _with_leaf(edit: bytes, replacement: bytes) -> bytes:
    doc = json.loads((CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes())
    der = base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"])
    assert edit in der
    doc["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(
        der.replace(edit, replacement, 1)
    ).decode()
    return json.dumps(doc).encode()


def test_leaf_with_unknown_key_algorithm_is_refused_not_a_crash() -> None:
    # Found by the mutation campaign: one changed byte in the key OID made
    # cryptography raise UnsupportedAlgorithm from public_key(), a crash.
    data = _with_leaf(EC_PUBLIC_KEY_OID, EC_PUBLIC_KEY_OID[:-1] + b"\x09")
    with pytest.raises(MalformedEvidenceError, match="certificate"):
        parse_bundle(data)


def test_leaf_with_malformed_issuer_is_refused_not_a_crash() -> None:
    # Same campaign: a tag byte changed inside the issuer name parsed lazily and crashed.
    doc = json.loads((CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes())
    der = base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"])
    # The issuer Name is the first SEQUENCE of SETs after the signature algorithm;
    # corrupt the first SET tag (0x31) of the issuer into 0x3b.
    sig_alg_end = der.index(bytes.fromhex("06082a8648ce3d040303")) + 10
    i = der.index(b"\x31", sig_alg_end)
    mutated = der[:i] + b"\x3b" + der[i + 1 :]
    doc["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(mutated).decode()
    with pytest.raises(MalformedEvidenceError, match="certificate"):
        parse_bundle(json.dumps(doc).encode())


def test_leaf_with_a_duplicated_extension_is_refused_not_a_crash() -> None:
    # Found by the hypothesis property (keyless-message, byte 448 set to "I"): the
    # changed base64 character turned one extension's OID into another's, and
    # cryptography raised DuplicateExtension, which is not a ValueError.
    data = (CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes()
    mutated = data[:448] + b"I" + data[449:]
    with pytest.raises(MalformedEvidenceError, match=r"certificate.*Duplicate"):
        parse_bundle(mutated)
