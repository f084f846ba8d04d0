"""The export-side Rekor client against the Rekor double, and the double's own tree."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from dhi_offline.errors import (
    CheckpointError,
    ConsistencyProofError,
    InclusionProofError,
    LogEntryBindingError,
    MalformedEvidenceError,
    RekorError,
    SignedEntryTimestampError,
    TransparencyLogError,
    UsageError,
    ValidityWindowError,
)
from dhi_offline.tlog import merkle
from dhi_offline.tlog.checkpoint import parse_checkpoint, verify_checkpoint
from dhi_offline.tlog.rekor_client import (
    RekorClient,
    RekorEntry,
    entry_to_bundle_tlog_entry,
    parse_consistency_proof,
    parse_log_entry,
    parse_log_info,
    rekor_entry_uuid,
    verify_log_info,
    verify_rekor_entry,
)
from dhi_offline.trust.trusted_root import LogInstance, TrustedRoot
from tests.support.rekor_double import MerkleTree, RekorDouble, rfc6962_leaf

CLOCK = 1_750_000_000


def body(i: int) -> bytes:
    return json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "n": i}).encode()


def no_sleep(_: float) -> None:
    pass


def log_of(double: RekorDouble) -> LogInstance:
    return TrustedRoot.from_bytes(double.trusted_root_json()).tlogs[0]


@pytest.fixture
def double() -> RekorDouble:
    d = RekorDouble(clock=lambda: CLOCK, index_offset=1000)
    for i in range(7):
        d.add_entry(body(i))
    return d


@pytest.fixture
def served(double: RekorDouble) -> Iterator[tuple[RekorDouble, RekorClient]]:
    with double.serve() as url, RekorClient(url, sleep=no_sleep) as client:
        yield double, client


# --------------------------------------------------------------- the double's tree


def test_double_tree_matches_merkle_verifiers_for_sizes_1_to_40() -> None:
    tree = MerkleTree()
    leaves = [rfc6962_leaf(b"leaf %d" % i) for i in range(40)]
    for lh in leaves:
        tree.append(lh)
    for n in range(1, 41):
        root = tree.root(n)
        for i in range(n):
            path = tree.inclusion_path(i, n)
            merkle.verify_inclusion(
                leaf_hash=leaves[i], index=i, tree_size=n, proof=path, root=root
            )
            if n > 1:
                with pytest.raises(InclusionProofError):
                    merkle.verify_inclusion(
                        leaf_hash=leaves[(i + 1) % n], index=i, tree_size=n, proof=path, root=root
                    )
        for m in range(n + 1):
            proof = tree.consistency_proof(m, n)
            merkle.verify_consistency(
                old_size=m, new_size=n, proof=proof, old_root=tree.root(m), new_root=root
            )
            if 0 < m < n:
                with pytest.raises(ConsistencyProofError):
                    merkle.verify_consistency(
                        old_size=m,
                        new_size=n,
                        proof=proof,
                        old_root=tree.root(m - 1),
                        new_root=root,
                    )


def test_double_small_tree_by_hand() -> None:
    tree = MerkleTree([rfc6962_leaf(b"a"), rfc6962_leaf(b"b"), rfc6962_leaf(b"c")])
    ab = merkle.node_hash(merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b"))
    assert tree.root() == merkle.node_hash(ab, merkle.leaf_hash(b"c"))
    assert tree.root(0) == merkle.EMPTY_ROOT
    assert tree.inclusion_path(2, 3) == [ab]
    assert tree.consistency_proof(2, 3) == [merkle.leaf_hash(b"c")]


# --------------------------------------------------------------- entries


def test_entry_by_index_verifies(served: tuple[RekorDouble, RekorClient]) -> None:
    double, client = served
    entry = client.entry_by_index(1003)
    assert entry.log_index == 1003  # global index: what the SET signs
    assert entry.inclusion_proof is not None
    assert entry.inclusion_proof.log_index == 3  # tree-local index: what the proof uses
    assert entry.inclusion_proof.tree_size == 7
    assert entry.body == body(3)
    assert entry.integrated_time == CLOCK
    assert entry.log_id == double.log_id
    assert entry.uuid == rekor_entry_uuid(body(3), double.tree_id)
    checkpoint = verify_rekor_entry(entry, log_of(double), expected_body=body(3))
    assert checkpoint.origin == f"{double.host} - {double.tree_id}"
    assert checkpoint.tree_size == 7
    # the exact response bytes are kept and re-parse to the same entry
    assert json.loads(entry.raw) == double.entry(1003)
    assert parse_log_entry(entry.raw) == entry


def test_entry_by_uuid(served: tuple[RekorDouble, RekorClient]) -> None:
    double, client = served
    entry = client.entry_by_uuid(rekor_entry_uuid(body(5), double.tree_id))
    assert entry.log_index == 1005
    short = client.entry_by_uuid(rekor_entry_uuid(body(5)))
    assert short.body == body(5)
    with pytest.raises(UsageError):
        client.entry_by_uuid("not-a-uuid")


def test_verify_rejects_tampering(served: tuple[RekorDouble, RekorClient]) -> None:
    double, client = served
    log = log_of(double)
    entry = client.entry_by_index(1002)
    with pytest.raises(LogEntryBindingError):
        verify_rekor_entry(entry, log, expected_body=body(4))
    proof = entry.inclusion_proof
    assert proof is not None

    bad_proof = replace(proof, hashes=(hashlib.sha256(b"x").digest(), *proof.hashes[1:]))
    with pytest.raises(InclusionProofError):
        verify_rekor_entry(replace(entry, inclusion_proof=bad_proof), log, expected_body=None)
    with pytest.raises(InclusionProofError):
        verify_rekor_entry(replace(entry, inclusion_proof=None), log, expected_body=None)

    other_size = replace(proof, checkpoint=double.checkpoint(5))
    with pytest.raises(CheckpointError):
        verify_rekor_entry(replace(entry, inclusion_proof=other_size), log, expected_body=None)
    with pytest.raises(CheckpointError):
        verify_rekor_entry(
            replace(entry, inclusion_proof=replace(proof, checkpoint=None)), log, expected_body=None
        )

    with pytest.raises(SignedEntryTimestampError):
        verify_rekor_entry(replace(entry, integrated_time=CLOCK + 1), log, expected_body=None)
    with pytest.raises(SignedEntryTimestampError):
        verify_rekor_entry(replace(entry, signed_entry_timestamp=None), log, expected_body=None)
    with pytest.raises(TransparencyLogError):
        verify_rekor_entry(replace(entry, uuid="00" * 32), log, expected_body=None)

    stranger = log_of(RekorDouble())
    with pytest.raises(SignedEntryTimestampError):
        verify_rekor_entry(entry, stranger, expected_body=None)

    late = RekorDouble(key=double.key, clock=lambda: CLOCK)
    late.valid_from = late.valid_from.replace(year=2030)
    with pytest.raises(ValidityWindowError):
        verify_rekor_entry(entry, log_of(late), expected_body=None)


def test_bundle_tlog_entry_shape(served: tuple[RekorDouble, RekorClient]) -> None:
    double, client = served
    entry = client.entry_by_index(1006)
    out = entry_to_bundle_tlog_entry(entry)
    assert out["logIndex"] == "1006"
    assert out["integratedTime"] == str(CLOCK)
    assert out["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    assert base64.b64decode(out["logId"]["keyId"]) == double.log_id
    assert base64.b64decode(out["canonicalizedBody"]) == body(6)
    assert base64.b64decode(out["inclusionPromise"]["signedEntryTimestamp"]) == double.sets[6]
    p = out["inclusionProof"]
    assert (p["logIndex"], p["treeSize"]) == ("6", "7")
    assert base64.b64decode(p["rootHash"]) == double.tree.root(7)
    assert [base64.b64decode(h) for h in p["hashes"]] == double.tree.inclusion_path(6, 7)
    assert p["checkpoint"] == {"envelope": double.checkpoint(7)}
    assert entry_to_bundle_tlog_entry(entry, "dsse", "0.0.1")["kindVersion"]["kind"] == "dsse"
    bare = entry_to_bundle_tlog_entry(
        replace(entry, signed_entry_timestamp=None, inclusion_proof=None)
    )
    assert "inclusionPromise" not in bare
    assert "inclusionProof" not in bare


def test_entry_fetched_later_has_proof_for_current_tree(
    served: tuple[RekorDouble, RekorClient],
) -> None:
    double, client = served
    first = client.entry_by_index(1000)
    double.add_entry(body(100))
    later = client.entry_by_index(1000)
    assert first.inclusion_proof is not None
    assert later.inclusion_proof is not None
    assert (first.inclusion_proof.tree_size, later.inclusion_proof.tree_size) == (7, 8)
    verify_rekor_entry(later, log_of(double), expected_body=body(0))


def test_missing_entry_is_a_rekor_error_without_retries(
    served: tuple[RekorDouble, RekorClient],
) -> None:
    double, client = served
    before = len(double.requests)
    with pytest.raises(RekorError) as info:
        client.entry_by_index(5)
    assert info.value.status == 404
    assert "logIndex=5" in info.value.one_line()
    assert len(double.requests) == before + 1


# --------------------------------------------------------------- log info and consistency


def test_log_info(served: tuple[RekorDouble, RekorClient]) -> None:
    double, client = served
    info = client.log_info()
    assert info.tree_size == 7
    assert info.root_hash == double.tree.root()
    assert info.tree_id == str(double.tree_id)
    assert info.inactive_shards == ()
    checkpoint = verify_log_info(info, log_of(double))
    assert checkpoint.tree_size == 7
    assert parse_log_info(info.raw) == info
    with pytest.raises(CheckpointError):
        verify_log_info(replace(info, tree_size=6), log_of(double))


def test_consistency_proofs_between_sizes(served: tuple[RekorDouble, RekorClient]) -> None:
    double, client = served
    log = log_of(double)
    heads = {}
    info = client.log_info()
    heads[info.tree_size] = verify_log_info(info, log).root_hash
    for i in range(7, 30):
        double.add_entry(body(i))
        if i in (7, 8, 11, 15, 16, 22, 29):
            info = client.log_info()
            heads[info.tree_size] = verify_log_info(info, log).root_hash
    sizes = sorted(heads)
    for a in sizes:
        for b in sizes:
            if a > b:
                continue
            proof = client.consistency_proof(a, b)
            assert proof.root_hash == heads[b]
            merkle.verify_consistency(
                old_size=a, new_size=b, proof=proof.hashes, old_root=heads[a], new_root=heads[b]
            )
            assert parse_consistency_proof(proof.raw, first_size=a, last_size=b) == proof
    with_tree = client.consistency_proof(3, 30, tree_id=str(double.tree_id))
    assert with_tree.hashes == tuple(double.tree.consistency_proof(3, 30))
    with pytest.raises(RekorError, match="404"):
        client.consistency_proof(3, 30, tree_id="12345")
    with pytest.raises(RekorError, match="400"):
        client.consistency_proof(3, 31)
    with pytest.raises(UsageError):
        client.consistency_proof(0, 3)
    with pytest.raises(UsageError):
        client.consistency_proof(5, 3)


def test_forked_log_fails_consistency_and_equivocation_is_visible(
    served: tuple[RekorDouble, RekorClient],
) -> None:
    double, client = served
    log = log_of(double)
    old = verify_log_info(client.log_info(), log)

    # the log shows a forked view under the same URL: its head still verifies...
    fork = double.fork(4)
    for i in range(50, 56):
        fork.add_entry(body(i))
    double.present(fork)
    new = verify_log_info(client.log_info(), log)
    assert new.tree_size == 10
    # ...but no consistency proof links the two heads
    proof = client.consistency_proof(old.tree_size, new.tree_size)
    with pytest.raises(ConsistencyProofError):
        merkle.verify_consistency(
            old_size=old.tree_size,
            new_size=new.tree_size,
            proof=proof.hashes,
            old_root=old.root_hash,
            new_root=new.root_hash,
        )

    # rollback: the log presents an older, smaller tree
    double.present(double.fork(3))
    assert client.log_info().tree_size == 3
    double.present(None)

    # equivocation: two signed checkpoints, same size, different roots
    twin = double.equivocate()
    a, b = parse_checkpoint(double.checkpoint()), parse_checkpoint(twin.checkpoint())
    verify_checkpoint(a, log)
    verify_checkpoint(b, log)
    assert a.tree_size == b.tree_size
    assert a.root_hash != b.root_hash


# --------------------------------------------------------------- faults and retries


def test_retries_on_500_and_429(double: RekorDouble) -> None:
    sleeps: list[float] = []
    with (
        double.serve() as url,
        RekorClient(url, sleep=sleeps.append, backoff=0.5, jitter=lambda: 0.0) as client,
    ):
        double.fail_next(2, 500)
        before = len(double.requests)
        assert client.log_info().tree_size == 7
        assert len(double.requests) == before + 3
        assert sleeps == [0.25, 0.5]  # 0.5 s doubling, jitter pinned at its minimum (x0.5)

        sleeps.clear()
        double.fail_next(1, 429, retry_after="7")
        assert client.entry_by_index(1001).body == body(1)
        assert sleeps == [7.0]  # Retry-After honoured

        sleeps.clear()
        double.fail_next(2, 503)
        double.drop_next(1)  # a connection closed without an answer is retried too
        assert client.consistency_proof(2, 7).hashes
        assert len(sleeps) == 3


def test_gives_up_with_one_line_error(double: RekorDouble) -> None:
    with double.serve() as url, RekorClient(url, sleep=no_sleep, retries=2) as client:
        double.fail_next(3, 503)
        with pytest.raises(RekorError) as info:
            client.entry_by_index(1002)
    err = info.value
    assert err.exit_code == 2
    assert err.status == 503
    line = err.one_line()
    assert "\n" not in line
    assert f"{url}/api/v1/log/entries?logIndex=1002" in line
    assert "3 attempts" in line
    assert "HTTP 503" in line


def test_dead_url_is_one_line_rekor_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    sleeps: list[float] = []
    with (
        RekorClient(url, sleep=sleeps.append, retries=2, timeout=2) as client,
        pytest.raises(RekorError) as info,
    ):
        client.log_info()
    line = info.value.one_line()
    assert "\n" not in line
    assert f"{url}/api/v1/log" in line
    assert "ConnectError" in line
    assert info.value.status is None
    assert len(sleeps) == 2


def _mock(handler_body: bytes, status: int = 200) -> RekorClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=handler_body)

    return RekorClient(
        "https://rekor.example", transport=httpx.MockTransport(handler), sleep=no_sleep
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"a": {"body": "eA==", "integratedTime": 1, "logID": "zz", "logIndex": 4}}',
        b'{"a": {"body": "!!", "integratedTime": 1, "logID": "00", "logIndex": 4}}',
        b'{"a": {"body": "eA==", "integratedTime": 1, "logID": "00", "logIndex": 4,'
        b' "verification": {"inclusionProof": {"logIndex": 0, "rootHash": "00",'
        b' "treeSize": 1, "hashes": []}}}}',
        b'{"a": {}, "b": {}}',
    ],
)
def test_malformed_entry_answers(payload: bytes) -> None:
    with _mock(payload) as client, pytest.raises(MalformedEvidenceError):
        client.entry_by_index(4)


def test_malformed_log_info_and_proof() -> None:
    with _mock(b'{"rootHash": "00", "treeSize": 1}') as client:
        with pytest.raises(MalformedEvidenceError):
            client.log_info()
        with pytest.raises(MalformedEvidenceError):
            client.consistency_proof(1, 2)


def test_entry_at_wrong_index_is_refused(double: RekorDouble) -> None:
    with _mock(double.entry_json(1002)) as client, pytest.raises(TransparencyLogError):
        client.entry_by_index(1003)


def test_http_error_message_and_no_retry_on_4xx() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(400, json={"code": 400, "message": "bad\nthing"})

    with (
        RekorClient(
            "https://rekor.example/", transport=httpx.MockTransport(handler), sleep=no_sleep
        ) as client,
        pytest.raises(RekorError) as info,
    ):
        client.log_info()
    assert calls == ["https://rekor.example/api/v1/log"]
    assert info.value.one_line() == (
        "Rekor GET https://rekor.example/api/v1/log failed: HTTP 400 (bad thing)"
    )


def test_response_size_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 5000)

    with (
        RekorClient(
            "https://rekor.example",
            transport=httpx.MockTransport(handler),
            max_response_bytes=1000,
        ) as client,
        pytest.raises(RekorError, match="larger than"),
    ):
        client.log_info()


def test_bad_base_url() -> None:
    with pytest.raises(UsageError):
        RekorClient("rekor.sigstore.dev")


def test_double_accepts_posted_entries(double: RekorDouble) -> None:
    proposed = {"kind": "hashedrekord", "apiVersion": "0.0.1", "spec": {"x": 1}}
    with double.serve() as url:
        r = httpx.post(f"{url}/api/v1/log/entries", json=proposed)
        assert r.status_code == 201
        again = httpx.post(f"{url}/api/v1/log/entries", json=proposed)
        assert again.status_code == 409
        with RekorClient(url) as client:
            entry = client.entry_by_index(1007)
    assert entry.kind_version() == ("hashedrekord", "0.0.1")
    assert json.loads(entry.body) == proposed
    assert isinstance(parse_log_entry(r.content), RekorEntry)
