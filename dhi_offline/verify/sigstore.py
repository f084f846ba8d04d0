"""Offline verification of one sigstore bundle, key-signed or keyless.

The plan, in order (each step raises a typed error naming itself, never returns False):

1. Signer material. Key-signed bundles need a key given by the caller (the bundle only
   carries a hint); keyless bundles need a non-empty chain with no root in it, whose
   leaf's key is the signing key. A key given for a keyless bundle, or an identity for
   a key-signed one, is refused: the caller asked for a kind of signer that is not there.
2. The signature over the content. For a message signature: the artifact's SHA-256
   (the bundle's ``messageDigest`` is only a hint and must agree). For DSSE: exactly one
   signature over PAE(type, payload) and, for an in-toto payload, a subject whose digest
   is the artifact's.
3. Transparency-log entries, each: a log the trusted root knows; the entry body bound to
   this signature, key and content (CVE-2022-36056); the SET by the log's key and the
   integrated time inside the log key's window; the inclusion proof up to the root, and
   the checkpoint signed by the log and equal to the proof's root and size.
4. Time. Verified times are the integrated times of entries whose SET verified and the
   times of RFC 3161 timestamps over the signature by a trusted TSA. A timestamp that
   does not verify adds no time (and is reported); having none when one is required fails.
5. Keyless only, at every verified time: the leaf is valid and chains to a CA the root
   trusts then; an embedded SCT by a trusted CT log; the expected identity and issuer.
6. The result: what was verified, by whom, when.

Steps 3 and 4 come before 5 because the certificate is judged at signing time, which
only they establish.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dhi_offline.errors import (
    KeyMismatchError,
    MalformedEvidenceError,
    SubjectMismatchError,
    TimestampError,
    TransparencyLogError,
    UsageError,
)
from dhi_offline.evidence.certificate import (
    CertificateIdentity,
    check_identity,
    reject_root_in_chain,
    verify_certificate_chain_at_times,
    verify_embedded_scts,
)
from dhi_offline.evidence.dsse import IN_TOTO_PAYLOAD_TYPE, verify_envelope
from dhi_offline.evidence.sigstore_bundle import SigstoreBundle
from dhi_offline.evidence.timestamp import verify_timestamps
from dhi_offline.tlog.body import SignedContent
from dhi_offline.trust.keys import PublicKey, from_crypto
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.tlog import VerifiedLogEntry, verify_log_entry

if TYPE_CHECKING:
    from dhi_offline.evidence.intoto import Statement


@dataclass(frozen=True)
class Artifact:
    """What the bundle must be about: a SHA-256 digest, and the bytes when we have them."""

    sha256: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Artifact:
        """An artifact from its content."""
        return cls(sha256=hashlib.sha256(data).digest())

    @classmethod
    def from_digest(cls, digest: str) -> Artifact:
        """An artifact from ``sha256:<hex>``.

        Raises:
            UsageError: not a sha256 digest.
        """
        alg, _, hexpart = digest.partition(":")
        try:
            raw = bytes.fromhex(hexpart)
        except ValueError:
            raw = b""
        if alg != "sha256" or len(raw) != 32:
            raise UsageError(f"expected sha256:<64 hex digits>, got {digest!r}")
        return cls(sha256=raw)

    @property
    def digest(self) -> str:
        """``sha256:<hex>``."""
        return "sha256:" + self.sha256.hex()


@dataclass(frozen=True)
class KeylessPolicy:
    """The certificate identity (SAN) and OIDC issuer a keyless signer must have."""

    identity: str | None
    issuer: str | None
    identity_regexp: str | None = None
    """Full-match regular expression for the SAN (cosign ``--certificate-identity-regexp``)."""
    issuer_regexp: str | None = None
    """Full-match regular expression for the issuer (``--certificate-oidc-issuer-regexp``)."""


@dataclass(frozen=True)
class VerifiedSigstoreBundle:
    """The outcome of a successful verification."""

    signer: str
    """``key:<hex id>`` or the certificate's identity."""
    key: PublicKey
    identity: CertificateIdentity | None
    payload_type: str | None
    payload: bytes | None
    statement: Statement | None
    signing_times: tuple[datetime, ...]
    log_entries: tuple[VerifiedLogEntry, ...]
    rejected_timestamps: tuple[str, ...] = ()
    """Timestamps that did not verify and so added no time."""


