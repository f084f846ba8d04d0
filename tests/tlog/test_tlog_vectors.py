"""Real Rekor v1 / v2 evidence from the sigstore-conformance bundle-verify suite."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from dhi_offline.errors import (
    CheckpointError,
    InclusionProofError,
    SignedEntryTimestampError,
    TransparencyLogError,
    TrustMaterialError,
)
from dhi_offline.tlog.checkpoint import (
    parse_checkpoint,
    verify_checkpoint,
    verify_checkpoint_matches,
)
from dhi_offline.tlog.merkle import leaf_hash, root_from_inclusion_proof, verify_inclusion
from dhi_offline.tlog.set import verify_signed_entry_timestamp
from dhi_offline.trust.trusted_root import LogInstance, TrustedRoot

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "vectors" / "sigstore-conformance" / "test" / "assets" / "bundle-verify"
PRODUCTION = REPO / "dhi_offline" / "data" / "trusted_root" / "production.json"


@dataclass(frozen=True)
class Entry:
    case: str
    log: LogInstance
    body: bytes
    log_index: int
    log_id: bytes
    integrated_time: int
    set_signature: bytes | None
    proof_index: int | None
    tree_size: int | None
    root_hash: bytes | None
    hashes: list[bytes]
    envelope: str | None


def _load(case: str) -> Entry | None:
    """The case's first tlog entry and its log, or None when either is unusable."""
    d = CASES / case
    try:
        bundle = json.loads((d / "bundle.sigstore.json").read_text())
    except ValueError:
        return None
    own_root = d / "trusted_root.json"
    try:
        root = TrustedRoot.from_path(own_root if own_root.exists() else PRODUCTION)
    except TrustMaterialError:
        return None
    entries = bundle.get("verificationMaterial", {}).get("tlogEntries", [])
    if not entries:
        return None
    e = entries[0]
    log_id = base64.b64decode(e["logId"]["keyId"])
    logs = root.tlog_by_id(log_id)
    if not logs:
        return None
    proof = e.get("inclusionProof") or {}
    promise = e.get("inclusionPromise") or {}
    b64 = base64.b64decode
    return Entry(
        case=case,
        log=logs[0],
        body=b64(e["canonicalizedBody"]),
        log_index=int(e["logIndex"]),  # int64 values are JSON strings
        log_id=log_id,
        integrated_time=int(e.get("integratedTime", "0")),
        set_signature=b64(promise["signedEntryTimestamp"]) if promise else None,
        proof_index=int(proof["logIndex"]) if proof else None,
        tree_size=int(proof["treeSize"]) if proof else None,
        root_hash=b64(proof["rootHash"]) if proof else None,
        hashes=[b64(h) for h in proof.get("hashes", [])],
        envelope=(proof.get("checkpoint") or {}).get("envelope"),
    )


def _verify_log_proof(entry: Entry) -> None:
    """Inclusion proof, checkpoint signature and checkpoint/proof agreement."""
    assert entry.proof_index is not None
    assert entry.tree_size is not None
    assert entry.root_hash is not None
    assert entry.envelope is not None
    verify_inclusion(
        leaf_hash=leaf_hash(entry.body),
        index=entry.proof_index,
        tree_size=entry.tree_size,
        proof=entry.hashes,
        root=entry.root_hash,
    )
    checkpoint = parse_checkpoint(entry.envelope)
    verify_checkpoint(checkpoint, entry.log)
    verify_checkpoint_matches(checkpoint, root_hash=entry.root_hash, tree_size=entry.tree_size)


def _verify_set(entry: Entry) -> None:
    assert entry.set_signature is not None
    verify_signed_entry_timestamp(
        body_b64=base64.b64encode(entry.body).decode(),
        integrated_time=entry.integrated_time,
        log_index=entry.log_index,
        log_id=entry.log_id,
        signature=entry.set_signature,
        log=entry.log,
    )


HAPPY = [
    "happy-path-v0.1",
    "happy-path-v0.2",
    "happy-path-v0.3",
    "happy-path-v0.3-new-mediaType",
    "happy-path-intoto-in-dsse-v3",
    "rekor2-happy-path",
    "rekor2-dsse-happy-path",
    "rekor2-checkpoint-cosigned",
    "rekor2-checkpoint-multiple-cosigs",
    "rekor2-checkpoint-origin-not-first",
    "rekor2-checkpoint-two-sigs-cosigned",
    "rekor2-checkpoint-two-sigs-from-origin",
    "bundle-with-sct-with-extensions",  # Rekor v2 style log on a custom root
    "intoto-with-custom-trust-root",  # Rekor v1 on localhost:8000
    "managed-key-happy-path",
]

FAILING: dict[str, type[TransparencyLogError]] = {
    "checkpoint-bad-keyhint_fail": CheckpointError,
    "invalid-checkpoint-signature_fail": CheckpointError,
    "checkpoint-wrong-roothash_fail": CheckpointError,
    "inclusion-proof-corrupted-hash_fail": InclusionProofError,
    "rekor2-checkpoint-missing-log-signature_fail": CheckpointError,
    "rekor2-checkpoint-missing-origin_fail": CheckpointError,
    "rekor2-checkpoint-missing-root-hash_fail": CheckpointError,
    "rekor2-checkpoint-missing-size_fail": CheckpointError,
    "rekor2-checkpoint-no-matching-signature_fail": CheckpointError,
}


