"""Sigstore bundles (protobuf-specs ``Bundle``), v0.1 to v0.3, in their JSON form.

Parsing checks structure only; :mod:`dhi_offline.verify.sigstore` verifies. The
per-version rules (sigstore_bundle.proto) are enforced here because they decide what
evidence a bundle of that version must carry:

- v0.1: every log entry carries an inclusion promise (SET);
- v0.2 and later: every log entry carries an inclusion proof with a checkpoint.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from dhi_offline.encoding import (
    b64decode,
    loads_json,
    require_dict,
    require_int,
    require_str,
)
from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence.dsse import Envelope, envelope_from_json

BUNDLE_MEDIA_TYPES: dict[str, tuple[int, int]] = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1": (0, 1),
    "application/vnd.dev.sigstore.bundle+json;version=0.2": (0, 2),
    "application/vnd.dev.sigstore.bundle+json;version=0.3": (0, 3),
    "application/vnd.dev.sigstore.bundle.v0.3+json": (0, 3),
}
BUNDLE_V03_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MAX_TLOG_ENTRIES = 16


@dataclass(frozen=True)
class InclusionProof:
    """An RFC 6962 audit path; ``log_index`` is the leaf index inside the tree."""

    log_index: int
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: str | None


@dataclass(frozen=True)
class TlogEntry:
    """A transparency-log entry as a bundle carries it."""

    log_index: int
    """The entry's global (virtual) index, the one the SET signs."""
    log_id: bytes
    kind: str
    version: str
    integrated_time: int
    body: bytes
    """The canonicalized entry body (the Merkle leaf)."""
    signed_entry_timestamp: bytes | None
    inclusion_proof: InclusionProof | None


@dataclass(frozen=True)
class MessageSignature:
    """A signature over an artifact's digest (hashedrekord)."""

    digest_algorithm: str
    digest: bytes | None
    """The bundle's claimed digest: a hint only, never trusted over the artifact."""
    signature: bytes


@dataclass(frozen=True)
class SigstoreBundle:
    """A parsed sigstore bundle."""

    media_type: str
    version: tuple[int, int]
    key_hint: str | None
    """``publicKey.hint`` for key-signed bundles; None for keyless."""
    certificates: tuple[x509.Certificate, ...]
    """Leaf first; empty for key-signed bundles."""
    certificate_form: str
    """"certificate", "x509CertificateChain" or "publicKey"."""
    tlog_entries: tuple[TlogEntry, ...]
    rfc3161_timestamps: tuple[bytes, ...]
    message_signature: MessageSignature | None
    envelope: Envelope | None
    raw: bytes

    @property
    def signature(self) -> bytes:
        """The signature bytes (what RFC 3161 timestamps cover)."""
        if self.message_signature is not None:
            return self.message_signature.signature
        if self.envelope is None:
            raise MalformedEvidenceError(
                "sigstore bundle has neither a message signature nor an envelope"
            )
        return self.envelope.signatures[0].sig

    @property
    def is_keyless(self) -> bool:
        """True when the signer is identified by a certificate."""
        return self.key_hint is None


