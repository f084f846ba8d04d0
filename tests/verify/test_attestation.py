"""verify_attestation on evidence written by the test publisher in all three layouts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dhi_offline.errors import (
    LogEntryBindingError,
    MalformedEvidenceError,
    SignatureError,
    SubjectMismatchError,
    TransparencyLogError,
    ValidityWindowError,
    VerificationError,
)
from dhi_offline.evidence.records import AttestationRecord, SignatureRef
from dhi_offline.trust.keyring import Keyring, KeyringEntry
from dhi_offline.trust.keys import from_crypto
from dhi_offline.verify.attestation import PublisherTrust, verify_attestation
from tests.support.publisher import (
    CTRF_TESTS,
    TestPublisher,
    ctrf_tests,
    cyclonedx_sbom,
    make_image,
)
from tests.support.rekor_double import RekorDouble
from tests.verify.helpers import make_world, record_for, store_of

NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def world() -> tuple[TestPublisher, RekorDouble, PublisherTrust]:
    return make_world()


def test_dhi_layout_with_set_verifies(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    result = verify_attestation(record_for(p), blobs=store_of(p), trust=trust, at=NOW)
    assert result.predicate_type == CTRF_TESTS
    assert result.signer == "publisher"
    assert result.tlog_status == "set-only"
    assert result.signing_times


def test_dhi_layout_without_rekor_is_recorded_absent(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)
    result = verify_attestation(record_for(p), blobs=store_of(p), trust=trust, at=NOW)
    assert result.tlog_status == "absent" and result.signing_times == ()


def test_completed_inclusion_proof_is_verified(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, rekor, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    (entry,) = p.log_entries
    body = next(iter(entry.values()))
    raw = json.dumps(rekor.entry(body["logIndex"])).encode()
    completions = {(body["logID"], body["logIndex"]): raw}
    result = verify_attestation(
        record_for(p), blobs=store_of(p), trust=trust, at=NOW, completions=completions
    )
    assert result.tlog_status == "inclusion-proof"
    # A stored Rekor entry for another body is refused, not silently ignored.
    other = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["other"]))
    other_body = next(iter(other.log_entries[0].values()))
    wrong = {
        (body["logID"], body["logIndex"]): json.dumps(rekor.entry(other_body["logIndex"])).encode()
    }
    with pytest.raises(TransparencyLogError, match="not the signed entry"):
        verify_attestation(record_for(p), blobs=store_of(p), trust=trust, at=NOW, completions=wrong)


def test_cosign_att_and_sigstore_bundle_layouts(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    image = make_image("ghcr.io/org/app")
    att = publisher.cosign_att(
        image.ref,
        [
            (CTRF_TESTS, ctrf_tests(["a"])),
            ("https://cyclonedx.org/bom/v1.6", cyclonedx_sbom(image.ref, 3)),
        ],
    )
    for i, ptype in enumerate((CTRF_TESTS, "https://cyclonedx.org/bom/v1.6")):
        result = verify_attestation(
            record_for(att, layer_index=i), blobs=store_of(att), trust=trust, at=NOW
        )
        assert result.predicate_type == ptype and result.tlog_status == "set-only"
    bundle = publisher.bundle_attestation(image.ref, CTRF_TESTS, ctrf_tests(["a"]), tlog="proof")
    result = verify_attestation(record_for(bundle), blobs=store_of(bundle), trust=trust, at=NOW)
    assert result.tlog_status == "inclusion-proof"


@pytest.mark.parametrize("layout", ["dhi", "cosign-att", "sigstore-bundle"])
def test_mix_and_match_between_images_is_refused(
    layout: str, world: tuple[TestPublisher, RekorDouble, PublisherTrust]
) -> None:
    publisher, _, trust = world
    a, b = make_image("dhi.io/python", seed="a"), make_image("dhi.io/python", seed="b")
    if layout == "dhi":
        p = publisher.dhi_attestation(a.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    elif layout == "cosign-att":
        p = publisher.cosign_att(a.ref, [(CTRF_TESTS, ctrf_tests(["runs"]))])
    else:
        p = publisher.bundle_attestation(a.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    with pytest.raises(SubjectMismatchError):
        verify_attestation(
            record_for(p, subject=b.ref.digest), blobs=store_of(p), trust=trust, at=NOW
        )


def test_unpinned_key_and_tampering(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, rekor, trust = world
    image = make_image("dhi.io/python")
    attacker = TestPublisher(rekor=rekor)
    p = attacker.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    with pytest.raises(SignatureError, match="pinned publisher key"):
        verify_attestation(record_for(p), blobs=store_of(p), trust=trust, at=NOW)
    report = ctrf_tests(["runs", "x"], failing=["x"])
    good = publisher.dhi_attestation(image.ref, CTRF_TESTS, report)
    store = store_of(good)
    rec = record_for(good)
    store.blobs[rec.layer] = store.blobs[rec.layer].replace(b'"failed"', b'"passed"')
    with pytest.raises(VerificationError):
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)


def test_signature_over_another_attestation_manifest(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    one = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["one"]))
    report = ctrf_tests(["two", "bad"], failing=["bad"])
    two = publisher.dhi_attestation(image.ref, CTRF_TESTS, report)
    # Present attestation two with attestation one's (valid) signature.
    rec = record_for(two)
    swapped = AttestationRecord(**{**rec.__dict__, "signatures": record_for(one).signatures})
    with pytest.raises(VerificationError):
        verify_attestation(swapped, blobs=store_of(one, two), trust=trust, at=NOW)


def test_inactive_key_without_verified_time_is_refused(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    retired = Keyring(
        "test",
        (
            KeyringEntry(
                "dhi-1-like",
                from_crypto(publisher.public_key),
                status="inactive",
                not_after=datetime(2025, 4, 16, tzinfo=UTC),
            ),
        ),
    )
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)
    with pytest.raises(ValidityWindowError, match="dhi-1-like"):
        verify_attestation(
            record_for(p),
            blobs=store_of(p),
            trust=PublisherTrust(retired, trust.trusted_root),
            at=NOW,
        )


def test_log_entry_for_other_payload_is_refused(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    one = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["one"]))
    two = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["two"]))
    # Graft attestation one's (valid, logged) bundle annotation onto two's signature layer.
    sm_two = json.loads(two.signature_manifest.data)  # type: ignore[union-attr]
    sm_one = json.loads(one.signature_manifest.data)  # type: ignore[union-attr]
    key = "dev.sigstore.cosign/bundle"
    sm_two["layers"][0]["annotations"][key] = sm_one["layers"][0]["annotations"][key]
    data = json.dumps(sm_two).encode()
    store = store_of(two)
    digest = store.put(data)
    rec = record_for(two)
    grafted = AttestationRecord(
        **{**rec.__dict__, "signatures": (SignatureRef(digest, rec.signatures[0].layer),)}
    )
    with pytest.raises(LogEntryBindingError):
        verify_attestation(grafted, blobs=store, trust=trust, at=NOW)


def test_missing_blob_is_malformed(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    p = publisher.dhi_attestation(make_image("x").ref, CTRF_TESTS, ctrf_tests(["runs"]))
    store = store_of(p)
    del store.blobs[record_for(p).layer]
    with pytest.raises(MalformedEvidenceError):
        verify_attestation(record_for(p), blobs=store, trust=trust, at=NOW)


def test_last_signer_is_tried_first_but_every_key_still_counts(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, rekor, trust = world
    other = TestPublisher(rekor=rekor)
    ring = Keyring(
        "two",
        (
            KeyringEntry("other", from_crypto(other.public_key)),
            KeyringEntry("publisher", from_crypto(publisher.public_key)),
        ),
    )
    two = PublisherTrust(keyring=ring, trusted_root=trust.trusted_root)
    image = make_image("dhi.io/python")
    mine = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["a"]))
    theirs = other.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["b"]))
    assert (
        verify_attestation(record_for(mine), blobs=store_of(mine), trust=two, at=NOW).signer
        == "publisher"
    )
    assert two.last_signer == [from_crypto(publisher.public_key).key_id]
    # The remembered key is only an order: another pinned key still verifies.
    assert (
        verify_attestation(record_for(theirs), blobs=store_of(theirs), trust=two, at=NOW).signer
        == "other"
    )
    assert two.last_signer == [from_crypto(other.public_key).key_id]


class _DuplicatingDict(dict[str, object]):
    """Encodes with its first key twice (json calls items() on dict subclasses)."""

    # A list, not a view: json.dumps only iterates it, and a view cannot hold a key twice.
    def items(self) -> list[tuple[str, object]]:  # type: ignore[override]
        pairs = list(super().items())
        return [pairs[0], *pairs]


def test_large_predicate_is_built_only_when_read(
    world: tuple[TestPublisher, RekorDouble, PublisherTrust],
) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    sbom = cyclonedx_sbom(image.ref, 1000)
    sbom["metadata"] = _DuplicatingDict(a=1, b=2)  # a duplicate key deep inside
    p = publisher.dhi_attestation(image.ref, "https://cyclonedx.org/bom", sbom)
    assert len(p.layer().data) > 64 * 1024
    result = verify_attestation(record_for(p), blobs=store_of(p), trust=trust, at=NOW)
    # Signed, about this image, of this type: verified without building the SBOM ...
    assert result.predicate_type == "https://cyclonedx.org/bom"
    assert not result.statement.predicate_built
    assert result.statement.summary == {"packages": 1000}
    # ... and the strict rules apply as soon as someone reads it.
    with pytest.raises(MalformedEvidenceError, match="duplicate key 'a'"):
        _ = result.statement.predicate
