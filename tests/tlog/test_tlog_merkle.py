"""RFC 6962 Merkle proofs, checked against an independent reference implementation.

The reference below is written straight from the recursive definitions of RFC 6962
section 2.1 (MTH, PATH, PROOF/SUBPROOF) and shares no code with the implementation
under test. Every tree of 1..64 leaves and every leaf index / every size pair is
checked, both for acceptance and for rejection of tampered proofs.
"""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dhi_offline.errors import ConsistencyProofError, InclusionProofError
from dhi_offline.tlog import merkle

MAX_N = 64
BIG_N = 3000
LEAVES = [f"leaf-{i}".encode() for i in range(BIG_N)]


# --- Reference implementation (RFC 6962 section 2.1) ---------------------------------


def _lpow2(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def ref_mth(start: int, end: int) -> bytes:
    """MTH(D[start:end])."""
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + LEAVES[start]).digest()
    k = _lpow2(n)
    return hashlib.sha256(b"\x01" + ref_mth(start, start + k) + ref_mth(start + k, end)).digest()


def ref_path(m: int, start: int, end: int) -> list[tuple[bytes, str]]:
    """PATH(m, D[start:end]) with the side ('L'/'R') of each sibling, leaf to root."""
    n = end - start
    if n == 1:
        return []
    k = _lpow2(n)
    if m < k:
        return [*ref_path(m, start, start + k), (ref_mth(start + k, end), "R")]
    return [*ref_path(m - k, start + k, end), (ref_mth(start, start + k), "L")]


