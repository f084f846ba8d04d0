"""Verification of one transparency-log entry, shared by every kind of evidence.

A sigstore bundle's ``tlogEntries[]``, a cosign ``dev.sigstore.cosign/bundle`` annotation
and an entry completed from Rekor at export time all become a
:class:`~dhi_offline.evidence.sigstore_bundle.TlogEntry` and are verified here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dhi_offline.errors import TransparencyLogError
from dhi_offline.evidence.sigstore_bundle import TlogEntry
from dhi_offline.tlog.body import SignedContent, verify_entry_body
from dhi_offline.tlog.proofs import verify_entry_proofs
from dhi_offline.trust.trusted_root import LogInstance, TrustedRoot


@dataclass(frozen=True)
class VerifiedLogEntry:
    """A log entry that verified, and how."""

    log_url: str
    log_index: int
    integrated_time: int | None
    """Set only when a verified SET vouches for it."""
    inclusion_proof: bool
    checkpoint_origin: str | None


def find_log(entry: TlogEntry, trusted_root: TrustedRoot) -> LogInstance:
    logs = [t for t in trusted_root.tlog_by_id(entry.log_id) if t.key is not None]
    if not logs:
        raise TransparencyLogError(
            f"entry {entry.log_index} is from log {entry.log_id.hex()[:16]}…, "
            "which the trusted root does not know"
        )
    return logs[0]


def verify_log_entry(
    entry: TlogEntry, content: SignedContent, trusted_root: TrustedRoot
) -> tuple[VerifiedLogEntry, datetime | None]:
    """Verify one log entry against what was signed.

    Checks: the log is trusted; the body is bound to ``content``; the SET (if present) by
    the log's key with the integrated time inside the log key's window; the inclusion
    proof (if present) to its root and, with a checkpoint, the checkpoint signed by the
    log and equal to the proof's root and size. An entry with neither a SET nor a signed
    checkpoint is refused.

    Returns:
        The verified entry, and its integrated time when a SET vouches for it.
    """
    log = find_log(entry, trusted_root)
    verify_entry_body(kind=entry.kind, version=entry.version, body=entry.body, content=content)

    proofs = verify_entry_proofs(entry, log)
    when = proofs.integrated_at
    origin = proofs.checkpoint.origin if proofs.checkpoint else None
    if when is None and origin is None:
        raise TransparencyLogError(
            f"entry {entry.log_index} has neither a signed entry timestamp nor a signed checkpoint"
        )
    return (
        VerifiedLogEntry(
            log_url=log.base_url,
            log_index=entry.log_index,
            integrated_time=entry.integrated_time if when is not None else None,
            inclusion_proof=origin is not None,
            checkpoint_origin=origin,
        ),
        when,
    )
