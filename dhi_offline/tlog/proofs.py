"""What a transparency log says about one entry: its SET, inclusion proof and checkpoint.

Shared by the verifier (sigstore bundles, cosign annotations, completed entries) and the
exporter (entries fetched from Rekor), so both check a log entry the same way. The
binding of the entry's body to what was signed is checked separately
(:mod:`dhi_offline.tlog.body`), before this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import (
    CheckpointError,
    InclusionProofError,
    SignedEntryTimestampError,
    ValidityWindowError,
)
from dhi_offline.evidence.sigstore_bundle import TlogEntry
from dhi_offline.tlog.body import body_as_b64
from dhi_offline.tlog.checkpoint import (
    Checkpoint,
    parse_checkpoint,
    verify_checkpoint,
    verify_checkpoint_matches,
)
from dhi_offline.tlog.merkle import leaf_hash, verify_inclusion
from dhi_offline.tlog.set import verify_signed_entry_timestamp
from dhi_offline.trust.trusted_root import LogInstance


@dataclass(frozen=True)
class EntryProofs:
    """What verified: the integrated time a SET vouches for, and the signed checkpoint."""

    integrated_at: datetime | None
    checkpoint: Checkpoint | None


def verify_entry_proofs(
    entry: TlogEntry,
    log: LogInstance,
    *,
    require_set: bool = False,
    require_checkpoint: bool = False,
) -> EntryProofs:
    """Check the SET and inclusion proof an entry carries against ``log``.

    - SET: by the log's key over the RFC 8785 entry, with the integrated time inside the
      log key's validity window;
    - inclusion proof: from the body's leaf hash to the stated root; with a checkpoint,
      the checkpoint signed by the log and equal to that root and tree size. A proof
      without a checkpoint (v0.1 bundles) adds no trust but must still be a proof.

    Raises:
        SignedEntryTimestampError, ValidityWindowError, InclusionProofError,
        CheckpointError: the named part is wrong, or missing when required.
    """
    where = f"entry {entry.log_index}"
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
                f"{where} was integrated at {format_rfc3339(when)}, "
                f"outside the validity of log {log.base_url or log.log_id.hex()}"
            )
    elif require_set:
        raise SignedEntryTimestampError(f"{where} carries no signed entry timestamp")

    checkpoint: Checkpoint | None = None
    proof = entry.inclusion_proof
    if proof is None:
        if require_checkpoint:
            raise InclusionProofError(f"{where} carries no inclusion proof")
        return EntryProofs(when, None)
    verify_inclusion(
        leaf_hash=leaf_hash(entry.body),
        index=proof.log_index,
        tree_size=proof.tree_size,
        proof=proof.hashes,
        root=proof.root_hash,
    )
    if proof.checkpoint is not None:
        checkpoint = parse_checkpoint(proof.checkpoint)
        verify_checkpoint(checkpoint, log)
        verify_checkpoint_matches(checkpoint, root_hash=proof.root_hash, tree_size=proof.tree_size)
    elif require_checkpoint:
        raise CheckpointError(f"{where}: its inclusion proof carries no checkpoint")
    return EntryProofs(when, checkpoint)