def verify_sigstore_bundle(
    bundle: SigstoreBundle,
    *,
    artifact: Artifact,
    trusted_root: TrustedRoot,
    key: PublicKey | None = None,
    policy: KeylessPolicy | None = None,
    require_tlog: bool = True,
    require_time: bool = True,
) -> VerifiedSigstoreBundle:
    """Verify ``bundle`` offline (see the module docstring for the plan).

    Args:
        artifact: the artifact (or in-toto subject) the bundle must be about.
        trusted_root: logs, CT logs, CAs and TSAs to trust.
        key: the publisher key, for key-signed bundles.
        policy: identity and issuer, for keyless bundles.
        require_tlog: at least one transparency-log entry must verify.
        require_time: at least one verified time (SET or RFC 3161) must exist.

    Raises:
        VerificationError: a subclass naming the step that failed.
        UsageError: neither or both of ``key`` and ``policy``.
    """
    if (key is None) == (policy is None):
        raise UsageError("give either a public key or a certificate identity and issuer")

    # (1): signer material.
    leaf = None
    if bundle.is_keyless:
        if key is not None:
            raise KeyMismatchError(
                "sigstore bundle is signed with a certificate, but a public key was given"
            )
        reject_root_in_chain(bundle.certificates)
        leaf = bundle.certificates[0]
        signing_key = from_crypto(leaf.public_key())
    else:
        if key is None:
            raise KeyMismatchError(
                "sigstore bundle is signed with a key, but no public key was given"
            )
        signing_key = key

    # (2): the signature over the content.
    statement: Statement | None = None
    payload_type: str | None = None
    payload: bytes | None = None
    if bundle.message_signature is not None:
        ms = bundle.message_signature
        if ms.digest_algorithm != "SHA2_256":
            raise MalformedEvidenceError(f"unsupported message digest {ms.digest_algorithm}")
        if ms.digest is not None and not hmac.compare_digest(ms.digest, artifact.sha256):
            raise SubjectMismatchError(
                "the sigstore bundle's message digest is not the artifact's digest"
            )
        signing_key.verify_digest(ms.signature, artifact.sha256)
        content = SignedContent(
            signature=ms.signature,
            key=signing_key,
            certificate=leaf,
            artifact_digest=artifact.sha256,
        )
    else:
        env = bundle.envelope
        if env is None:
            raise MalformedEvidenceError(
                "sigstore bundle has neither a message signature nor a DSSE envelope"
            )
        verify_envelope(
            env,
            signing_key,
            exactly_one=True,
            expected_keyid=bundle.key_hint or None,
        )
        payload_type, payload = env.payload_type, env.payload
        if env.payload_type == IN_TOTO_PAYLOAD_TYPE:
            # Imported here: a message-signature bundle's start-up skips the in-toto
            # parser and what it loads (pydantic-core).
            from dhi_offline.evidence.intoto import parse_statement  # noqa: PLC0415

            statement = parse_statement(env.payload)
            statement.require_subject(artifact.digest)
        content = SignedContent(
            signature=env.signatures[0].sig, key=signing_key, certificate=leaf, envelope=env
        )

    # (3): transparency-log entries.
    verified_entries: list[VerifiedLogEntry] = []
    set_times: list[datetime] = []
    for entry in bundle.tlog_entries:
        verified, when = verify_log_entry(entry, content, trusted_root)
        verified_entries.append(verified)
        if when is not None:
            set_times.append(when)
    if require_tlog and not verified_entries:
        raise TransparencyLogError("the sigstore bundle has no transparency-log entry")

    # (4): verified time.
    tsa = verify_timestamps(bundle.rfc3161_timestamps, bundle.signature, trusted_root)
    times = tuple(set_times + tsa.verified)
    if require_time and not times:
        if tsa.rejected:
            raise TimestampError(tsa.rejected[0])
        raise TimestampError(
            "no verified signing time: the sigstore bundle has neither a signed entry timestamp "
            "nor an RFC 3161 timestamp"
        )

    # (5): keyless: certificate at every verified time, SCT, identity.
    identity: CertificateIdentity | None = None
    signer = f"key:{signing_key.key_id}"
    if leaf is not None:
        if policy is None:
            raise KeyMismatchError(
                "sigstore bundle is signed with a certificate, but a public key was given"
            )
        # At every verified time (the chain verified at the last one names the issuer);
        # without any (require_time=False), now.
        chain = verify_certificate_chain_at_times(leaf, trusted_root, times or (datetime.now(UTC),))
        if len(chain) < 2:
            raise MalformedEvidenceError("certificate chain has no issuer")
        verify_embedded_scts(leaf, chain[1], trusted_root)
        identity = check_identity(
            leaf,
            identity=policy.identity,
            issuer=policy.issuer,
            identity_regexp=policy.identity_regexp,
            issuer_regexp=policy.issuer_regexp,
        )
        signer = policy.identity or (identity.sans[0] if identity.sans else "")

    # (6): the result.
    return VerifiedSigstoreBundle(
        signer=signer,
        key=signing_key,
        identity=identity,
        payload_type=payload_type,
        payload=payload,
        statement=statement,
        signing_times=times,
        log_entries=tuple(verified_entries),
        rejected_timestamps=tuple(tsa.rejected),
    )
