"""RFC 3161 timestamp checks against sigstore-conformance and sigstore-python vectors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rfc3161_client import decode_timestamp_response

from dhi_offline.errors import TimestampError
from dhi_offline.evidence.timestamp import MAX_TIMESTAMPS, verify_rfc3161, verify_timestamps
from dhi_offline.trust.trusted_root import TrustedRoot

TESTS = Path(__file__).resolve().parents[1]
CONFORMANCE = TESTS / "vectors" / "sigstore-conformance" / "test" / "assets" / "bundle-verify"
PY_TSA = TESTS / "vectors" / "sigstore-python" / "test" / "assets" / "tsa"
ROOTS = TESTS.parent / "dhi_offline" / "data" / "trusted_root"
PRODUCTION = ROOTS / "production.json"
STAGING = ROOTS / "staging.json"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _timestamps(bundle: dict[str, Any]) -> list[bytes]:
    tvd = bundle["verificationMaterial"]["timestampVerificationData"]
    return [base64.b64decode(t["signedTimestamp"]) for t in tvd["rfc3161Timestamps"]]


def _signature(bundle: dict[str, Any]) -> bytes:
    if "messageSignature" in bundle:
        return base64.b64decode(bundle["messageSignature"]["signature"])
    return base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])


def _case(case: str) -> tuple[bytes, bytes, TrustedRoot]:
    bundle = _load(CONFORMANCE / case / "bundle.sigstore.json")
    (ts,) = _timestamps(bundle)
    own = CONFORMANCE / case / "trusted_root.json"
    root = TrustedRoot.from_path(own if own.exists() else PRODUCTION)
    return ts, _signature(bundle), root


def _edited(path: Path, edit: Any) -> TrustedRoot:
    doc = _load(path)
    edit(doc)
    return TrustedRoot.from_bytes(json.dumps(doc).encode())


# ------------------------------------------------------------ conformance: pass


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("rekor2-happy-path", "2025-06-12T12:02:20+00:00"),
        ("rekor2-timestamp-with-embedded-cert", "2025-08-06T18:51:36+00:00"),
        ("rekor2-timestamp-without-embedded-cert", "2025-08-06T19:03:51+00:00"),
        ("rekor2-timestamp-with-expired-cert-chain", "2025-08-07T15:32:26+00:00"),
        ("trust-root-tsa-validity-end-inclusive", "2025-06-12T12:02:20+00:00"),
        ("bundle-with-sct-with-extensions", "2026-01-15T22:49:26+00:00"),
        ("rekor2-dsse-happy-path", "2026-05-13T19:23:33+00:00"),
    ],
)
def test_conformance_timestamp_verifies(case: str, expected: str) -> None:
    ts, sig, root = _case(case)
    when = verify_rfc3161(ts, sig, root)
    assert when == datetime.fromisoformat(expected)
    assert when.tzinfo is not None
    assert when.utcoffset() == UTC.utcoffset(None)


def test_tsa_validity_end_inclusive_vector_is_at_the_boundary() -> None:
    # Guards the vector: genTime must equal the TSA's validFor.end exactly.
    ts, sig, root = _case("trust-root-tsa-validity-end-inclusive")
    (tsa,) = root.timestamp_authorities
    assert verify_rfc3161(ts, sig, root) == tsa.valid_for.end


def test_verify_timestamps_returns_times() -> None:
    ts, sig, root = _case("rekor2-happy-path")
    result = verify_timestamps([ts], sig, root)
    assert result.verified == [datetime(2025, 6, 12, 12, 2, 20, tzinfo=UTC)]
    assert result.rejected == []
    assert verify_timestamps([], sig, root).verified == []


# ------------------------------------------------------------ conformance: fail


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("rekor2-timestamp-outside-trust-root-tsa-validity_fail", "outside the validity"),
        ("rekor2-timestamp-outside-tsa-cert-validity_fail", "does not verify"),
        ("rekor2-timestamp-payload-mismatch_fail", "Mismatch between messages"),
        ("rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail", "not a valid RFC 3161"),
        ("rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail", "does not verify"),
    ],
)
def test_conformance_timestamp_rejected(case: str, reason: str) -> None:
    ts, sig, root = _case(case)
    with pytest.raises(TimestampError, match=reason):
        verify_rfc3161(ts, sig, root)
    result = verify_timestamps([ts], sig, root)
    assert result.verified == []
    assert len(result.rejected) == 1
    assert reason in result.rejected[0]


def test_timestamp_over_other_message_rejected() -> None:
    ts, sig, root = _case("rekor2-happy-path")
    with pytest.raises(TimestampError, match="Mismatch between messages"):
        verify_rfc3161(ts, sig + b"x", root)


def test_tsa_validity_end_one_second_early_rejected() -> None:
    ts, sig, _ = _case("trust-root-tsa-validity-end-inclusive")

    def edit(doc: dict[str, Any]) -> None:
        doc["timestampAuthorities"][0]["validFor"]["end"] = "2025-06-12T12:02:19Z"

    root = _edited(
        CONFORMANCE / "trust-root-tsa-validity-end-inclusive" / "trusted_root.json", edit
    )
    with pytest.raises(TimestampError, match="outside the validity"):
        verify_rfc3161(ts, sig, root)


def test_root_without_tsas_rejected() -> None:
    ts, sig, _ = _case("rekor2-happy-path")

    def edit(doc: dict[str, Any]) -> None:
        doc["timestampAuthorities"] = []

    root = _edited(CONFORMANCE / "rekor2-happy-path" / "trusted_root.json", edit)
    with pytest.raises(TimestampError, match="no timestamp authorities"):
        verify_rfc3161(ts, sig, root)


def test_tsa_from_other_root_rejected() -> None:
    # Production's TSA did not sign the staging-TSA token.
    ts, sig, _ = _case("rekor2-timestamp-without-embedded-cert")
    with pytest.raises(TimestampError, match="does not verify"):
        verify_rfc3161(ts, sig, TrustedRoot.from_path(PRODUCTION))


def test_garbage_rejected() -> None:
    _, sig, root = _case("rekor2-happy-path")
    for bad in (b"", b"\x30\x00", b"not a timestamp"):
        with pytest.raises(TimestampError, match="not a valid RFC 3161"):
            verify_rfc3161(bad, sig, root)
    # A well-formed refusal (status "rejection", no token) is not a timestamp either.
    with pytest.raises(TimestampError, match="not granted"):
        verify_rfc3161(bytes.fromhex("30053003020102"), sig, root)


def test_bare_timestamp_token_accepted() -> None:
    ts, sig, root = _case("rekor2-happy-path")
    token = decode_timestamp_response(ts).time_stamp_token()
    assert token != ts
    assert verify_rfc3161(token, sig, root) == verify_rfc3161(ts, sig, root)


# ------------------------------------------------------------ sigstore-python tsa


def test_many_timestamps_rejected() -> None:
    bundle = _load(PY_TSA / "bundle.many_timestamp.sigstore")
    timestamps = _timestamps(bundle)
    assert len(timestamps) == MAX_TIMESTAMPS + 1
    with pytest.raises(TimestampError, match="too many"):
        verify_timestamps(timestamps, _signature(bundle), TrustedRoot.from_path(STAGING))


def test_duplicate_timestamps_rejected() -> None:
    bundle = _load(PY_TSA / "bundle.duplicate.sigstore")
    timestamps = _timestamps(bundle)
    assert len(set(timestamps)) < len(timestamps) <= MAX_TIMESTAMPS
    with pytest.raises(TimestampError, match="duplicate"):
        verify_timestamps(timestamps, _signature(bundle), TrustedRoot.from_path(STAGING))


def test_issue1482_timestamp_without_cert_verifies_with_staging() -> None:
    ts = (PY_TSA / "issue1482-timestamp-with-no-cert").read_bytes()
    message = (PY_TSA / "issue1482-message").read_bytes()
    when = verify_rfc3161(ts, message, TrustedRoot.from_path(STAGING))
    assert when == datetime(2025, 7, 25, 19, 53, 4, tzinfo=UTC)
    with pytest.raises(TimestampError):
        verify_rfc3161(ts, message[:-1], TrustedRoot.from_path(STAGING))


def _local_tsa_root(end: str | None = None) -> TrustedRoot:
    # sigstore-python's TestVerifierWithTimestamp: staging with the test TSA swapped in.
    def edit(doc: dict[str, Any]) -> None:
        ca = _load(PY_TSA / "ca.json")
        if end is not None:
            ca["validFor"]["end"] = end
        doc["timestampAuthorities"] = [ca]

    return _edited(STAGING, edit)


def test_local_tsa_timestamp_verifies() -> None:
    bundle = _load(PY_TSA / "bundle.txt.sigstore")
    first = _timestamps(bundle)[0]
    when = verify_rfc3161(first, _signature(bundle), _local_tsa_root())
    assert when == datetime(2024, 10, 31, 10, 23, 39, tzinfo=UTC)


def test_local_tsa_timestamp_after_tsa_validity_rejected() -> None:
    bundle = _load(PY_TSA / "bundle.txt.sigstore")
    first = _timestamps(bundle)[0]
    with pytest.raises(TimestampError, match="outside the validity"):
        verify_rfc3161(first, _signature(bundle), _local_tsa_root(end="2024-10-31T10:20:00Z"))


def test_bad_timestamp_adds_no_time() -> None:
    # The asset's second token covers another message: like sigstore-python and
    # sigstore-go, it is not counted, and the first one still verifies.
    bundle = _load(PY_TSA / "bundle.txt.sigstore")
    timestamps = _timestamps(bundle)
    assert len(timestamps) == 2
    result = verify_timestamps(timestamps, _signature(bundle), _local_tsa_root())
    assert len(result.verified) == 1
    assert len(result.rejected) == 1
    assert result.rejected[0].startswith("timestamp 1:")