def ref_subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b)."""
    n = end - start
    if m == n:
        return [] if complete else [ref_mth(start, end)]
    k = _lpow2(n)
    if m <= k:
        return [*ref_subproof(m, start, start + k, complete), ref_mth(start + k, end)]
    return [*ref_subproof(m - k, start + k, end, False), ref_mth(start, start + k)]


def ref_consistency(m: int, n: int) -> list[bytes]:
    """PROOF(m, D[n])."""
    return ref_subproof(m, 0, n, True)


def sides(index: int, n: int) -> list[str]:
    return [side for _, side in ref_path(index, 0, n)]


def flip(h: bytes, at: int = 0) -> bytes:
    return h[:at] + bytes([h[at] ^ 0x01]) + h[at + 1 :]


# --- Known answers --------------------------------------------------------------------


def test_hash_functions_known_answers() -> None:
    # RFC 6962 test data as used by transparency-dev/merkle (testonly/constants.go).
    assert merkle.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.leaf_hash(b"\x00").hex() == (
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
    )
    assert merkle.node_hash(merkle.leaf_hash(b""), merkle.leaf_hash(b"\x00")).hex() == (
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
    )
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_known_roots_through_inclusion_proofs() -> None:
    leaves = [
        bytes.fromhex(h)
        for h in (
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        )
    ]
    roots = {
        3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    }
    lh = [merkle.leaf_hash(x) for x in leaves]
    n01, n23 = merkle.node_hash(lh[0], lh[1]), merkle.node_hash(lh[2], lh[3])
    n45, n67 = merkle.node_hash(lh[4], lh[5]), merkle.node_hash(lh[6], lh[7])
    # Hand-written audit paths, leaf to root.
    cases = [
        (2, 3, [n01]),
        (2, 5, [lh[3], n01, lh[4]]),
        (6, 7, [n45, merkle.node_hash(n01, n23)]),
        (6, 8, [lh[7], n45, merkle.node_hash(n01, n23)]),
        (4, 8, [lh[5], n67, merkle.node_hash(n01, n23)]),
    ]
    for index, size, proof in cases:
        root = merkle.root_from_inclusion_proof(
            leaf_hash=lh[index], index=index, tree_size=size, proof=proof
        )
        assert root.hex() == roots[size], (index, size)


# --- Inclusion: every size 1..64, every index -------------------------------------------


def _assert_inclusion_fails(**kwargs: object) -> None:
    with pytest.raises(InclusionProofError):
        merkle.verify_inclusion(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_every_index(n: int) -> None:
    root = ref_mth(0, n)
    for index in range(n):
        leaf = merkle.leaf_hash(LEAVES[index])
        path = ref_path(index, 0, n)
        proof = [h for h, _ in path]

        assert (
            merkle.root_from_inclusion_proof(leaf_hash=leaf, index=index, tree_size=n, proof=proof)
            == root
        )
        merkle.verify_inclusion(leaf_hash=leaf, index=index, tree_size=n, proof=proof, root=root)

        good = {"leaf_hash": leaf, "index": index, "tree_size": n, "proof": proof, "root": root}

        # A different leaf, or a different root, never verifies.
        _assert_inclusion_fails(**{**good, "leaf_hash": flip(leaf)})
        _assert_inclusion_fails(**{**good, "root": flip(root, 31)})

        # One flipped bit in any proof hash (first and last byte).
        for j in range(len(proof)):
            for at in (0, 31):
                bad = [*proof[:j], flip(proof[j], at), *proof[j + 1 :]]
                _assert_inclusion_fails(**{**good, "proof": bad})

        # One hash dropped (anywhere) or added (at either end).
        for j in range(len(proof)):
            _assert_inclusion_fails(**{**good, "proof": proof[:j] + proof[j + 1 :]})
        _assert_inclusion_fails(**{**good, "proof": [*proof, root]})
        _assert_inclusion_fails(**{**good, "proof": [leaf, *proof]})

        # Index off by one. The verifier only sees the side of each sibling, so the
        # same proof may be accepted for another index only if the reference path of
        # that index has exactly the same shape; otherwise it must fail.
        for other in (index - 1, index + 1):
            kwargs = {**good, "index": other}
            if 0 <= other < n and sides(other, n) == sides(index, n):
                merkle.verify_inclusion(**kwargs)  # type: ignore[arg-type]
            else:
                _assert_inclusion_fails(**kwargs)

        # Wrong tree size. RFC 6962 proofs do not bind the size (that is the
        # checkpoint's job): the proof must fail unless the path shape is identical.
        for other in (n - 1, n + 1, 2 * n, n + 7):
            kwargs = {**good, "tree_size": other}
            if index < other and sides(index, other) == sides(index, n):
                merkle.verify_inclusion(**kwargs)  # type: ignore[arg-type]
            else:
                _assert_inclusion_fails(**kwargs)


def test_wrong_size_shape_equivalence_is_real() -> None:
    # The caveat above is not hypothetical: leaf 0's proof in a 3-leaf tree has the
    # same shape as in a 4-leaf tree, so only a signed tree size can tell them apart.
    assert sides(0, 3) == sides(0, 4)
    proof = [h for h, _ in ref_path(0, 0, 3)]
    merkle.verify_inclusion(
        leaf_hash=merkle.leaf_hash(LEAVES[0]),
        index=0,
        tree_size=4,
        proof=proof,
        root=ref_mth(0, 3),
    )


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_inclusion_large_trees(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=MAX_N + 1, max_value=BIG_N))
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = [h for h, _ in ref_path(index, 0, n)]
    leaf = merkle.leaf_hash(LEAVES[index])
    merkle.verify_inclusion(
        leaf_hash=leaf, index=index, tree_size=n, proof=proof, root=ref_mth(0, n)
    )
    j = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    bad = [*proof[:j], flip(proof[j], 5), *proof[j + 1 :]]
    with pytest.raises(InclusionProofError):
        merkle.verify_inclusion(
            leaf_hash=leaf, index=index, tree_size=n, proof=bad, root=ref_mth(0, n)
        )


@pytest.mark.parametrize(
    ("index", "size", "proof_len", "leaf_len", "message"),
    [
        (0, 0, 0, 32, "tree size 0"),
        (-1, 4, 2, 32, "outside"),
        (4, 4, 2, 32, "outside"),
        (5, 4, 2, 32, "outside"),
        (0, 4, 1, 32, "must have 2 hashes, got 1"),
        (0, 4, 3, 32, "must have 2 hashes, got 3"),
        (0, 4, 2, 31, "leaf hash"),
        (0, 2**64, 64, 32, "tree size"),
    ],
)
def test_inclusion_rejects_malformed_input(
    index: int, size: int, proof_len: int, leaf_len: int, message: str
) -> None:
    with pytest.raises(InclusionProofError, match=message) as info:
        merkle.root_from_inclusion_proof(
            leaf_hash=b"\x00" * leaf_len,
            index=index,
            tree_size=size,
            proof=[b"\x11" * 32] * proof_len,
        )
    assert info.value.step == "inclusion proof"


def test_inclusion_rejects_short_proof_hash_and_names_index() -> None:
    with pytest.raises(InclusionProofError, match=r"proof hash\[1\]"):
        merkle.root_from_inclusion_proof(
            leaf_hash=b"\x00" * 32, index=0, tree_size=4, proof=[b"\x11" * 32, b"\x11" * 31]
        )
    root = ref_mth(0, 4)
    with pytest.raises(InclusionProofError, match=r"leaf 1 of tree size 4"):
        merkle.verify_inclusion(
            leaf_hash=merkle.leaf_hash(LEAVES[0]),
            index=1,
            tree_size=4,
            proof=[h for h, _ in ref_path(0, 0, 4)],
            root=root,
        )


# --- Consistency: every pair 1 <= m <= n <= 64 ------------------------------------------


def _assert_consistency_fails(**kwargs: object) -> None:
    with pytest.raises(ConsistencyProofError):
        merkle.verify_consistency(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_consistency_every_pair(n: int) -> None:
    new_root = ref_mth(0, n)
    for m in range(1, n + 1):
        old_root = ref_mth(0, m)
        proof = ref_consistency(m, n)
        good = {
            "old_size": m,
            "new_size": n,
            "proof": proof,
            "old_root": old_root,
            "new_root": new_root,
        }
        merkle.verify_consistency(**good)  # type: ignore[arg-type]

        _assert_consistency_fails(**{**good, "old_root": flip(old_root)})
        _assert_consistency_fails(**{**good, "new_root": flip(new_root)})
        for j in range(len(proof)):
            for at in (0, 31):
                bad = [*proof[:j], flip(proof[j], at), *proof[j + 1 :]]
                _assert_consistency_fails(**{**good, "proof": bad})
            _assert_consistency_fails(**{**good, "proof": proof[:j] + proof[j + 1 :]})
        _assert_consistency_fails(**{**good, "proof": [*proof, new_root]})
        _assert_consistency_fails(**{**good, "proof": [old_root, *proof]})

        if m < n:
            # Swapped roots, and the sizes turned around.
            _assert_consistency_fails(**{**good, "old_root": new_root, "new_root": old_root})
            _assert_consistency_fails(
                **{**good, "old_size": n, "new_size": m, "old_root": new_root, "new_root": old_root}
            )
        else:
            assert proof == []


def test_consistency_edge_cases() -> None:
    r1, r2 = ref_mth(0, 1), ref_mth(0, 2)
    merkle.verify_consistency(
        old_size=0, new_size=0, proof=[], old_root=merkle.EMPTY_ROOT, new_root=merkle.EMPTY_ROOT
    )
    # Every tree extends the empty tree, with an empty proof only.
    merkle.verify_consistency(
        old_size=0, new_size=2, proof=[], old_root=merkle.EMPTY_ROOT, new_root=r2
    )
    with pytest.raises(ConsistencyProofError, match="empty tree must be empty"):
        merkle.verify_consistency(
            old_size=0, new_size=2, proof=[r1], old_root=merkle.EMPTY_ROOT, new_root=r2
        )
    with pytest.raises(ConsistencyProofError, match="empty-tree root"):
        merkle.verify_consistency(old_size=0, new_size=2, proof=[], old_root=r1, new_root=r2)
    with pytest.raises(ConsistencyProofError, match="must be empty"):
        merkle.verify_consistency(old_size=2, new_size=2, proof=[r1], old_root=r2, new_root=r2)
    with pytest.raises(ConsistencyProofError, match="same tree size"):
        merkle.verify_consistency(old_size=2, new_size=2, proof=[], old_root=r1, new_root=r2)
    with pytest.raises(ConsistencyProofError, match="smaller"):
        merkle.verify_consistency(old_size=2, new_size=1, proof=[], old_root=r2, new_root=r1)
    with pytest.raises(ConsistencyProofError, match="empty consistency proof"):
        merkle.verify_consistency(old_size=1, new_size=2, proof=[], old_root=r1, new_root=r2)
    with pytest.raises(ConsistencyProofError, match="invalid tree sizes"):
        merkle.verify_consistency(old_size=-1, new_size=2, proof=[], old_root=r1, new_root=r2)
    with pytest.raises(ConsistencyProofError, match="32-byte"):
        merkle.verify_consistency(old_size=1, new_size=2, proof=[b"x"], old_root=r1, new_root=r2)
    with pytest.raises(ConsistencyProofError, match="old root"):
        merkle.verify_consistency(
            old_size=1, new_size=2, proof=[LEAVES[1]], old_root=b"", new_root=r2
        )


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_consistency_large_trees(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=MAX_N + 1, max_value=BIG_N))
    m = data.draw(st.integers(min_value=1, max_value=n))
    proof = ref_consistency(m, n)
    merkle.verify_consistency(
        old_size=m, new_size=n, proof=proof, old_root=ref_mth(0, m), new_root=ref_mth(0, n)
    )
    if proof:
        j = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = [*proof[:j], flip(proof[j], 9), *proof[j + 1 :]]
        with pytest.raises(ConsistencyProofError):
            merkle.verify_consistency(
                old_size=m, new_size=n, proof=bad, old_root=ref_mth(0, m), new_root=ref_mth(0, n)
            )