@pytest.mark.parametrize("case", HAPPY)
def test_happy_log_proofs_verify(case: str) -> None:
    entry = _load(case)
    assert entry is not None, f"{case}: no usable tlog entry"
    _verify_log_proof(entry)
    # The leaf really is the one the proof covers: a different body is refused.
    with pytest.raises(InclusionProofError):
        verify_inclusion(
            leaf_hash=leaf_hash(entry.body + b" "),
            index=entry.proof_index or 0,
            tree_size=entry.tree_size or 0,
            proof=entry.hashes,
            root=entry.root_hash or b"",
        )


@pytest.mark.parametrize(("case", "error"), FAILING.items())
def test_failing_log_proofs_are_refused(case: str, error: type[TransparencyLogError]) -> None:
    entry = _load(case)
    assert entry is not None, f"{case}: no usable tlog entry"
    with pytest.raises(error):
        _verify_log_proof(entry)


def test_every_conformance_log_proof_behaves() -> None:
    """Sweep: all other cases' inclusion proofs verify, except where a body was altered."""
    seen = 0
    for d in sorted(p for p in CASES.iterdir() if p.is_dir()):
        entry = _load(d.name)
        if entry is None or entry.envelope is None or d.name in FAILING:
            continue
        seen += 1
        # Inclusion proofs are real Rekor data, so the root from the proof must always
        # match the bundle's stated root unless the case altered the entry body.
        assert entry.proof_index is not None and entry.tree_size is not None
        computed = root_from_inclusion_proof(
            leaf_hash=leaf_hash(entry.body),
            index=entry.proof_index,
            tree_size=entry.tree_size,
            proof=entry.hashes,
        )
        if computed != entry.root_hash:
            assert d.name.endswith("_fail"), d.name
            continue
        checkpoint = parse_checkpoint(entry.envelope)
        verify_checkpoint(checkpoint, entry.log)
        assert entry.root_hash is not None
        verify_checkpoint_matches(checkpoint, root_hash=entry.root_hash, tree_size=entry.tree_size)
    assert seen > 40


def test_checkpoint_wrong_roothash_is_self_consistent() -> None:
    # The refusal must come from the tree-head comparison, not the signature.
    entry = _load("checkpoint-wrong-roothash_fail")
    assert entry is not None and entry.envelope is not None
    checkpoint = parse_checkpoint(entry.envelope)
    verify_checkpoint(checkpoint, entry.log)
    with pytest.raises(CheckpointError, match=r"tree size|root hash"):
        verify_checkpoint_matches(
            checkpoint, root_hash=entry.root_hash or b"", tree_size=entry.tree_size or 0
        )
    # ... and its root hash alone also differs.
    with pytest.raises(CheckpointError, match="root hash"):
        verify_checkpoint_matches(
            checkpoint, root_hash=entry.root_hash or b"", tree_size=checkpoint.tree_size
        )


def test_checkpoint_bad_keyhint_only_differs_in_hint() -> None:
    good = _load("happy-path-v0.1")
    bad = _load("checkpoint-bad-keyhint_fail")
    assert good is not None and bad is not None
    assert good.envelope is not None and bad.envelope is not None
    g, b = parse_checkpoint(good.envelope), parse_checkpoint(bad.envelope)
    assert g.signed_text == b.signed_text
    assert g.signatures[0].signature == b.signatures[0].signature
    assert g.signatures[0].hint != b.signatures[0].hint
    with pytest.raises(CheckpointError, match="no signature from log"):
        verify_checkpoint(b, bad.log)


def test_rekor2_log_ids_are_c2sp_key_ids() -> None:
    entry = _load("rekor2-happy-path")
    assert entry is not None and entry.envelope is not None
    checkpoint = parse_checkpoint(entry.envelope)
    assert checkpoint.origin == "log2025-alpha1.rekor.sigstage.dev"
    assert entry.log.origin_host == checkpoint.origin
    assert [s.name for s in checkpoint.signatures] == [checkpoint.origin]
    assert checkpoint.signatures[0].hint == entry.log.log_id[:4]


def test_happy_path_set_verifies() -> None:
    entry = _load("happy-path-v0.1")
    assert entry is not None
    assert entry.log.base_url == "https://rekor.sigstore.dev"
    assert entry.log_index != entry.proof_index  # global index vs tree-local index
    _verify_set(entry)
    # The tree-local index is not what Rekor signed.
    with pytest.raises(SignedEntryTimestampError):
        verify_signed_entry_timestamp(
            body_b64=base64.b64encode(entry.body).decode(),
            integrated_time=entry.integrated_time,
            log_index=entry.proof_index or 0,
            log_id=entry.log_id,
            signature=entry.set_signature or b"",
            log=entry.log,
        )


@pytest.mark.parametrize(
    "case",
    [
        "happy-path-v0.2",
        "happy-path-v0.3",
        "happy-path-intoto-in-dsse-v3",
        "managed-key-happy-path",
    ],
)
def test_other_happy_sets_verify(case: str) -> None:
    entry = _load(case)
    assert entry is not None
    _verify_set(entry)


def test_set_invalid_signature_fails() -> None:
    entry = _load("set-invalid-signature_fail")
    assert entry is not None
    with pytest.raises(SignedEntryTimestampError):
        _verify_set(entry)
    # Only the SET is broken: the log proof itself is fine.
    _verify_log_proof(entry)
