"""The binding between a Rekor entry body and what was actually signed.

A log entry proves something was logged; it only proves *this* signature was logged if
the entry's body names this signature, this key or certificate, and this content.
Skipping that comparison is the CVE-2022-36056 class of bug (cosign accepted a valid log
entry for a different artifact). Supported kinds, as Rekor v1 and v2 write them:

- ``hashedrekord`` 0.0.1 (``spec.data.hash``, ``spec.signature``) and 0.0.2
  (``spec.hashedRekordV002``; for DSSE the digest is of ``PAE(type, payload)``);
- ``dsse`` 0.0.1 (``payloadHash`` and the signature list) and 0.0.2 (``spec.dsseV002``);
- ``intoto`` 0.0.1 (``content.hash`` of the uploaded envelope bytes, ``payloadHash``)
  and 0.0.2 (``content.envelope`` with double-base64 signatures and keys).

The envelope JSON itself is not canonical, so ``envelopeHash``/``content.hash`` are only
compared when the exact uploaded bytes are known (a cosign ``.att`` layer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dhi_offline.encoding import b64decode, loads_json, require_dict, require_str
from dhi_offline.errors import DhiError, LogEntryBindingError, MalformedEvidenceError
from dhi_offline.evidence.dsse import Envelope
from dhi_offline.trust.keys import PublicKey, load_any


@dataclass(frozen=True)
class SignedContent:
    """What a log entry must be about.

    Exactly one of ``artifact_digest`` (a signature over an artifact's SHA-256) and
    ``envelope`` (a DSSE envelope) is set.
    """

    signature: bytes
    key: PublicKey
    certificate: x509.Certificate | None = None
    artifact_digest: bytes | None = None
    envelope: Envelope | None = None
    envelope_bytes: bytes | None = None
    """The exact envelope bytes as uploaded, when known (cosign ``.att`` layers)."""

    @cached_property
    def certificate_der(self) -> bytes:
        """DER of :attr:`certificate` (encoded once; empty when there is none)."""
        if self.certificate is None:
            return b""
        return self.certificate.public_bytes(serialization.Encoding.DER)


_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----"
)


def _fail(kind: str, message: str) -> LogEntryBindingError:
    return LogEntryBindingError(f"{kind} entry {message}")


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _hex_digest(obj: object, *, what: str) -> bytes:
    d = require_dict(obj, what=what)
    alg = require_str(d.get("algorithm"), what=f"{what}.algorithm").lower()
    if alg not in ("sha256", "sha2_256"):
        raise MalformedEvidenceError(f"{what}: unsupported digest algorithm {alg!r}")
    value = require_str(d.get("value"), what=f"{what}.value")
    try:
        out = bytes.fromhex(value)
    except ValueError as e:
        raise MalformedEvidenceError(f"{what}: not hex") from e
    if len(out) != 32:
        raise MalformedEvidenceError(f"{what}: not a SHA-256 digest")
    return out


def _b64_digest(obj: object, *, what: str) -> bytes:
    d = require_dict(obj, what=what)
    alg = require_str(d.get("algorithm"), what=f"{what}.algorithm")
    if alg != "SHA2_256":
        raise MalformedEvidenceError(f"{what}: unsupported digest algorithm {alg!r}")
    out = b64decode(d.get("digest"), what=f"{what}.digest")
    if len(out) != 32:
        raise MalformedEvidenceError(f"{what}: not a SHA-256 digest")
    return out


def _load_cert(material: bytes) -> x509.Certificate | None:
    try:
        if material.startswith(b"-----BEGIN CERTIFICATE"):
            return x509.load_pem_x509_certificate(material)
        if material.startswith(b"\x30"):
            return x509.load_der_x509_certificate(material)
    except ValueError:
        return None
    return None


def _pem_certificate_der(text: bytes) -> bytes | None:
    """The DER inside ``text`` when it is exactly one PEM certificate block, else None."""
    m = _PEM_CERTIFICATE.fullmatch(text)
    if m is None:
        return None
    try:
        return base64.b64decode(b"".join(m.group(1).split()), validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return None


def _verifier_matches(material: bytes, content: SignedContent) -> bool:
    """Does a PEM/DER key or certificate from the body equal the signer's?"""
    # Only text is trimmed: DER ends with signature or key bytes, and a last byte that
    # happens to be 0x09-0x0d or 0x20 must stay (it made about 1 in 40 bindings fail).
    text = material if material.startswith(b"\x30") else material.strip()
    if content.certificate is not None:
        # Fast path for the usual case, a PEM of the signer's own certificate: equal DER
        # is exactly what the comparison below concludes, without parsing the PEM
        # certificate and re-encoding both. Any other material takes the general path.
        der = _pem_certificate_der(text)
        if der is not None and _same(der, content.certificate_der):
            return True
    cert = _load_cert(text)
    if cert is not None:
        return content.certificate is not None and _same(
            cert.public_bytes(serialization.Encoding.DER), content.certificate_der
        )
    if content.certificate is not None:
        return False  # keyless signatures are logged with their certificate
    try:
        key = load_any(text)
    except DhiError:
        return False
    return _same(key.der, content.key.der)


def _v2_verifier(obj: object, content: SignedContent, what: str) -> bool:
    v = require_dict(obj, what=what)
    if "x509Certificate" in v:
        raw = b64decode(
            require_dict(v["x509Certificate"], what=f"{what}.x509Certificate").get("rawBytes"),
            what=f"{what}.x509Certificate.rawBytes",
        )
        return _verifier_matches(raw, content)
    if "publicKey" in v:
        raw = b64decode(
            require_dict(v["publicKey"], what=f"{what}.publicKey").get("rawBytes"),
            what=f"{what}.publicKey.rawBytes",
        )
        return content.certificate is None and _same(raw, content.key.der)
    return False


def verify_entry_body(*, kind: str, version: str, body: bytes, content: SignedContent) -> None:
    """Check that the entry ``body`` records exactly ``content``.

    Raises:
        LogEntryBindingError: the body is about another signature, key or content, or
            its kind/version differ from the declared ones.
        MalformedEvidenceError: the body is not a well-formed entry of its kind.
    """
    doc = require_dict(loads_json(body, what="log entry body"), what="log entry body")
    if doc.get("kind") != kind or doc.get("apiVersion") != version:
        raise _fail(
            kind,
            f"declares {kind}/{version} but its body is {doc.get('kind')}/{doc.get('apiVersion')}",
        )
    spec = require_dict(doc.get("spec"), what="log entry spec")
    handler = _HANDLERS.get((kind, version))
    if handler is None:
        raise LogEntryBindingError(f"unsupported log entry kind {kind}/{version}")
    handler(spec, content)


def _digest_of_content(content: SignedContent) -> bytes:
    if content.artifact_digest is not None:
        return content.artifact_digest
    if content.envelope is None:
        raise LogEntryBindingError(
            "the signed content has neither an artifact digest nor an envelope"
        )
    return hashlib.sha256(content.envelope.pae).digest()


def _hashedrekord_001(spec: dict[str, Any], content: SignedContent) -> None:
    k = "hashedrekord 0.0.1"
    if content.artifact_digest is None:
        raise _fail(k, "can only record a signature over an artifact digest")
    data_hash = _hex_digest(
        require_dict(spec.get("data"), what="spec.data").get("hash"), what="spec.data.hash"
    )
    if not _same(data_hash, content.artifact_digest):
        raise _fail(k, "is for a different artifact digest")
    sig = require_dict(spec.get("signature"), what="spec.signature")
    if not _same(b64decode(sig.get("content"), what="spec.signature.content"), content.signature):
        raise _fail(k, "records a different signature")
    pk = require_dict(sig.get("publicKey"), what="spec.signature.publicKey")
    if not _verifier_matches(b64decode(pk.get("content"), what="publicKey.content"), content):
        raise _fail(k, "records a different key or certificate")


def _hashedrekord_002(spec: dict[str, Any], content: SignedContent) -> None:
    k = "hashedrekord 0.0.2"
    inner = require_dict(spec.get("hashedRekordV002"), what="spec.hashedRekordV002")
    digest = _b64_digest(inner.get("data"), what="hashedRekordV002.data")
    if not _same(digest, _digest_of_content(content)):
        raise _fail(k, "is for different content than was signed")
    sig = require_dict(inner.get("signature"), what="hashedRekordV002.signature")
    if not _same(b64decode(sig.get("content"), what="signature.content"), content.signature):
        raise _fail(k, "records a different signature")
    if not _v2_verifier(sig.get("verifier"), content, "signature.verifier"):
        raise _fail(k, "records a different key or certificate")


def _require_envelope(kind: str, content: SignedContent) -> Envelope:
    if content.envelope is None:
        raise _fail(kind, "can only record a DSSE envelope")
    return content.envelope


def _logged_envelope_differs(logged: object, content: SignedContent, *, what: str) -> bool:
    """True when the exact uploaded envelope bytes are known and their hash differs."""
    if content.envelope_bytes is None or logged is None:
        return False
    return not _same(
        _hex_digest(logged, what=what), hashlib.sha256(content.envelope_bytes).digest()
    )


def _dsse_001(spec: dict[str, Any], content: SignedContent) -> None:
    k = "dsse 0.0.1"
    env = _require_envelope(k, content)
    payload_hash = _hex_digest(spec.get("payloadHash"), what="spec.payloadHash")
    if not _same(payload_hash, hashlib.sha256(env.payload).digest()):
        raise _fail(k, "records a different payload")
    if _logged_envelope_differs(spec.get("envelopeHash"), content, what="spec.envelopeHash"):
        raise _fail(k, "records a different envelope")
    sigs = spec.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != len(env.signatures):
        raise _fail(k, "records a different set of signatures")
    for i, s in enumerate(sigs):
        sd = require_dict(s, what=f"spec.signatures[{i}]")
        logged = b64decode(sd.get("signature"), what=f"spec.signatures[{i}].signature")
        if _same(logged, content.signature):
            verifier = b64decode(sd.get("verifier"), what=f"spec.signatures[{i}].verifier")
            if _verifier_matches(verifier, content):
                return
            raise _fail(k, "records the signature with a different key or certificate")
    raise _fail(k, "does not record this envelope's signature")


def _dsse_002(spec: dict[str, Any], content: SignedContent) -> None:
    k = "dsse 0.0.2"
    env = _require_envelope(k, content)
    inner = require_dict(spec.get("dsseV002"), what="spec.dsseV002")
    payload_hash = _b64_digest(inner.get("payloadHash"), what="dsseV002.payloadHash")
    if not _same(payload_hash, hashlib.sha256(env.payload).digest()):
        raise _fail(k, "records a different payload")
    sigs = inner.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != len(env.signatures):
        raise _fail(k, "records a different set of signatures")
    for i, s in enumerate(sigs):
        sd = require_dict(s, what=f"dsseV002.signatures[{i}]")
        if _same(b64decode(sd.get("content"), what="signature.content"), content.signature):
            if _v2_verifier(sd.get("verifier"), content, "signature.verifier"):
                return
            raise _fail(k, "records the signature with a different key or certificate")
    raise _fail(k, "does not record this envelope's signature")


def _intoto_001(spec: dict[str, Any], content: SignedContent) -> None:
    k = "intoto 0.0.1"
    env = _require_envelope(k, content)
    c = require_dict(spec.get("content"), what="spec.content")
    bound = False
    if "payloadHash" in c:
        if not _same(
            _hex_digest(c["payloadHash"], what="content.payloadHash"),
            hashlib.sha256(env.payload).digest(),
        ):
            raise _fail(k, "records a different payload")
        bound = True
    if content.envelope_bytes is not None and "hash" in c:
        if _logged_envelope_differs(c["hash"], content, what="content.hash"):
            raise _fail(k, "records a different envelope")
        bound = True
    if not bound:
        raise _fail(k, "cannot be bound to this envelope (no payload hash)")
    pk = b64decode(spec.get("publicKey"), what="spec.publicKey")
    if not _verifier_matches(pk, content):
        raise _fail(k, "records a different key or certificate")


def _intoto_002(spec: dict[str, Any], content: SignedContent) -> None:
    k = "intoto 0.0.2"
    env = _require_envelope(k, content)
    c = require_dict(spec.get("content"), what="spec.content")
    if not _same(
        _hex_digest(c.get("payloadHash"), what="content.payloadHash"),
        hashlib.sha256(env.payload).digest(),
    ):
        raise _fail(k, "records a different payload")
    if _logged_envelope_differs(c.get("hash"), content, what="content.hash"):
        raise _fail(k, "records a different envelope")
    logged_env = require_dict(c.get("envelope"), what="content.envelope")
    if logged_env.get("payloadType") != env.payload_type:
        raise _fail(k, "records a different payload type")
    if "payload" in logged_env:
        # As with signatures below: the payload may be base64-encoded once or twice.
        logged_payload = b64decode(logged_env["payload"], what="envelope.payload")
        if not (
            _same(logged_payload, env.payload)
            or _same(logged_payload.strip(), base64.b64encode(env.payload))
        ):
            raise _fail(k, "records a different payload")
    sigs = logged_env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != len(env.signatures):
        raise _fail(k, "records a different set of signatures")
    for i, s in enumerate(sigs):
        sd = require_dict(s, what=f"envelope.signatures[{i}]")
        # Rekor's schema base64-encodes the (already base64) DSSE signature again; some
        # clients logged it encoded once. Either exact encoding of *our* signature binds.
        logged = b64decode(sd.get("sig"), what=f"envelope.signatures[{i}].sig")
        if _same(logged, content.signature) or _same(
            logged.strip(), base64.b64encode(content.signature)
        ):
            pk = b64decode(sd.get("publicKey"), what=f"envelope.signatures[{i}].publicKey")
            if _verifier_matches(pk, content):
                return
            raise _fail(k, "records the signature with a different key or certificate")
    raise _fail(k, "does not record this envelope's signature")


_HANDLERS = {
    ("hashedrekord", "0.0.1"): _hashedrekord_001,
    ("hashedrekord", "0.0.2"): _hashedrekord_002,
    ("dsse", "0.0.1"): _dsse_001,
    ("dsse", "0.0.2"): _dsse_002,
    ("intoto", "0.0.1"): _intoto_001,
    ("intoto", "0.0.2"): _intoto_002,
}


def body_as_b64(body: bytes) -> str:
    """Standard base64 of the body (the form the SET signs)."""
    return base64.b64encode(body).decode()
