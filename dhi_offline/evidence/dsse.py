"""DSSE envelopes (secure-systems-lab/dsse v1.0.0).

The signature covers ``PAE(payloadType, payload)``, never the JSON envelope, so the
envelope's own bytes are not authenticated: only the decoded payload and its type are.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from dhi_offline.encoding import b64decode, loads_json, require_dict, require_str
from dhi_offline.errors import KeyMismatchError, MalformedEvidenceError, SignatureError
from dhi_offline.steps import Step
from dhi_offline.trust.keys import PublicKey

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class DsseSignature:
    """One signature of an envelope."""

    sig: bytes
    keyid: str


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope; ``payload`` is the decoded bytes that were signed."""

    payload_type: str
    payload: bytes
    signatures: tuple[DsseSignature, ...]

    @property
    def pae(self) -> bytes:
        """The bytes the signatures cover."""
        return pae(self.payload_type, self.payload)

    def to_json(self) -> dict[str, Any]:
        """The envelope in its JSON form (standard base64)."""
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in self.signatures
            ],
        }


def envelope_from_json(obj: object, *, what: str = "DSSE envelope") -> Envelope:
    """Parse an envelope from its JSON object; standard and URL-safe base64 are accepted.

    Raises:
        MalformedEvidenceError: missing fields, bad base64, no signature.
    """
    env = require_dict(obj, what=what)
    payload_type = require_str(env.get("payloadType"), what=f"{what}.payloadType")
    payload = b64decode(env.get("payload"), what=f"{what}.payload", urlsafe_ok=True)
    sigs_obj = env.get("signatures")
    if not isinstance(sigs_obj, list) or not sigs_obj:
        raise MalformedEvidenceError(f"{what}: no signatures")
    sigs: list[DsseSignature] = []
    for i, s in enumerate(sigs_obj):
        sd = require_dict(s, what=f"{what}.signatures[{i}]")
        sig = b64decode(sd.get("sig"), what=f"{what}.signatures[{i}].sig", urlsafe_ok=True)
        if not sig:
            raise MalformedEvidenceError(f"{what}.signatures[{i}]: empty signature")
        keyid = sd.get("keyid", "")
        if not isinstance(keyid, str):
            raise MalformedEvidenceError(f"{what}.signatures[{i}].keyid: expected a string")
        sigs.append(DsseSignature(sig=sig, keyid=keyid))
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(sigs))


def envelope_from_bytes(data: bytes, *, what: str = "DSSE envelope") -> Envelope:
    """Parse an envelope from JSON bytes (an ``.att`` layer, a bundle member)."""
    return envelope_from_json(loads_json(data, what=what), what=what)


def verify_envelope(
    envelope: Envelope,
    key: PublicKey,
    *,
    exactly_one: bool = False,
    expected_keyid: str | None = None,
) -> DsseSignature:
    """Verify that ``key`` signed the envelope's PAE.

    Args:
        exactly_one: require exactly one signature (sigstore bundles MUST have one).
        expected_keyid: when set and a signature names a keyid, the two must be equal
            (sigstore bundles: the key hint and the DSSE keyid MUST match).

    Returns:
        The signature that verified.

    Raises:
        MalformedEvidenceError: wrong number of signatures.
        KeyMismatchError: the keyid names another key.
        SignatureError: no signature verifies with ``key``.
    """
    if exactly_one and len(envelope.signatures) != 1:
        raise MalformedEvidenceError(
            f"DSSE envelope must carry exactly one signature, has {len(envelope.signatures)}"
        )
    message = envelope.pae
    for s in envelope.signatures:
        if expected_keyid is not None and s.keyid and s.keyid != expected_keyid:
            if exactly_one:
                raise KeyMismatchError(
                    f"DSSE keyid {s.keyid!r} differs from the bundle key hint {expected_keyid!r}"
                )
            continue
        try:
            key.verify(s.sig, message)
        except SignatureError:
            continue
        return s
    raise SignatureError(f"no DSSE signature verifies with key {key.key_id[:16]}", step=Step.DSSE)