def parse_bundle(data: bytes) -> SigstoreBundle:
    """Parse a sigstore bundle from JSON bytes.

    Raises:
        MalformedEvidenceError: not JSON, unknown version, or structure invalid for
            the bundle's version.
    """
    doc = require_dict(loads_json(data, what="sigstore bundle"), what="sigstore bundle")
    media_type = doc.get("mediaType")
    if media_type not in BUNDLE_MEDIA_TYPES:
        raise MalformedEvidenceError(f"unsupported sigstore bundle media type {media_type!r}")
    version = BUNDLE_MEDIA_TYPES[media_type]
    vm = require_dict(doc.get("verificationMaterial"), what="verificationMaterial")

    key_hint: str | None = None
    certs: list[x509.Certificate] = []
    forms = [k for k in ("publicKey", "x509CertificateChain", "certificate") if k in vm]
    if len(forms) != 1:
        raise MalformedEvidenceError(
            "verificationMaterial must hold exactly one of publicKey, "
            "x509CertificateChain, certificate"
        )
    form = forms[0]
    if form == "publicKey":
        pk = require_dict(vm["publicKey"], what="verificationMaterial.publicKey")
        hint = pk.get("hint", "")
        if not isinstance(hint, str):
            raise MalformedEvidenceError("verificationMaterial.publicKey.hint: expected a string")
        key_hint = hint
    elif form == "x509CertificateChain":
        chain = require_dict(vm["x509CertificateChain"], what="x509CertificateChain")
        items = chain.get("certificates")
        if not isinstance(items, list) or not items:
            raise MalformedEvidenceError(
                "expected a non-empty certificate chain in the sigstore bundle"
            )
        certs = [_cert(c, f"x509CertificateChain.certificates[{i}]") for i, c in enumerate(items)]
    else:
        certs = [_cert(vm["certificate"], "certificate")]

    entries_obj = vm.get("tlogEntries", [])
    if not isinstance(entries_obj, list):
        raise MalformedEvidenceError("tlogEntries: expected a list")
    if len(entries_obj) > MAX_TLOG_ENTRIES:
        raise MalformedEvidenceError(f"too many tlog entries ({len(entries_obj)})")
    entries = tuple(_entry(e, i, version) for i, e in enumerate(entries_obj))

    tsd = vm.get("timestampVerificationData", {})
    timestamps: list[bytes] = []
    if tsd:
        tsd = require_dict(tsd, what="timestampVerificationData")
        ts_list = tsd.get("rfc3161Timestamps", [])
        if not isinstance(ts_list, list):
            raise MalformedEvidenceError("rfc3161Timestamps: expected a list")
        for i, t in enumerate(ts_list):
            td = require_dict(t, what=f"rfc3161Timestamps[{i}]")
            timestamps.append(
                _b64(td.get("signedTimestamp"), f"rfc3161Timestamps[{i}].signedTimestamp")
            )

    contents = [k for k in ("messageSignature", "dsseEnvelope") if k in doc]
    if len(contents) != 1:
        raise MalformedEvidenceError(
            "bundle must hold exactly one of messageSignature, dsseEnvelope"
        )
    message_signature: MessageSignature | None = None
    envelope: Envelope | None = None
    if contents[0] == "messageSignature":
        ms = require_dict(doc["messageSignature"], what="messageSignature")
        sig = _b64(ms.get("signature"), "messageSignature.signature")
        if not sig:
            raise MalformedEvidenceError("messageSignature.signature is empty")
        alg, digest = "SHA2_256", None
        if "messageDigest" in ms:
            md = require_dict(ms["messageDigest"], what="messageSignature.messageDigest")
            alg = require_str(md.get("algorithm", "SHA2_256"), what="messageDigest.algorithm")
            digest = _b64(md.get("digest", ""), "messageDigest.digest")
        message_signature = MessageSignature(digest_algorithm=alg, digest=digest, signature=sig)
    else:
        envelope = envelope_from_json(doc["dsseEnvelope"], what="dsseEnvelope")

    return SigstoreBundle(
        media_type=media_type,
        version=version,
        key_hint=key_hint,
        certificates=tuple(certs),
        certificate_form=form,
        tlog_entries=entries,
        rfc3161_timestamps=tuple(timestamps),
        message_signature=message_signature,
        envelope=envelope,
        raw=data,
    )


def _b64(value: object, what: str) -> bytes:
    """:func:`~dhi_offline.encoding.b64decode`, faster for strict base64 text.

    Text that strict decoding accepts has no whitespace to drop, so the result is the one
    ``b64decode`` gives; anything else goes through ``b64decode`` and its errors.
    """
    if isinstance(value, str):
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            pass
    return b64decode(value, what=what)


def _b64_list(values: list[object], what: str) -> tuple[bytes, ...]:
    """Decode every item of ``values`` as :func:`_b64` does (``what[j]`` names item j)."""
    texts = [v for v in values if isinstance(v, str)]
    if len(texts) == len(values):
        try:
            return tuple(binascii.a2b_base64(t, strict_mode=True) for t in texts)
        except (binascii.Error, ValueError):
            pass
    return tuple(b64decode(v, what=f"{what}[{j}]") for j, v in enumerate(values))


