"""sigstore-js accepts DSSE bundles signed with a plain site key and nothing else.

``dhi-offline push`` writes sigstore bundle v0.3 documents holding a DSSE envelope (an
in-toto statement) signed by an ECDSA P-256 site key, with no transparency-log entry
and no timestamp: an offline site has neither. Here sigstore-js (``js/verify_dsse.mjs``,
thresholds 0, an empty trusted root) verifies such a bundle built in the test, and
refuses it under another key, with one flipped signature byte, or with a changed
payload.

sigstore-js treats ``publicKey.hint`` as an opaque lookup key (its caller maps hints to
keys), so the hex key id, cosign's base64 SHA-256 of the SPKI and an empty hint are
all accepted; ``timestampVerificationData`` and ``tlogEntries`` may be absent.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.signing import generate_keypair
from dhi_offline.evidence.dsse import pae
from dhi_offline.trust.keys import load_pem
from tests.interop.sigstore_js import installed_node, verify_dsse_bundle

pytestmark = pytest.mark.integration

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with ``js/node_modules`` installed from the lock file."""
    return installed_node()


class SiteKey:
    """A P-256 key pair from ``generate_keypair``, as the site's signing key."""

    def __init__(self, prefix: Path) -> None:
        generated = generate_keypair(prefix)
        self.public_pem = generated.public_key
        loaded = serialization.load_pem_private_key(
            generated.private_key.read_bytes(), password=None
        )
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self.private = loaded
        self.key_id = load_pem(self.public_pem.read_bytes()).key_id
        """Hex SHA-256 of the DER SPKI."""
        der = loaded.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.cosign_hint = base64.b64encode(hashlib.sha256(der).digest()).decode()
        """What cosign writes as the hint: base64 SHA-256 of the DER SPKI."""

    def sign(self, data: bytes) -> bytes:
        """An ASN.1 DER ECDSA-SHA256 signature (what sigstore-js verifies)."""
        return self.private.sign(data, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> SiteKey:
    return SiteKey(tmp_path_factory.mktemp("site") / "site")


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> SiteKey:
    return SiteKey(tmp_path_factory.mktemp("other") / "other")


def _statement() -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "dhi.io/python", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.test/build"}},
    }
    return json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()


def _bundle(key: SiteKey, hint: str, payload: bytes | None = None) -> dict[str, Any]:
    """A v0.3 DSSE bundle as the push writes it: public-key hint, no tlog, no timestamps."""
    payload = _statement() if payload is None else payload
    signature = key.sign(pae(IN_TOTO, payload))
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "publicKey": {"hint": hint},
            "tlogEntries": [],
            "timestampVerificationData": {"rfc3161Timestamps": []},
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": hint}],
        },
    }


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "attestation.sigstore.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("hint_kind", ["key_id", "cosign", "empty"])
def test_sigstore_js_verifies_a_key_signed_dsse_bundle(
    node: str, site: SiteKey, tmp_path: Path, hint_kind: str
) -> None:
    hint = {"key_id": site.key_id, "cosign": site.cosign_hint, "empty": ""}[hint_kind]
    ok, output = verify_dsse_bundle(node, _write(tmp_path, _bundle(site, hint)), site.public_pem)
    assert ok, output
    assert output.startswith("verified:")


def test_sigstore_js_needs_no_empty_tlog_or_timestamp_fields(
    node: str, site: SiteKey, tmp_path: Path
) -> None:
    doc = _bundle(site, site.key_id)
    doc["verificationMaterial"] = {"publicKey": {"hint": site.key_id}}
    ok, output = verify_dsse_bundle(node, _write(tmp_path, doc), site.public_pem)
    assert ok, output


def test_sigstore_js_refuses_another_key(
    node: str, site: SiteKey, other: SiteKey, tmp_path: Path
) -> None:
    ok, output = verify_dsse_bundle(
        node, _write(tmp_path, _bundle(site, site.key_id)), other.public_pem
    )
    assert not ok
    assert output.startswith("refused: SIGNATURE_ERROR"), output


def test_sigstore_js_refuses_a_flipped_signature_byte(
    node: str, site: SiteKey, tmp_path: Path
) -> None:
    doc = _bundle(site, site.key_id)
    signature = doc["dsseEnvelope"]["signatures"][0]
    sig = bytearray(base64.b64decode(signature["sig"]))
    sig[-1] ^= 0x01
    signature["sig"] = base64.b64encode(bytes(sig)).decode()
    ok, output = verify_dsse_bundle(node, _write(tmp_path, doc), site.public_pem)
    assert not ok
    assert output.startswith("refused: SIGNATURE_ERROR"), output


def test_sigstore_js_refuses_a_changed_payload(node: str, site: SiteKey, tmp_path: Path) -> None:
    doc = _bundle(site, site.key_id)
    changed = _statement().replace(b"ab" * 32, b"cd" * 32)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(changed).decode()
    ok, output = verify_dsse_bundle(node, _write(tmp_path, doc), site.public_pem)
    assert not ok
    assert output.startswith("refused: SIGNATURE_ERROR"), output


def test_sigstore_js_refuses_a_changed_payload_type(
    node: str, site: SiteKey, tmp_path: Path
) -> None:
    """The PAE covers the payload type too."""
    doc = _bundle(site, site.key_id)
    doc["dsseEnvelope"]["payloadType"] = "application/vnd.dev.cosign.simplesigning.v1+json"
    ok, output = verify_dsse_bundle(node, _write(tmp_path, doc), site.public_pem)
    assert not ok
    assert output.startswith("refused: SIGNATURE_ERROR"), output


def test_sigstore_js_refuses_two_signatures(node: str, site: SiteKey, tmp_path: Path) -> None:
    """A bundle's envelope must carry exactly one signature (@sigstore/bundle checks)."""
    doc = _bundle(site, site.key_id)
    signatures = doc["dsseEnvelope"]["signatures"]
    signatures.append(dict(signatures[0]))
    ok, output = verify_dsse_bundle(node, _write(tmp_path, doc), site.public_pem)
    assert not ok
    assert "dsseEnvelope.signatures" in output, output
