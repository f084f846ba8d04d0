"""Rekor v1 API log entries (``GET /api/v1/log/entries?logIndex=N``) as verifiable entries.

The exporter stores the exact response bytes; the verifier parses them here into the
same :class:`~dhi_offline.evidence.sigstore_bundle.TlogEntry` a sigstore bundle yields,
so one code path verifies both.
"""

from __future__ import annotations

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence.encoding import (
    b64decode,
    loads_json,
    require_dict,
    require_int,
    require_str,
)
from dhi_offline.evidence.sigstore_bundle import InclusionProof, TlogEntry


def _hex(value: object, *, what: str, length: int | None = 32) -> bytes:
    text = require_str(value, what=what)
    try:
        out = bytes.fromhex(text)
    except ValueError as e:
        raise MalformedEvidenceError(f"{what}: not hex") from e
    if length is not None and len(out) != length:
        raise MalformedEvidenceError(f"{what}: expected {length} bytes")
    return out


def parse_rekor_entry(raw: bytes) -> TlogEntry:
    """Parse a Rekor ``{uuid: LogEntry}`` response holding exactly one entry.

    Raises:
        MalformedEvidenceError: not the documented shape.
    """
    what = "Rekor log entry"
    doc = require_dict(loads_json(raw, what=what), what=what)
    if len(doc) != 1:
        raise MalformedEvidenceError(f"{what}: expected exactly one entry, got {len(doc)}")
    entry = require_dict(next(iter(doc.values())), what=what)
    body = b64decode(entry.get("body"), what=f"{what}.body")
    body_doc = require_dict(loads_json(body, what=f"{what} body"), what=f"{what} body")
    verification = require_dict(entry.get("verification"), what=f"{what}.verification")
    set_sig = b64decode(
        verification.get("signedEntryTimestamp"), what=f"{what}.signedEntryTimestamp"
    )
    proof: InclusionProof | None = None
    if "inclusionProof" in verification:
        p = require_dict(verification["inclusionProof"], what=f"{what}.inclusionProof")
        hashes = p.get("hashes", [])
        if not isinstance(hashes, list):
            raise MalformedEvidenceError(f"{what}.inclusionProof.hashes: expected a list")
        checkpoint = p.get("checkpoint")
        proof = InclusionProof(
            log_index=require_int(p.get("logIndex"), what=f"{what}.inclusionProof.logIndex"),
            root_hash=_hex(p.get("rootHash"), what=f"{what}.inclusionProof.rootHash"),
            tree_size=require_int(p.get("treeSize"), what=f"{what}.treeSize", minimum=1),
            hashes=tuple(
                _hex(h, what=f"{what}.inclusionProof.hashes[{i}]") for i, h in enumerate(hashes)
            ),
            checkpoint=require_str(checkpoint, what=f"{what}.checkpoint") if checkpoint else None,
        )
    return TlogEntry(
        log_index=require_int(entry.get("logIndex"), what=f"{what}.logIndex"),
        log_id=_hex(entry.get("logID"), what=f"{what}.logID"),
        kind=require_str(body_doc.get("kind"), what=f"{what} body kind"),
        version=require_str(body_doc.get("apiVersion"), what=f"{what} body apiVersion"),
        integrated_time=require_int(entry.get("integratedTime"), what=f"{what}.integratedTime"),
        body=body,
        signed_entry_timestamp=set_sig or None,
        inclusion_proof=proof,
    )
