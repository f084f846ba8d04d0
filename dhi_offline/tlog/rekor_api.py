"""The Rekor v1 REST API's answers, parsed and checked with no I/O.

``GET /api/v1/log/entries?logIndex=N`` returns ``{uuid: {body, integratedTime, logID,
logIndex, verification: {inclusionProof{logIndex, rootHash, treeSize, hashes,
checkpoint}, signedEntryTimestamp}}}``; ``GET /api/v1/log`` the tree head; ``GET
/api/v1/log/proof`` a consistency proof. Hashes are hex in the Rekor API (base64 in
sigstore bundles). The entry's ``logIndex`` is the global (virtual) index the SET signs;
``inclusionProof.logIndex`` is the leaf index inside the current shard's tree.

The exporter stores the exact response bytes (``raw``); the verifier re-reads them here
(:func:`parse_log_entry`, :func:`to_tlog_entry`), so both sides parse and check entries
with the same code. :mod:`dhi_offline.tlog.rekor_client` is the HTTP client.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from typing import Any

from dhi_offline.encoding import (
    b64decode,
    loads_json,
    require_dict,
    require_int,
    require_str,
)
from dhi_offline.errors import LogEntryBindingError, MalformedEvidenceError, TransparencyLogError
from dhi_offline.evidence.sigstore_bundle import InclusionProof, TlogEntry
from dhi_offline.tlog.checkpoint import (
    Checkpoint,
    parse_checkpoint,
    verify_checkpoint,
    verify_checkpoint_matches,
)
from dhi_offline.tlog.merkle import leaf_hash
from dhi_offline.tlog.proofs import verify_entry_proofs
from dhi_offline.trust.trusted_root import LogInstance


@dataclass(frozen=True)
class RekorInclusionProof:
    """``verification.inclusionProof`` of a Rekor v1 entry (hashes decoded from hex)."""

    log_index: int
    """Leaf index inside the tree of ``tree_size`` leaves (tree-local, not global)."""
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    """Sibling hashes from the leaf up to the root."""
    checkpoint: str | None
    """The signed note committing to ``root_hash`` and ``tree_size``."""


@dataclass(frozen=True)
class RekorEntry:
    """One Rekor v1 log entry as the API served it."""

    uuid: str
    """The key of the response object (``[tree id hex] || leaf hash hex``)."""
    body: bytes
    """The canonicalized entry body (the Merkle leaf), decoded from base64."""
    integrated_time: int
    log_id: bytes
    log_index: int
    """The global (virtual) log index: the one the SET signs and bundles carry."""
    signed_entry_timestamp: bytes | None
    inclusion_proof: RekorInclusionProof | None
    raw: bytes
    """The exact response bytes."""

    @property
    def body_b64(self) -> str:
        """The body in standard base64 (as the SET signs it)."""
        return base64.b64encode(self.body).decode()

    @property
    def leaf_hash(self) -> bytes:
        """RFC 6962 leaf hash of the body."""
        return leaf_hash(self.body)

    def kind_version(self) -> tuple[str, str]:
        """``(kind, apiVersion)`` read from the body.

        Raises:
            MalformedEvidenceError: the body is not a JSON entry with both fields.
        """
        doc = require_dict(loads_json(self.body, what="Rekor entry body"), what="Rekor entry body")
        return (
            require_str(doc.get("kind"), what="Rekor entry body kind"),
            require_str(doc.get("apiVersion"), what="Rekor entry body apiVersion"),
        )


@dataclass(frozen=True)
class ShardInfo:
    """A tree head of one (active or inactive) shard of the log."""

    root_hash: bytes
    tree_size: int
    signed_tree_head: str
    """The signed checkpoint note for ``root_hash`` and ``tree_size``."""
    tree_id: str


@dataclass(frozen=True)
class LogInfo:
    """``GET /api/v1/log``: the active shard's tree head, plus inactive shards."""

    root_hash: bytes
    tree_size: int
    signed_tree_head: str
    tree_id: str
    inactive_shards: tuple[ShardInfo, ...]
    raw: bytes
    """The exact response bytes."""


