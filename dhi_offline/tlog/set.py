"""Rekor v1 signed entry timestamps (SET, the bundle's ``inclusionPromise``).

Rekor signs the RFC 8785 (JCS) canonical JSON of
``{"body", "integratedTime", "logID", "logIndex"}`` with the log key when it accepts
an entry (rekor ``pkg/api/entries.go`` ``signEntry``; verified by cosign ``VerifySET``
and sigstore-python). ``logIndex`` here is the entry's global (virtual) index, not the
tree-local index of the inclusion proof. Rekor v2 issues no SETs.
"""

from __future__ import annotations

import re

import rfc8785

from dhi_offline.errors import SignatureError, SignedEntryTimestampError
from dhi_offline.trust.trusted_root import LogInstance

# RFC 8785 serializes these characters as themselves, and integers in this range as
# plain decimals (beyond it, rfc8785 refuses the value).
_JCS_PLAIN_TEXT = re.compile(r"[A-Za-z0-9+/=]*")
_JCS_INT_MIN, _JCS_INT_MAX = -(2**53) + 1, 2**53 - 1


def canonical_set_payload(
    *, body_b64: str, integrated_time: int, log_index: int, log_id: bytes
) -> bytes:
    """The exact bytes a Rekor SET signs.

    Args:
        body_b64: the entry body as standard base64 (the bundle's canonicalized body,
            base64-encoded).
        integrated_time: Unix seconds the log integrated the entry.
        log_index: the entry's global log index.
        log_id: the log id (SHA-256 of the log's DER public key), raw bytes.

    Raises:
        SignedEntryTimestampError: a value cannot be canonicalized (for example an
            integer beyond the JSON-safe range).
    """
    for what, value in (("integratedTime", integrated_time), ("logIndex", log_index)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SignedEntryTimestampError(f"SET {what} must be an integer")
    if (
        _JCS_PLAIN_TEXT.fullmatch(body_b64)
        and _JCS_INT_MIN <= integrated_time <= _JCS_INT_MAX
        and _JCS_INT_MIN <= log_index <= _JCS_INT_MAX
    ):
        # What rfc8785 writes for these values, without its general serializer (less
        # than half the time): keys in JCS order, strings that need no escaping, integers
        # in the range JCS prints exactly. Anything else goes through rfc8785 below.
        return (
            f'{{"body":"{body_b64}","integratedTime":{int(integrated_time)},'
            f'"logID":"{log_id.hex()}","logIndex":{int(log_index)}}}'
        ).encode("ascii")
    try:
        return rfc8785.dumps(
            {
                "body": body_b64,
                "integratedTime": integrated_time,
                "logID": log_id.hex(),
                "logIndex": log_index,
            }
        )
    except rfc8785.CanonicalizationError as e:
        raise SignedEntryTimestampError(f"cannot canonicalize the SET payload: {e}") from e


def verify_signed_entry_timestamp(
    *,
    body_b64: str,
    integrated_time: int,
    log_index: int,
    log_id: bytes,
    signature: bytes,
    log: LogInstance,
) -> None:
    """Verify a SET with the key of ``log``.

    ``log_id`` must be the id of ``log`` itself (a SET naming one log cannot be vouched
    for by another). The signature is checked with ``log.key`` as its type requires
    (ECDSA P-256: DER signature over SHA-256 of the canonical bytes). The log's
    validity window is the caller's to check against ``integrated_time``.

    Raises:
        SignedEntryTimestampError: the log has no usable key, ``log_id`` is not this
            log's, or the signature does not verify.
    """
    if log.key is None:
        raise SignedEntryTimestampError(
            f"transparency log {log.base_url or log.log_id.hex()} has a key type this "
            "tool cannot use"
        )
    if log_id not in (log.log_id, log.checkpoint_key_id):
        raise SignedEntryTimestampError(
            f"SET names log {log_id.hex()} but was checked against log {log.log_id.hex()}"
        )
    payload = canonical_set_payload(
        body_b64=body_b64, integrated_time=integrated_time, log_index=log_index, log_id=log_id
    )
    try:
        log.key.verify(signature, payload)
    except SignatureError as e:
        raise SignedEntryTimestampError(
            f"signed entry timestamp for log index {log_index} does not verify with the "
            f"key of log {log.base_url or log.log_id.hex()}"
        ) from e
