"""Verification of one transparency-log entry, shared by every kind of evidence.

A sigstore bundle's ``tlogEntries[]``, a cosign ``dev.sigstore.cosign/bundle`` annotation
and an entry completed from Rekor at export time all become a
:class:`~dhi_offline.evidence.sigstore_bundle.TlogEntry` and are verified here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dhi_offline.errors import TransparencyLogError, ValidityWindowError
from dhi_offline.evidence.sigstore_bundle import TlogEntry
from dhi_offline.tlog.body import SignedContent, body_as_b64, verify_entry_body
from dhi_offline.tlog.checkpoint import (
    parse_checkpoint,
    verify_checkpoint,
    verify_checkpoint_matches,
)
from dhi_offline.tlog.merkle import leaf_hash, verify_inclusion
from dhi_offline.tlog.set import verify_signed_entry_timestamp
from dhi_offline.trust.timerange import format_rfc3339
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

    when: datetime | None = None
    if entry.signed_entry_timestamp is not None:
        verify_signed_entry_timestamp(
            body_b64=body_as_b64(entry.body),
            integrated_time=entry.integrated_time,
            log_index=entry.log_index,
            log_id=entry.log_id,
            signature=entry.signed_entry_timestamp,
            log=log,
        )
        when = datetime.fromtimestamp(entry.integrated_time, UTC)
        if not log.valid_for.contains(when):
            raise ValidityWindowError(
                f"entry {entry.log_index} was integrated at {format_rfc3339(when)}, "
                f"outside the validity of log {log.base_url}"
            )

    origin: str | None = None
    proof = entry.inclusion_proof
    if proof is not None:
        lh = leaf_hash(entry.body)
        if proof.checkpoint is not None:
            verify_inclusion(
                leaf_hash=lh,
                index=proof.log_index,
                tree_size=proof.tree_size,
                proof=proof.hashes,
                root=proof.root_hash,
            )
            checkpoint = parse_checkpoint(proof.checkpoint)
            verify_checkpoint(checkpoint, log)
            verify_checkpoint_matches(
                checkpoint, root_hash=proof.root_hash, tree_size=proof.tree_size
            )
            origin = checkpoint.origin
        else:
            # v0.1 bundles may carry a proof without a checkpoint: its root is not signed,
            # so it adds no trust, but it must still lead to the root it states.
            verify_inclusion(
                leaf_hash=lh,
                index=proof.log_index,
                tree_size=proof.tree_size,
                proof=proof.hashes,
                root=proof.root_hash,
            )
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
