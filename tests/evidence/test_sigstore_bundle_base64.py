"""Base64 fields of a sigstore bundle: strict text decodes fast, anything else as before."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence.sigstore_bundle import parse_bundle

TESTS = Path(__file__).resolve().parents[1]
BUNDLE = (
    TESTS
    / "vectors"
    / "sigstore-conformance"
    / "test"
    / "assets"
    / "bundle-verify"
    / "happy-path-v0.3"
    / "bundle.sigstore.json"
)


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(BUNDLE.read_text())
    return doc


def _parse(doc: dict[str, Any]) -> Any:
    return parse_bundle(json.dumps(doc).encode())


def _wrap(text: str) -> str:
    # Line breaks every 20 characters: tolerated, as base64 wrapped at 76 columns is.
    return "\n".join(text[i : i + 20] for i in range(0, len(text), 20))


def test_wrapped_base64_decodes_to_the_same_bytes() -> None:
    plain = _parse(_doc())
    doc = _doc()
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    entry["canonicalizedBody"] = _wrap(entry["canonicalizedBody"])
    proof = entry["inclusionProof"]
    proof["hashes"] = [_wrap(h) for h in proof["hashes"]]
    proof["rootHash"] = _wrap(proof["rootHash"])
    cert = doc["verificationMaterial"]["certificate"]
    cert["rawBytes"] = _wrap(cert["rawBytes"])
    doc["messageSignature"]["signature"] = _wrap(doc["messageSignature"]["signature"])
    wrapped = _parse(doc)
    assert wrapped.tlog_entries == plain.tlog_entries
    assert wrapped.certificates == plain.certificates
    assert wrapped.message_signature == plain.message_signature
    assert plain.tlog_entries[0].inclusion_proof.hashes == tuple(
        base64.b64decode(h)
        for h in _doc()["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
    )


@pytest.mark.parametrize("bad", ["not base64!", "QQ", 7, None, "QUJ\u00e9"])
def test_bad_proof_hash_is_refused_naming_its_index(bad: object) -> None:
    doc = _doc()
    hashes = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
    assert len(hashes) > 2
    hashes[2] = bad
    with pytest.raises(MalformedEvidenceError, match=r"inclusionProof\.hashes\[2\]"):
        _parse(doc)


@pytest.mark.parametrize("bad", ["not base64!", "QQ", 7])
def test_bad_body_is_refused_naming_it(bad: object) -> None:
    doc = _doc()
    doc["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] = bad
    with pytest.raises(MalformedEvidenceError, match="canonicalizedBody"):
        _parse(doc)
