"""Consistency records: a log's older checkpoint, a newer one, and the proof linking them.

The exporter writes one per log when it has exported before (``tlog/<log>/consistency/
<old>-<new>.json``); the importer verifies it against the checkpoints it saw before, so
a log that shows the air-gapped host two incompatible histories is caught.

Record JSON: ``{"oldCheckpoint": note, "newCheckpoint": note, "hashes": [hex...]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dhi_offline.encoding import loads_json, require_dict, require_str
from dhi_offline.errors import ConsistencyProofError, MalformedEvidenceError
from dhi_offline.tlog.checkpoint import Checkpoint, parse_checkpoint, verify_checkpoint
from dhi_offline.tlog.merkle import verify_consistency
from dhi_offline.trust.trusted_root import LogInstance


@dataclass(frozen=True)
class ConsistencyRecord:
    """Two checkpoint notes of one log and the RFC 6962 proof between their trees."""

    old_checkpoint: str
    new_checkpoint: str
    hashes: tuple[bytes, ...]

    def to_json_bytes(self) -> bytes:
        """Deterministic JSON."""
        doc = {
            "hashes": [h.hex() for h in self.hashes],
            "newCheckpoint": self.new_checkpoint,
            "oldCheckpoint": self.old_checkpoint,
        }
        return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"

    @classmethod
    def from_json_bytes(cls, data: bytes) -> ConsistencyRecord:
        """Parse a record.

        Raises:
            MalformedEvidenceError: not the documented shape.
        """
        doc = require_dict(loads_json(data, what="consistency record"), what="consistency record")
        hashes = doc.get("hashes")
        if not isinstance(hashes, list):
            raise MalformedEvidenceError("consistency record: hashes must be a list")
        try:
            parsed = tuple(bytes.fromhex(require_str(h, what="hash")) for h in hashes)
        except ValueError as e:
            raise MalformedEvidenceError("consistency record: a hash is not hex") from e
        return cls(
            old_checkpoint=require_str(doc.get("oldCheckpoint"), what="oldCheckpoint"),
            new_checkpoint=require_str(doc.get("newCheckpoint"), what="newCheckpoint"),
            hashes=parsed,
        )


def verify_consistency_record(
    record: ConsistencyRecord, log: LogInstance
) -> tuple[Checkpoint, Checkpoint]:
    """Both checkpoints signed by ``log``, and the proof linking the older tree to the newer.

    Raises:
        CheckpointError: a checkpoint is malformed or not signed by the log.
        ConsistencyProofError: the proof does not link them (the log forked).
    """
    old = parse_checkpoint(record.old_checkpoint)
    new = parse_checkpoint(record.new_checkpoint)
    verify_checkpoint(old, log)
    verify_checkpoint(new, log)
    if old.origin != new.origin:
        raise ConsistencyProofError(
            f"checkpoints of different logs ({old.origin!r}, {new.origin!r})"
        )
    verify_consistency(
        old_size=old.tree_size,
        new_size=new.tree_size,
        proof=record.hashes,
        old_root=old.root_hash,
        new_root=new.root_hash,
    )
    return old, new
