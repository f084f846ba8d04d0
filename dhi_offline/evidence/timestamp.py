"""RFC 3161 signed timestamps from a trusted timestamp authority (TSA).

A timestamp is a verified source of time for a signature when a TSA of the trusted root
signed it over the signature bytes, the TSA was trusted at the token's ``genTime``
(``validFor`` is a closed interval) and the TSA's certificates were valid then. The
checks follow sigstore-python's ``Verifier._verify_timestamp_authority`` and
sigstore-go's ``pkg/verify/tsa.go``; the CMS and ESS work is rfc3161-client's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from rfc3161_client import (
    PKIStatus,
    TimeStampResponse,
    VerifierBuilder,
    decode_timestamp_response,
)
from rfc3161_client import VerificationError as Rfc3161VerificationError

from dhi_offline.errors import TimestampError
from dhi_offline.trust.trusted_root import Authority, TrustedRoot

MAX_TIMESTAMPS = 32
"""More timestamps than this are refused outright (sigstore-go tsa.go, DoS bound)."""

# PKIStatusInfo { status INTEGER granted(0) }: prefixed to a bare TimeStampToken so
# it parses as the TimeStampResp that rfc3161-client expects.
_GRANTED_STATUS = bytes.fromhex("3003020100")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _fmt(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(data: bytes) -> tuple[TimeStampResponse, datetime]:
    """Parse a DER TimeStampResp and touch every part verification needs.

    rfc3161-client parses lazily: a response with a status but no token decodes
    fine and only fails when ``tst_info`` is read, so read it here.
    """
    response = decode_timestamp_response(data)
    if response.status != PKIStatus.GRANTED:
        # Reported as malformed-or-refused by the caller; a refused response has no token.
        raise ValueError(f"TSA status is {response.status}, not granted")
    gen_time = response.tst_info.gen_time
    _ = response.signed_data.signer_infos
    gen_time = gen_time.replace(tzinfo=UTC) if gen_time.tzinfo is None else gen_time
    return response, gen_time.astimezone(UTC)


def _decode(timestamp: bytes) -> tuple[TimeStampResponse, datetime]:
    """Parse a DER TimeStampResp, or a bare TimeStampToken (CMS ContentInfo)."""
    try:
        return _parse(timestamp)
    except ValueError as first:
        # Bundles carry a full TimeStampResp; some producers store only the token.
        # Wrap it with a "granted" status and retry, so both forms are accepted.
        body = _GRANTED_STATUS + timestamp
        wrapped = b"\x30" + _der_length(len(body)) + body
        try:
            return _parse(wrapped)
        except ValueError:
            raise TimestampError(f"timestamp is not a valid RFC 3161 response: {first}") from first


def _verify_with_authority(
    response: TimeStampResponse, message: bytes, authority: Authority, gen_time: datetime
) -> None:
    """Verify ``response`` with one TSA's chain; raise TimestampError saying why not."""
    chain = authority.chain
    if len(chain) < 2:
        # A TSA entry needs at least its signing certificate and a root.
        raise TimestampError("certificate chain is incomplete (needs leaf and root)")
    builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
    for intermediate in chain[1:-1]:
        builder = builder.add_intermediate_certificate(intermediate)
    try:
        builder.build().verify_message(response, message)
    except (Rfc3161VerificationError, ValueError) as e:
        raise TimestampError(str(e) or type(e).__name__) from e
    # rfc3161-client checks the CMS path at genTime; check it here too so the rule
    # (every TSA certificate valid at genTime) does not rest on library internals.
    for cert in chain:
        if not cert.not_valid_before_utc <= gen_time <= cert.not_valid_after_utc:
            raise TimestampError(
                f"genTime {_fmt(gen_time)} is outside the validity of TSA certificate "
                f"{_subject(cert)} ({_fmt(cert.not_valid_before_utc)} to "
                f"{_fmt(cert.not_valid_after_utc)})"
            )


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def verify_rfc3161(timestamp: bytes, message: bytes, trusted_root: TrustedRoot) -> datetime:
    """Verify one RFC 3161 timestamp over ``message`` and return its time.

    Args:
        timestamp: DER TimeStampResp (as bundles carry it) or bare TimeStampToken.
        message: the bytes the timestamp must cover: the signature bytes
            (``messageSignature.signature`` or the DSSE envelope's signature).
        trusted_root: the trust root supplying timestamp authorities.

    Returns:
        The token's genTime, an aware UTC datetime.

    Raises:
        TimestampError: malformed token, no TSA of the root trusted at genTime signed
            it, it covers a different message, or a TSA certificate was not valid at
            genTime.
    """
    response, gen_time = _decode(timestamp)

    authorities = trusted_root.timestamp_authorities
    if not authorities:
        raise TimestampError("the trusted root has no timestamp authorities")
    candidates = [a for a in authorities if a.valid_for.contains(gen_time)]
    if not candidates:
        raise TimestampError(
            f"timestamp genTime {_fmt(gen_time)} is outside the validity of every "
            "timestamp authority of the trusted root"
        )
    failures: list[str] = []
    for authority in candidates:
        try:
            _verify_with_authority(response, message, authority, gen_time)
        except TimestampError as e:
            failures.append(f"{authority.subject or authority.uri}: {e.message}")
            continue
        return gen_time
    raise TimestampError(
        "timestamp does not verify with any trusted timestamp authority: " + "; ".join(failures)
    )


@dataclass(frozen=True)
class TimestampResults:
    """The outcome of checking a bundle's timestamps."""

    verified: list[datetime]
    """genTimes of the timestamps that verified, in input order."""
    rejected: list[str]
    """One reason per timestamp that did not verify."""


def verify_timestamps(
    timestamps: Sequence[bytes], message: bytes, trusted_root: TrustedRoot
) -> TimestampResults:
    """Verify every timestamp of a bundle.

    More than :data:`MAX_TIMESTAMPS` timestamps, or the same timestamp twice (which
    would count one TSA twice toward a threshold), is refused before any is parsed.
    A timestamp that does not verify adds no time and is reported in ``rejected``, as
    sigstore-go and sigstore-python do: it cannot make a bundle pass, and requiring
    enough verified times is the caller's policy.

    Raises:
        TimestampError: too many, or duplicates.
    """
    if len(timestamps) > MAX_TIMESTAMPS:
        raise TimestampError(f"too many signed timestamps: {len(timestamps)} > {MAX_TIMESTAMPS}")
    if len({bytes(t) for t in timestamps}) != len(timestamps):
        raise TimestampError("duplicate signed timestamps")
    results = TimestampResults(verified=[], rejected=[])
    for i, ts in enumerate(timestamps):
        try:
            results.verified.append(verify_rfc3161(ts, message, trusted_root))
        except TimestampError as e:
            results.rejected.append(f"timestamp {i}: {e.message}")
    return results