@dataclass(frozen=True)
class ConsistencyProof:
    """``GET /api/v1/log/proof``: the proof from ``first_size`` to ``last_size``."""

    first_size: int
    last_size: int
    tree_id: str | None
    root_hash: bytes
    """The root of the ``last_size`` tree as the log states it (unsigned by itself)."""
    hashes: tuple[bytes, ...]
    raw: bytes
    """The exact response bytes."""


# ---------------------------------------------------------------------------- parsing


def _hex_hash(value: object, *, what: str) -> bytes:
    text = require_str(value, what=what)
    if len(text) != 64:
        raise MalformedEvidenceError(f"{what}: expected 64 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError as e:
        raise MalformedEvidenceError(f"{what}: not hex") from e


def _hex_list(value: object, *, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise MalformedEvidenceError(f"{what}: expected a list")
    return tuple(_hex_hash(h, what=f"{what}[{i}]") for i, h in enumerate(value))


def _tree_id(value: object, *, what: str) -> str:
    # Rekor writes treeID as a decimal string; accept a JSON number too.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = require_str(value, what=what)
    if not (text.isascii() and text.isdigit()):
        raise MalformedEvidenceError(f"{what}: expected a decimal tree id")
    return text


def _inclusion_proof(obj: object) -> RekorInclusionProof:
    what = "Rekor inclusionProof"
    p = require_dict(obj, what=what)
    checkpoint = p.get("checkpoint")
    if checkpoint is not None:
        checkpoint = require_str(checkpoint, what=f"{what}.checkpoint") or None
    return RekorInclusionProof(
        log_index=require_int(p.get("logIndex"), what=f"{what}.logIndex"),
        root_hash=_hex_hash(p.get("rootHash"), what=f"{what}.rootHash"),
        tree_size=require_int(p.get("treeSize"), what=f"{what}.treeSize", minimum=1),
        hashes=_hex_list(p.get("hashes", []), what=f"{what}.hashes"),
        checkpoint=checkpoint,
    )


def parse_log_entry(raw: bytes) -> RekorEntry:
    """Parse a Rekor ``LogEntry`` response holding exactly one entry.

    Raises:
        MalformedEvidenceError: not JSON, not exactly one entry, or a field is missing or
            badly encoded.
    """
    doc = require_dict(loads_json(raw, what="Rekor log entry"), what="Rekor log entry")
    if len(doc) != 1:
        raise MalformedEvidenceError(f"Rekor log entry: expected one entry, got {len(doc)}")
    ((uuid, obj),) = doc.items()
    what = f"Rekor log entry {uuid[:24]}"
    e = require_dict(obj, what=what)
    body = b64decode(e.get("body"), what=f"{what}.body")
    if not body:
        raise MalformedEvidenceError(f"{what}: empty body")
    log_id_hex = require_str(e.get("logID"), what=f"{what}.logID")
    try:
        log_id = bytes.fromhex(log_id_hex)
    except ValueError as err:
        raise MalformedEvidenceError(f"{what}.logID: not hex") from err
    set_sig: bytes | None = None
    proof: RekorInclusionProof | None = None
    verification = e.get("verification")
    if verification is not None:
        v = require_dict(verification, what=f"{what}.verification")
        if v.get("signedEntryTimestamp") is not None:
            set_sig = (
                b64decode(v["signedEntryTimestamp"], what=f"{what}.signedEntryTimestamp") or None
            )
        if v.get("inclusionProof") is not None:
            proof = _inclusion_proof(v["inclusionProof"])
    return RekorEntry(
        uuid=uuid,
        body=body,
        integrated_time=require_int(e.get("integratedTime"), what=f"{what}.integratedTime"),
        log_id=log_id,
        log_index=require_int(e.get("logIndex"), what=f"{what}.logIndex"),
        signed_entry_timestamp=set_sig,
        inclusion_proof=proof,
        raw=raw,
    )


def _shard(obj: object, what: str) -> ShardInfo:
    d = require_dict(obj, what=what)
    return ShardInfo(
        root_hash=_hex_hash(d.get("rootHash"), what=f"{what}.rootHash"),
        tree_size=require_int(d.get("treeSize"), what=f"{what}.treeSize"),
        signed_tree_head=require_str(d.get("signedTreeHead"), what=f"{what}.signedTreeHead"),
        tree_id=_tree_id(d.get("treeID"), what=f"{what}.treeID"),
    )


def parse_log_info(raw: bytes) -> LogInfo:
    """Parse a ``GET /api/v1/log`` response.

    Raises:
        MalformedEvidenceError: not JSON or a field is missing or badly encoded.
    """
    what = "Rekor log info"
    doc = require_dict(loads_json(raw, what=what), what=what)
    head = _shard(doc, what)
    shards_obj = doc.get("inactiveShards") or []
    if not isinstance(shards_obj, list):
        raise MalformedEvidenceError(f"{what}.inactiveShards: expected a list")
    return LogInfo(
        root_hash=head.root_hash,
        tree_size=head.tree_size,
        signed_tree_head=head.signed_tree_head,
        tree_id=head.tree_id,
        inactive_shards=tuple(
            _shard(s, f"{what}.inactiveShards[{i}]") for i, s in enumerate(shards_obj)
        ),
        raw=raw,
    )


def parse_consistency_proof(
    raw: bytes, *, first_size: int, last_size: int, tree_id: str | None = None
) -> ConsistencyProof:
    """Parse a ``GET /api/v1/log/proof`` response (the sizes are the request's).

    Raises:
        MalformedEvidenceError: not JSON or a field is missing or badly encoded.
    """
    what = "Rekor consistency proof"
    doc = require_dict(loads_json(raw, what=what), what=what)
    return ConsistencyProof(
        first_size=first_size,
        last_size=last_size,
        tree_id=tree_id,
        root_hash=_hex_hash(doc.get("rootHash"), what=f"{what}.rootHash"),
        hashes=_hex_list(doc.get("hashes", []), what=f"{what}.hashes"),
        raw=raw,
    )


# ---------------------------------------------------------------------------- client


def verify_rekor_entry(
    entry: RekorEntry, log: LogInstance, *, expected_body: bytes | None
) -> Checkpoint:
    """Check an entry fetched from ``log`` completely, with no I/O.

    In order: the body is ``expected_body`` (when given: the body a bundle or cosign
    annotation already carries); the UUID names this body's leaf hash; the SET verifies
    with the log's key and the integrated time is inside the log's validity window; the
    RFC 6962 inclusion proof leads from the body's leaf hash to the proof's root; the
    checkpoint is signed by the log and commits to that root and tree size.

    Returns:
        The verified checkpoint.

    Raises:
        LogEntryBindingError: the entry's body is not ``expected_body``.
        TransparencyLogError: the UUID names another leaf.
        SignedEntryTimestampError: no SET, wrong log id, or a SET that does not verify.
        ValidityWindowError: integrated outside the log key's validity.
        InclusionProofError: no inclusion proof, or one that does not lead to its root.
        CheckpointError: no checkpoint, a bad signature, or another root or size.
    """
    where = f"Rekor entry {entry.log_index}"
    if expected_body is not None and not hmac.compare_digest(entry.body, expected_body):
        raise LogEntryBindingError(f"{where} has a different body than the evidence records")
    uuid_leaf = entry.uuid[-64:].lower()
    if len(entry.uuid) >= 64 and not hmac.compare_digest(uuid_leaf, entry.leaf_hash.hex()):
        raise TransparencyLogError(f"{where}: its UUID does not name its body's leaf hash")
    proofs = verify_entry_proofs(
        to_tlog_entry(entry), log, require_set=True, require_checkpoint=True
    )
    if proofs.checkpoint is None:  # required above; checked again rather than assumed
        raise TransparencyLogError(f"{where}: no checkpoint to link")
    return proofs.checkpoint


def parse_rekor_entry(raw: bytes) -> TlogEntry:
    """A stored Rekor ``{uuid: LogEntry}`` response (exactly one entry) as the same
    :class:`~dhi_offline.evidence.sigstore_bundle.TlogEntry` a sigstore bundle yields, so
    one code path verifies both.

    Raises:
        MalformedEvidenceError: not the documented shape.
    """
    return to_tlog_entry(parse_log_entry(raw))


def to_tlog_entry(entry: RekorEntry) -> TlogEntry:
    """The entry in the form every verifier path takes (as a sigstore bundle carries it).

    Raises:
        MalformedEvidenceError: the body does not name its kind and version.
    """
    kind, version = entry.kind_version()
    proof = entry.inclusion_proof
    return TlogEntry(
        log_index=entry.log_index,
        log_id=entry.log_id,
        kind=kind,
        version=version,
        integrated_time=entry.integrated_time,
        body=entry.body,
        signed_entry_timestamp=entry.signed_entry_timestamp,
        inclusion_proof=None
        if proof is None
        else InclusionProof(
            log_index=proof.log_index,
            root_hash=proof.root_hash,
            tree_size=proof.tree_size,
            hashes=proof.hashes,
            checkpoint=proof.checkpoint,
        ),
    )


def verify_log_info(info: LogInfo | ShardInfo, log: LogInstance) -> Checkpoint:
    """Check that a tree head's ``signedTreeHead`` is signed by ``log`` and matches it.

    Raises:
        CheckpointError: malformed, unsigned by the log, or for another root or size.
    """
    checkpoint = parse_checkpoint(info.signed_tree_head)
    verify_checkpoint(checkpoint, log)
    verify_checkpoint_matches(checkpoint, root_hash=info.root_hash, tree_size=info.tree_size)
    return checkpoint


def entry_to_bundle_tlog_entry(
    entry: RekorEntry, kind: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """The entry as a sigstore bundle ``verificationMaterial.tlogEntries[]`` member.

    protobuf JSON mapping: bytes as standard base64 (hex hashes and log id converted),
    int64 values as decimal strings. ``inclusionPromise`` is written when the entry has a
    SET, ``inclusionProof`` (with ``checkpoint.envelope``) when it has a proof. ``kind``
    and ``version`` default to the body's own ``kind`` and ``apiVersion``.

    Raises:
        MalformedEvidenceError: kind/version not given and the body does not name them.
    """
    if kind is None or version is None:
        body_kind, body_version = entry.kind_version()
        kind = kind or body_kind
        version = version or body_version

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    out: dict[str, Any] = {
        "logIndex": str(entry.log_index),
        "logId": {"keyId": b64(entry.log_id)},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": str(entry.integrated_time),
    }
    if entry.signed_entry_timestamp is not None:
        out["inclusionPromise"] = {"signedEntryTimestamp": b64(entry.signed_entry_timestamp)}
    proof = entry.inclusion_proof
    if proof is not None:
        p: dict[str, Any] = {
            "logIndex": str(proof.log_index),
            "rootHash": b64(proof.root_hash),
            "treeSize": str(proof.tree_size),
            "hashes": [b64(h) for h in proof.hashes],
        }
        if proof.checkpoint is not None:
            p["checkpoint"] = {"envelope": proof.checkpoint}
        out["inclusionProof"] = p
    out["canonicalizedBody"] = b64(entry.body)
    return out


def rekor_entry_uuid(body: bytes, tree_id: int | None = None) -> str:
    """The UUID Rekor gives an entry: the leaf hash hex, prefixed by the 16-hex tree id."""
    lh = leaf_hash(body).hex()
    return lh if tree_id is None else f"{tree_id:016x}{lh}"
