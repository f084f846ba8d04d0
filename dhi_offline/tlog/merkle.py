"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Rekor v1 and v2 both build their logs as RFC 6962 trees over SHA-256: a leaf hashes
as ``SHA-256(0x00 || entry)`` and an interior node as ``SHA-256(0x01 || left || right)``.
The proof checks follow the decomposition used by transparency-dev/merkle (the Go
library Rekor and sigstore-go verify with): a proof for leaf ``index`` in a tree of
``size`` leaves is an "inner" part, whose sibling sides are read from the bits of
``index``, followed by a "border" part of left siblings up the right edge of the tree.
Sizes are limited to unsigned 64-bit values, as every log writes them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from dhi_offline.errors import ConsistencyProofError, InclusionProofError

HASH_SIZE = 32
"""Length in bytes of every node hash (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""RFC 6962 root of the empty tree: the hash of the empty string."""

_MAX_SIZE = 2**64 - 1
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof for ``index`` in a tree of ``size`` into (inner, border).

    ``inner`` is the height below the point where the paths to ``index`` and to the
    last leaf ``size - 1`` meet; above it the path runs along the right border of the
    tree, where every sibling is a left sibling, one per set bit of ``index >> inner``.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Bit i of index says whether the node at level i is a right child (sibling left).
    for i, sibling in enumerate(proof):
        seed = node_hash(sibling, seed) if (index >> i) & 1 else node_hash(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Recomputes the *old* root in a consistency proof: only left siblings belong to it.
    for i, sibling in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _check_hashes(
    hashes: Sequence[bytes], what: str, error: type[InclusionProofError | ConsistencyProofError]
) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise error(f"{what}[{i}] is not a {HASH_SIZE}-byte SHA-256 hash")


def root_from_inclusion_proof(
    *, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """Compute the root an inclusion proof leads to (RFC 9162 section 2.1.3.2).

    Args:
        leaf_hash: the RFC 6962 leaf hash of the entry (see :func:`leaf_hash`).
        index: zero-based position of the leaf in the tree (for Rekor v1, the
            tree-local ``inclusionProof.logIndex``, not the entry's global index).
        tree_size: number of leaves in the tree the proof is for.
        proof: sibling hashes, ordered from the leaf up to the root.

    Raises:
        InclusionProofError: the index is not inside the tree, a hash is not 32 bytes,
            or the proof has the wrong number of hashes for this index and size.
    """
    if tree_size < 1 or tree_size > _MAX_SIZE:
        raise InclusionProofError(f"tree size {tree_size} is not a valid non-empty tree size")
    if index < 0 or index >= tree_size:
        raise InclusionProofError(f"leaf index {index} is outside a tree of size {tree_size}")
    if not isinstance(leaf_hash, bytes | bytearray) or len(leaf_hash) != HASH_SIZE:
        raise InclusionProofError(f"leaf hash is not a {HASH_SIZE}-byte SHA-256 hash")
    _check_hashes(proof, "proof hash", InclusionProofError)
    inner, border = _decompose(index, tree_size)
    if len(proof) != inner + border:
        raise InclusionProofError(
            f"inclusion proof for leaf {index} of tree size {tree_size} must have "
            f"{inner + border} hashes, got {len(proof)}"
        )
    root = _chain_inner(bytes(leaf_hash), proof[:inner], index)
    return _chain_border_right(root, proof[inner:])


def verify_inclusion(
    *, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows the leaf at ``index`` is in the tree with ``root``.

    Note that an inclusion proof alone does not bind the tree size: callers must also
    check that a signed checkpoint commits to this exact size and root.

    Raises:
        InclusionProofError: the proof is malformed (see
            :func:`root_from_inclusion_proof`) or leads to a different root.
    """
    computed = root_from_inclusion_proof(
        leaf_hash=leaf_hash, index=index, tree_size=tree_size, proof=proof
    )
    if not _same(computed, bytes(root)):
        raise InclusionProofError(
            f"inclusion proof for leaf {index} of tree size {tree_size} leads to root "
            f"{computed.hex()}, not the expected root {bytes(root).hex()}"
        )


def verify_consistency(
    *, old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree of ``new_size`` leaves extends the tree of ``old_size`` leaves.

    Semantics of RFC 9162 section 2.1.4.2 and transparency-dev/merkle
    ``proof.VerifyConsistency``:

    * ``old_size == new_size``: the proof must be empty and the roots equal.
    * ``old_size == 0``: every tree extends the empty one; the proof must be empty and
      ``old_root`` must be the empty-tree root (SHA-256 of nothing). Upstream ignores
      ``old_root`` here; we refuse a non-empty root claimed for an empty tree.
    * otherwise the proof must be non-empty and reproduce both roots.

    Raises:
        ConsistencyProofError: sizes out of order or out of range, a hash that is not
            32 bytes, a proof of the wrong length, or a root that does not match.
    """
    if old_size < 0 or new_size < 0 or new_size > _MAX_SIZE:
        raise ConsistencyProofError(f"invalid tree sizes {old_size} and {new_size}")
    if new_size < old_size:
        raise ConsistencyProofError(
            f"new tree size {new_size} is smaller than old tree size {old_size}"
        )
    for what, root in (("old root", old_root), ("new root", new_root)):
        if not isinstance(root, bytes | bytearray) or len(root) != HASH_SIZE:
            raise ConsistencyProofError(f"{what} is not a {HASH_SIZE}-byte SHA-256 hash")
    _check_hashes(proof, "proof hash", ConsistencyProofError)
    old_root, new_root = bytes(old_root), bytes(new_root)

    if old_size == new_size:
        if proof:
            raise ConsistencyProofError(
                f"consistency proof between equal sizes {old_size} must be empty, "
                f"got {len(proof)} hashes"
            )
        if not _same(old_root, new_root):
            raise ConsistencyProofError(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ConsistencyProofError("consistency proof from the empty tree must be empty")
        if not _same(old_root, EMPTY_ROOT):
            raise ConsistencyProofError("old root of an empty tree is not the empty-tree root")
        return
    if not proof:
        raise ConsistencyProofError(
            f"empty consistency proof between tree sizes {old_size} and {new_size}"
        )

    # The proof is, in effect, the inclusion proof of leaf old_size-1 in the new tree,
    # starting at the level of the largest perfect subtree ending at old_size. When
    # old_size is itself a power of two that subtree is the whole old tree, whose root
    # the verifier already has, so the proof omits it.
    inner, border = _decompose(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    inner -= shift
    if old_size == 1 << shift:
        seed, rest = old_root, list(proof)
    else:
        seed, rest = proof[0], list(proof[1:])
    if len(rest) != inner + border:
        expected = inner + border + (0 if old_size == 1 << shift else 1)
        raise ConsistencyProofError(
            f"consistency proof from tree size {old_size} to {new_size} must have "
            f"{expected} hashes, got {len(proof)}"
        )
    mask = (old_size - 1) >> shift

    computed_old = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if not _same(computed_old, old_root):
        raise ConsistencyProofError(
            f"consistency proof does not reproduce the old root of tree size {old_size}"
        )
    computed_new = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if not _same(computed_new, new_root):
        raise ConsistencyProofError(
            f"consistency proof does not reproduce the new root of tree size {new_size}"
        )