def _cert(obj: object, what: str) -> x509.Certificate:
    der = _b64(require_dict(obj, what=what).get("rawBytes"), f"{what}.rawBytes")
    try:
        cert = x509.load_der_x509_certificate(der)
        # cryptography parses lazily: touch every field verification reads, so a
        # malformed one is refused here rather than surfacing later as a crash.
        _ = (cert.subject, cert.issuer, cert.extensions, cert.not_valid_before_utc)
        _ = (cert.not_valid_after_utc, cert.signature_hash_algorithm, cert.public_key())
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as e:
        # DuplicateExtension is no ValueError: a certificate listing one twice.
        raise MalformedEvidenceError(f"{what}: not a well-formed DER certificate ({e})") from e
    return cert


def _entry(obj: object, i: int, version: tuple[int, int]) -> TlogEntry:
    what = f"tlogEntries[{i}]"
    e = require_dict(obj, what=what)
    log_index = require_int(e.get("logIndex"), what=f"{what}.logIndex")
    log_id = _b64(
        require_dict(e.get("logId"), what=f"{what}.logId").get("keyId"), f"{what}.logId.keyId"
    )
    kv = require_dict(e.get("kindVersion"), what=f"{what}.kindVersion")
    kind = require_str(kv.get("kind"), what=f"{what}.kindVersion.kind")
    kversion = require_str(kv.get("version"), what=f"{what}.kindVersion.version")
    integrated_time = require_int(e.get("integratedTime", 0), what=f"{what}.integratedTime")
    body = _b64(e.get("canonicalizedBody"), f"{what}.canonicalizedBody")
    if not body:
        raise MalformedEvidenceError(f"{what}: empty canonicalizedBody")

    set_sig: bytes | None = None
    if "inclusionPromise" in e:
        ip = require_dict(e["inclusionPromise"], what=f"{what}.inclusionPromise")
        set_sig = _b64(ip.get("signedEntryTimestamp"), f"{what}.signedEntryTimestamp")
        if not set_sig:
            set_sig = None

    proof: InclusionProof | None = None
    if "inclusionProof" in e:
        p = require_dict(e["inclusionProof"], what=f"{what}.inclusionProof")
        hashes_obj = p.get("hashes", [])
        if not isinstance(hashes_obj, list):
            raise MalformedEvidenceError(f"{what}.inclusionProof.hashes: expected a list")
        checkpoint: str | None = None
        cp = p.get("checkpoint")
        if cp is not None:
            env = require_dict(cp, what=f"{what}.inclusionProof.checkpoint").get("envelope")
            checkpoint = require_str(env, what=f"{what}.inclusionProof.checkpoint.envelope")
        proof = InclusionProof(
            log_index=require_int(p.get("logIndex"), what=f"{what}.inclusionProof.logIndex"),
            root_hash=_b64(p.get("rootHash"), f"{what}.inclusionProof.rootHash"),
            tree_size=require_int(
                p.get("treeSize"), what=f"{what}.inclusionProof.treeSize", minimum=1
            ),
            hashes=_b64_list(hashes_obj, f"{what}.inclusionProof.hashes"),
            checkpoint=checkpoint or None,
        )

    if version == (0, 1):
        if set_sig is None:
            raise MalformedEvidenceError(
                f"{what}: a v0.1 bundle entry must carry an inclusion promise"
            )
    elif proof is None or proof.checkpoint is None:
        raise MalformedEvidenceError(
            f"{what}: a v0.2+ bundle entry must carry an inclusion proof with a checkpoint"
        )
    return TlogEntry(
        log_index=log_index,
        log_id=log_id,
        kind=kind,
        version=kversion,
        integrated_time=integrated_time,
        body=body,
        signed_entry_timestamp=set_sig,
        inclusion_proof=proof,
    )
