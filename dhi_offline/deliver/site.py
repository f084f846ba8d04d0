"""What the site signs: cosign image signatures and SLSA Verification Summary Attestations.

Pure functions from a verdict to bytes; nothing here opens a socket. The shapes are the
ones cosign writes with a key (no certificate, no transparency log: an air-gapped site
has neither), so cosign, Kyverno, sigstore policy-controller and containers/image read
them with the site's public key:

- an image signature is a simple-signing payload (``critical.identity.docker-reference``,
  ``critical.image.docker-manifest-digest``, ``critical.type``) whose ECDSA signature is
  the layer annotation ``dev.cosignproject.cosign/signature``;
- a VSA is an in-toto Statement v1 in a DSSE envelope, stored as a cosign ``.att`` layer
  and as a sigstore bundle v0.3 (``dsseEnvelope``; ``verificationMaterial.publicKey.hint``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dhi_offline import __version__
from dhi_offline.bundle.signing import ExporterPrivateKey, public_key_of, sign_bytes
from dhi_offline.deliver import names
from dhi_offline.encoding import format_rfc3339, loads_json, require_dict
from dhi_offline.errors import DhiError
from dhi_offline.evidence.dsse import (
    DsseSignature,
    Envelope,
    envelope_from_bytes,
    pae,
    verify_envelope,
)
from dhi_offline.evidence.simplesigning import COSIGN_SIGNATURE_TYPE
from dhi_offline.oci import mediatypes as mt
from dhi_offline.trust.keys import PublicKey


def compact(obj: object) -> bytes:
    """Compact JSON with sorted keys: the one serialization of what the site writes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class SiteKey:
    """The site's signing key and its public half."""

    private: ExporterPrivateKey
    public: PublicKey

    @classmethod
    def of(cls, private: ExporterPrivateKey) -> SiteKey:
        """Wrap a loaded ECDSA P-256 private key."""
        return cls(private, public_key_of(private))

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
        return self.public.key_id

    @property
    def hint(self) -> str:
        """``verificationMaterial.publicKey.hint``: base64 SHA-256 of the DER public key,
        as cosign writes it for a key-signed bundle."""
        return base64.b64encode(bytes.fromhex(self.public.key_id)).decode()

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA signature of ``data``."""
        return sign_bytes(data, self.private)


@dataclass(frozen=True)
class InputAttestation:
    """One publisher attestation the verdict rests on (a VSA ``inputAttestations`` entry)."""

    predicate_type: str
    uri: str
    """``oci://REGISTRY/REPO@<manifest digest>`` in the internal registry."""
    manifest_digest: str


@dataclass(frozen=True)
class Verdict:
    """The site's verdict on one image digest (a platform manifest or the index)."""

    image: str
    """The image reference as exported."""
    repository: str
    """``REGISTRY/REPO`` the image has in the internal registry."""
    digest: str
    platform: str | None
    """None for the index (or a single-platform manifest's top level)."""
    passed: bool
    reasons: tuple[str, ...]
    inputs: tuple[InputAttestation, ...]
    unsafe: tuple[str, ...]
    """Unsafe switches of the verification (each labels the VSA; no image signature)."""

    @property
    def result(self) -> str:
        """``PASSED`` or ``FAILED`` (``verificationResult``)."""
        return names.PASSED if self.passed else names.FAILED

    @property
    def signable(self) -> bool:
        """Whether this digest gets the site's image signature: passed, nothing unsafe."""
        return self.passed and not self.unsafe

    @property
    def resource_uri(self) -> str:
        """``oci://REGISTRY/REPO@DIGEST``."""
        return f"oci://{self.repository}@{self.digest}"


def unsafe_levels(unsafe: Sequence[str]) -> list[str]:
    """``DHI_OFFLINE_UNSAFE_<SWITCH>`` for each unsafe switch (``--at ...`` -> ``_AT``)."""
    levels: list[str] = []
    for text in unsafe:
        switch = text.split(":", 1)[0].split()[0].lstrip("-").upper().replace("-", "_")
        level = f"{names.UNSAFE_LEVEL_PREFIX}_{switch or 'SWITCH'}"
        if level not in levels:
            levels.append(level)
    return levels


def simple_signing_payload(verdict: Verdict) -> bytes:
    """The cosign simple-signing payload for the verdict's digest (no optional claims:
    the same image signed twice by the same key gives the same payload)."""
    return compact(
        {
            "critical": {
                "identity": {"docker-reference": verdict.repository},
                "image": {"docker-manifest-digest": verdict.digest},
                "type": COSIGN_SIGNATURE_TYPE,
            },
            "optional": None,
        }
    )


def vsa_statement(
    verdict: Verdict,
    *,
    time_verified: datetime,
    policy_name: str | None,
    policy_sha256: str | None,
    bundle_sha256: str,
) -> bytes:
    """The in-toto Statement v1 carrying a SLSA VSA v1 for ``verdict``."""
    algorithm, _, hex_digest = verdict.digest.partition(":")
    levels: list[str] = []
    if verdict.passed and policy_name:
        levels.append(names.POLICY_LEVEL_PREFIX + _level_name(policy_name))
    if not verdict.passed:
        levels.append(names.FAILED)
    levels.extend(unsafe_levels(verdict.unsafe))
    predicate: dict[str, Any] = {
        "verifier": {"id": names.VERIFIER_ID, "version": {"dhi-offline": __version__}},
        "timeVerified": format_rfc3339(time_verified),
        "resourceUri": verdict.resource_uri,
        "policy": {
            "uri": f"urn:dhi-offline:policy:{policy_name or 'none'}",
            **({"digest": {"sha256": policy_sha256}} if policy_sha256 else {}),
        },
        "inputAttestations": [
            {
                "uri": a.uri,
                "digest": {"sha256": a.manifest_digest.removeprefix("sha256:")},
                "name": a.predicate_type,
            }
            for a in verdict.inputs
        ],
        "verificationResult": verdict.result,
        "verifiedLevels": levels,
        "slsaVersion": "1.0",
        # Where the verdict came from, for the auditor; consumers ignore unknown fields.
        names.BUNDLE_PREDICATE_FIELD: {
            "sha256": bundle_sha256,
            "reasons": list(verdict.reasons),
            "unsafe": list(verdict.unsafe),
        },
    }
    statement: dict[str, Any] = {
        "_type": names.INTOTO_STATEMENT_TYPE,
        "subject": [{"name": verdict.repository, "digest": {algorithm: hex_digest}}],
        "predicateType": names.VSA_PREDICATE_TYPE,
        "predicate": predicate,
    }
    return compact(statement)


def _level_name(policy_name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in policy_name.upper())
    return cleaned.strip("_") or "POLICY"


def dsse_envelope(statement: bytes, key: SiteKey) -> bytes:
    """The statement in a one-signature DSSE envelope (``keyid`` empty, as cosign writes)."""
    signature = key.sign(pae(names.INTOTO_PAYLOAD_TYPE, statement))
    envelope = Envelope(
        payload_type=names.INTOTO_PAYLOAD_TYPE,
        payload=statement,
        signatures=(DsseSignature(sig=signature, keyid=""),),
    )
    return compact(envelope.to_json())


def sigstore_bundle(envelope: bytes, key: SiteKey) -> bytes:
    """A sigstore bundle v0.3 around the DSSE envelope, key-signed, with no log entry."""
    return compact(
        {
            "mediaType": mt.SIGSTORE_BUNDLE_V03,
            "verificationMaterial": {
                "publicKey": {"hint": key.hint},
                "tlogEntries": [],
                "timestampVerificationData": {"rfc3161Timestamps": []},
            },
            "dsseEnvelope": json.loads(envelope),
        }
    )


def envelope_of_bundle(data: bytes) -> bytes:
    """The DSSE envelope (compact JSON) inside a sigstore bundle the site wrote.

    Raises:
        DhiError: not a bundle with a ``dsseEnvelope``.
    """
    doc = require_dict(loads_json(data, what="sigstore bundle"), what="sigstore bundle")
    return compact(require_dict(doc.get("dsseEnvelope"), what="sigstore bundle dsseEnvelope"))


def site_vsa(envelope: bytes, key: SiteKey, digest: str) -> dict[str, Any] | None:
    """The VSA predicate of ``envelope`` when the site key signed it about ``digest``.

    Used to find the verdict a previous push wrote, so a re-run completes it with the
    same envelope instead of a second one. None when it is not such a VSA.
    """
    try:
        env = envelope_from_bytes(envelope, what="VSA envelope")
        verify_envelope(env, key.public, exactly_one=True, expected_keyid=None)
        statement = require_dict(loads_json(env.payload, what="VSA"), what="VSA")
    except DhiError:
        return None
    if env.payload_type != names.INTOTO_PAYLOAD_TYPE:
        return None
    if statement.get("predicateType") != names.VSA_PREDICATE_TYPE:
        return None
    algorithm, _, hex_digest = digest.partition(":")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not any(
        isinstance(s, dict)
        and isinstance(s.get("digest"), dict)
        and s["digest"].get(algorithm) == hex_digest
        for s in subjects
    ):
        return None
    predicate = statement.get("predicate")
    return predicate if isinstance(predicate, dict) else None


def signature_config(layer_digests: Sequence[str]) -> bytes:
    """The config go-containerregistry writes for a cosign ``.sig``/``.att`` image."""
    return compact(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layer_digests],
            "os": "",
            "rootfs": {"diff_ids": list(layer_digests), "type": "layers"},
        }
    )


def sha256_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
