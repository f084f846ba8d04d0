"""Each security check of the attestation plan, at the place it is called.

Every test builds evidence that only the check under test refuses (everything else about
it is genuine: signed by the pinned key, logged, well-formed), and asserts the refusal
and the step (with the check's own wording, where several checks share a step name). A
later check cannot hide the loss of an earlier one. The mutation harness
(``tests/mutation/``) removes each check and expects these tests to fail.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dhi_offline.errors import (
    LogEntryBindingError,
    MalformedEvidenceError,
    SignatureError,
    SubjectMismatchError,
    TransparencyLogError,
)
from dhi_offline.evidence.cosign import BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION
from dhi_offline.evidence.intoto import parse_statement
from dhi_offline.evidence.records import AttestationRecord, MemoryBlobStore, SignatureRef, record_id
from dhi_offline.evidence.simplesigning import parse_simple_signing, require_manifest_digest
from dhi_offline.verify.attestation import PublisherTrust, verify_attestation
from dhi_offline.verify.policy import Evidence, evaluate_platform, parse_policy
from tests.support.publisher import (
    CTRF_TESTS,
    OCI_MANIFEST,
    Published,
    TestPublisher,
    ctrf_tests,
    legacy_bundle_annotation,
    make_image,
    simple_signing_payload,
    slsa_provenance_v1,
)
from tests.support.rekor_double import RekorDouble
from tests.verify.helpers import make_world, record_for, store_of

NOW = datetime(2026, 11, 27, tzinfo=UTC)
PROVENANCE = "https://slsa.dev/provenance/v1"
World = tuple[TestPublisher, RekorDouble, PublisherTrust]


@pytest.fixture
def world() -> World:
    return make_world()


def _compact(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _signature_manifest(
    publisher: TestPublisher, store: MemoryBlobStore, manifest_digest: str, subject: str
) -> SignatureRef:
    """A cosign signature manifest, genuinely signed by ``publisher`` over a simple-signing
    payload naming ``manifest_digest``, whose OCI ``subject`` is ``subject``."""
    payload = simple_signing_payload("dhi.io/python", manifest_digest)
    layer = store.put(payload)
    sig = publisher.sign(payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": layer, "size": 2},
        "layers": [
            {
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": layer,
                "size": len(payload),
                "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(sig).decode()},
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
    }
    return SignatureRef(store.put(_compact(doc)), layer)


def _resigned(
    publisher: TestPublisher, p: Published, edit: Any, *, sig_subject: str | None = None
) -> tuple[AttestationRecord, MemoryBlobStore]:
    """``p``'s attestation manifest edited by ``edit`` and genuinely re-signed."""
    store = store_of(p)
    doc = json.loads(p.attestation.data)
    edit(doc)
    digest = store.put(_compact(doc))
    ref = _signature_manifest(publisher, store, digest, sig_subject or digest)
    rec = record_for(p)
    return AttestationRecord(**{**rec.__dict__, "manifest": digest, "signatures": (ref,)}), store


def test_resigned_helper_gives_evidence_that_verifies(world: World) -> None:
    """The control: the helper's output passes, so each refusal below is the check's."""
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)
    rec, store = _resigned(publisher, p, lambda doc: None)
    assert verify_attestation(rec, blobs=store, trust=trust, at=NOW).signer == "publisher"


# -- simple-signing payload must name the manifest it signs (require_manifest_digest) ---


def test_genuine_signature_payload_of_another_attestation_is_refused(world: World) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    one = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["one"]))
    two = publisher.dhi_attestation(
        image.ref, CTRF_TESTS, ctrf_tests(["two", "bad"], failing=["bad"])
    )
    # A new signature manifest that points at attestation two but carries attestation
    # one's genuine payload, signature and Rekor entry.
    store = store_of(one, two)
    sm = json.loads(one.signature_manifest.data)  # type: ignore[union-attr]
    sm["subject"] = {"mediaType": OCI_MANIFEST, "digest": two.attestation.digest, "size": 1}
    forged = SignatureRef(store.put(_compact(sm)), sm["layers"][0]["digest"])
    rec = AttestationRecord(**{**record_for(two).__dict__, "signatures": (forged,)})
    with pytest.raises(SubjectMismatchError, match="signature is for") as e:
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)
    assert e.value.step == "subject"


def test_require_manifest_digest_unit() -> None:
    payload = parse_simple_signing(simple_signing_payload("x", "sha256:" + "a" * 64))
    require_manifest_digest(payload, "sha256:" + "a" * 64)
    with pytest.raises(SubjectMismatchError, match="signature is for"):
        require_manifest_digest(payload, "sha256:" + "b" * 64)


# -- the OCI subject field of attestation and signature manifests ---------------------


def test_attestation_manifest_that_refers_to_another_image_is_refused(world: World) -> None:
    publisher, _, trust = world
    a, b = make_image("dhi.io/python", seed="a"), make_image("dhi.io/python", seed="b")
    p = publisher.dhi_attestation(a.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)

    def to_b(doc: dict[str, Any]) -> None:
        doc["subject"] = b.ref.descriptor()

    rec, store = _resigned(publisher, p, to_b)
    with pytest.raises(SubjectMismatchError, match="referrer of another manifest") as e:
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)
    assert e.value.step == "subject" and "attestation manifest" in str(e.value)


def test_signature_manifest_that_refers_to_another_manifest_is_refused(world: World) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)
    rec, store = _resigned(publisher, p, lambda doc: None, sig_subject="sha256:" + "c" * 64)
    with pytest.raises(SubjectMismatchError, match="referrer of another manifest") as e:
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)
    assert "signature manifest" in str(e.value)


def test_sigstore_bundle_manifest_that_refers_to_another_image_is_refused(
    world: World,
) -> None:
    publisher, _, trust = world
    a, b = make_image("dhi.io/python", seed="a"), make_image("dhi.io/python", seed="b")
    p = publisher.bundle_attestation(a.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    store = store_of(p)
    doc = json.loads(p.attestation.data)
    doc["subject"] = b.ref.descriptor()
    rec = AttestationRecord(**{**record_for(p).__dict__, "manifest": store.put(_compact(doc))})
    with pytest.raises(SubjectMismatchError, match="referrer of another manifest"):
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)


# -- the statement subject of manifests without an OCI subject (BuildKit) -------------


def test_buildkit_provenance_of_another_platform_is_refused(world: World) -> None:
    publisher, _, trust = world
    a, b = make_image("dhi.io/python", seed="a"), make_image("dhi.io/python", seed="b")
    p = publisher.dhi_attestation(a.ref, PROVENANCE, slsa_provenance_v1(a.ref), sign=False)
    store = store_of(p)
    doc = json.loads(p.attestation.data)
    del doc["subject"]  # BuildKit lists attestations in the index, with no OCI subject
    manifest = store.put(_compact(doc))
    layer = doc["layers"][0]["digest"]

    def record(subject: str) -> AttestationRecord:
        return AttestationRecord(
            id=record_id("buildkit", subject, manifest, layer),
            layout="buildkit",
            image=subject,
            platform="linux/amd64",
            subject=subject,
            manifest=manifest,
            layer=layer,
            predicate_type=None,
            source="test",
            signatures=(),
        )

    ok = verify_attestation(record(a.ref.digest), blobs=store, trust=trust, at=NOW)
    assert ok.signer == "unsigned" and ok.predicate_type == PROVENANCE
    with pytest.raises(SubjectMismatchError, match="is not about") as e:
        verify_attestation(record(b.ref.digest), blobs=store, trust=trust, at=NOW)
    assert e.value.step == "subject"


# -- the DSSE signature of cosign .att attestations ------------------------------------


def test_cosign_att_signed_by_an_unpinned_key_is_refused(world: World) -> None:
    _, rekor, trust = world
    image = make_image("ghcr.io/org/app")
    attacker = TestPublisher(rekor=rekor)
    p = attacker.cosign_att(image.ref, [(CTRF_TESTS, ctrf_tests(["runs"]))], log=False)
    with pytest.raises(SignatureError, match="pinned publisher key") as e:
        verify_attestation(record_for(p), blobs=store_of(p), trust=trust, at=NOW)
    assert e.value.step == "signature"


def test_cosign_att_with_a_changed_statement_is_refused(world: World) -> None:
    publisher, _, trust = world
    image = make_image("ghcr.io/org/app")
    p = publisher.cosign_att(image.ref, [(CTRF_TESTS, ctrf_tests(["runs"]))], log=False)
    store = store_of(p)
    rec = record_for(p)
    env = json.loads(store.blobs[rec.layer])
    stmt = base64.b64decode(env["payload"]).replace(b'"passed"', b'"PASSED"')
    env["payload"] = base64.b64encode(stmt).decode()
    layer = store.put(_compact(env))
    manifest = json.loads(p.attestation.data)
    manifest["layers"][0]["digest"] = layer
    manifest["layers"][0]["size"] = len(store.blobs[layer])
    digest = store.put(_compact(manifest))
    forged = AttestationRecord(**{**rec.__dict__, "manifest": digest, "layer": layer})
    with pytest.raises(SignatureError, match="pinned publisher key"):
        verify_attestation(forged, blobs=store, trust=trust, at=NOW)


# -- duplicate top-level keys on the large-statement path --------------------------------


def _large_statement(top: list[tuple[str, Any]], filler: int = 70_000) -> bytes:
    predicate = {"components": [{"name": "x" * 60, "version": str(i)} for i in range(filler // 80)]}
    members = [*top, ("predicate", predicate)]
    body = ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members)
    return ("{" + body + "}").encode()


@pytest.mark.parametrize("dup", ["subject", "predicateType", "_type"])
def test_duplicate_key_before_a_large_predicate_is_refused(dup: str) -> None:
    a = [{"name": "a", "digest": {"sha256": "a" * 64}}]
    b = [{"name": "b", "digest": {"sha256": "b" * 64}}]
    values = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": a,
        "predicateType": "https://cyclonedx.org/bom/v1.6",
    }
    second = {"subject": b, "predicateType": "https://example.com/x", "_type": values["_type"]}
    top = [*values.items(), (dup, second[dup])]
    data = _large_statement(top)
    assert len(data) > 64 * 1024
    with pytest.raises(MalformedEvidenceError, match="duplicate") as e:
        parse_statement(data)
    assert e.value.step == "evidence format"
    # the control: the same statement without the duplicate parses
    assert parse_statement(_large_statement(list(values.items()))).subjects


# -- tests must have passed: a missing test report is a violation -----------------------


def test_require_passed_without_any_test_report_is_a_violation() -> None:
    policy = parse_policy(b"[tests]\nrequire_passed = true\n", source="t")
    outcome = evaluate_platform(
        policy,
        image="dhi.io/python",
        platform="linux/amd64",
        subject="sha256:" + "a" * 64,
        evidence=[Evidence("https://cyclonedx.org/bom/v1.6", {}, "absent", ())],
        at=NOW,
    )
    assert [(v.rule, v.message) for v in outcome.violations] == [
        ("tests passed", "no verified test report")
    ]


# -- second, independent inputs for the same checks ---------------------------------------


def test_attestation_manifest_subject_that_is_not_a_descriptor_is_refused(world: World) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)

    def as_string(doc: dict[str, Any]) -> None:
        doc["subject"] = image.ref.digest

    rec, store = _resigned(publisher, p, as_string)
    with pytest.raises(SubjectMismatchError, match="referrer of another manifest"):
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)


def test_sigstore_bundle_manifest_subject_without_digest_is_refused(world: World) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    p = publisher.bundle_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    store = store_of(p)
    doc = json.loads(p.attestation.data)
    del doc["subject"]["digest"]
    rec = AttestationRecord(**{**record_for(p).__dict__, "manifest": store.put(_compact(doc))})
    with pytest.raises(SubjectMismatchError, match="referrer of another manifest"):
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)


def test_signature_manifest_subject_that_is_a_list_is_refused(world: World) -> None:
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    store = store_of(p)
    rec = record_for(p)
    sm = json.loads(p.signature_manifest.data)  # type: ignore[union-attr]
    sm["subject"] = [sm["subject"]]
    forged = SignatureRef(store.put(_compact(sm)), rec.signatures[0].layer)
    rec = AttestationRecord(**{**rec.__dict__, "signatures": (forged,)})
    with pytest.raises(SubjectMismatchError, match="signature manifest is a referrer"):
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)


def test_publisher_signed_statement_about_another_platform_is_refused(world: World) -> None:
    """The attestation manifest is genuinely signed and refers to platform A; the
    statement it carries is about platform B."""
    publisher, _, trust = world
    a, b = make_image("dhi.io/python", seed="a"), make_image("dhi.io/python", seed="b")
    p = publisher.dhi_attestation(a.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)
    other = publisher.dhi_attestation(b.ref, CTRF_TESTS, ctrf_tests(["runs"]), log=False)
    b_layer = other.layer()

    def carry_b(doc: dict[str, Any]) -> None:
        doc["layers"][0]["digest"] = b_layer.digest
        doc["layers"][0]["size"] = b_layer.size

    rec, store = _resigned(publisher, p, carry_b)
    store.blobs[b_layer.digest] = b_layer.data
    rec = AttestationRecord(**{**rec.__dict__, "layer": b_layer.digest})
    with pytest.raises(SubjectMismatchError, match="is not about") as e:
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)
    assert e.value.step == "subject"


def test_cosign_att_of_another_image_is_refused(world: World) -> None:
    publisher, _, trust = world
    a, b = make_image("ghcr.io/org/app", seed="a"), make_image("ghcr.io/org/app", seed="b")
    p = publisher.cosign_att(b.ref, [(CTRF_TESTS, ctrf_tests(["runs"]))], log=False)
    rec = record_for(p, subject=a.ref.digest)
    with pytest.raises(SubjectMismatchError, match="is not about") as e:
        verify_attestation(rec, blobs=store_of(p), trust=trust, at=NOW)
    assert e.value.step == "subject"


def test_legacy_signature_without_subject_naming_another_manifest_is_refused(
    world: World,
) -> None:
    """A cosign ``.sig``-tag signature manifest has no OCI subject: only the payload says
    which manifest it signs."""
    publisher, _, trust = world
    image = make_image("dhi.io/python")
    one = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["one"]), log=False)
    two = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["two"]), log=False)
    store = store_of(one, two)
    sm = json.loads(one.signature_manifest.data)  # type: ignore[union-attr]
    del sm["subject"]
    forged = SignatureRef(store.put(_compact(sm)), sm["layers"][0]["digest"])
    rec = AttestationRecord(**{**record_for(two).__dict__, "signatures": (forged,)})
    with pytest.raises(SubjectMismatchError, match="signature is for"):
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)


def test_completion_from_another_log_is_refused(world: World) -> None:
    publisher, rekor, trust = world
    image = make_image("dhi.io/python")
    p = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    body = next(iter(p.log_entries[0].values()))
    entry = rekor.entry(body["logIndex"])
    for value in entry.values():
        value["logID"] = "ab" * 32
    completions = {(body["logID"], body["logIndex"]): json.dumps(entry).encode()}
    with pytest.raises(TransparencyLogError, match="not the signed entry"):
        verify_attestation(
            record_for(p), blobs=store_of(p), trust=trust, at=NOW, completions=completions
        )


def test_failed_test_in_a_report_violates_require_passed() -> None:
    policy = parse_policy(b"[tests]\nrequire_passed = true\n", source="t")
    report = ctrf_tests(["runs", "bad"], failing=["bad"])
    outcome = evaluate_platform(
        policy,
        image="dhi.io/python",
        platform="linux/amd64",
        subject="sha256:" + "a" * 64,
        evidence=[Evidence(CTRF_TESTS, report, "absent", ())],
        at=NOW,
    )
    assert [(v.rule, v.message) for v in outcome.violations] == [("tests passed", "1 failed: bad")]


# -- the Rekor entry records exactly this signature (CVE-2022-36056), one field at a time --


def _graft_entry(world: World, body_for: Any) -> tuple[AttestationRecord, MemoryBlobStore]:
    """Attestation ``p`` whose signature layer carries a genuine Rekor entry (SET and all)
    for ``body_for(payload, signature)``, logged in the same trusted log."""
    publisher, rekor, _ = world
    image = make_image("dhi.io/python").ref
    p = publisher.dhi_attestation(image, CTRF_TESTS, ctrf_tests(["a"]), log=False)
    assert p.simple_signing_payload is not None and p.signature is not None
    entry = rekor.add_entry(body_for(p.simple_signing_payload, p.signature))
    sm = json.loads(p.signature_manifest.data)  # type: ignore[union-attr]
    sm["layers"][0]["annotations"][BUNDLE_ANNOTATION] = legacy_bundle_annotation(entry)
    store = store_of(p)
    rec = record_for(p)
    ref = SignatureRef(store.put(_compact(sm)), rec.signatures[0].layer)
    return AttestationRecord(**{**rec.__dict__, "signatures": (ref,)}), store


def test_log_entry_for_another_artifact_digest_is_refused(world: World) -> None:
    publisher, _, trust = world
    rec, store = _graft_entry(world, lambda payload, sig: publisher.hashedrekord_body(b"x", sig))
    with pytest.raises(LogEntryBindingError, match="different artifact digest") as e:
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)
    assert e.value.step == "log entry binding"


def test_log_entry_for_another_signature_is_refused(world: World) -> None:
    publisher, _, trust = world

    def other_signature(payload: bytes, sig: bytes) -> bytes:
        again = publisher.sign(payload)  # ECDSA: another valid signature of the same bytes
        assert again != sig
        return publisher.hashedrekord_body(payload, again)

    rec, store = _graft_entry(world, other_signature)
    with pytest.raises(LogEntryBindingError, match="records a different signature"):
        verify_attestation(rec, blobs=store, trust=trust, at=NOW)


def test_grafted_entry_control(world: World) -> None:
    """The genuine body logged again verifies: the two refusals above are the binding's."""
    publisher, _, trust = world
    rec, store = _graft_entry(world, publisher.hashedrekord_body)
    assert verify_attestation(rec, blobs=store, trust=trust, at=NOW).tlog_status == "set-only"


# -- a refusal names the key that did sign, when the evidence records it ------------------


def test_unpinned_signer_is_named_from_its_log_entry(world: World) -> None:
    _, rekor, trust = world
    attacker = TestPublisher(rekor=rekor)
    image = make_image("dhi.io/python")
    logged = attacker.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(["runs"]))
    from dhi_offline.trust.keys import from_crypto

    attacker_id = from_crypto(attacker.public_key).key_id
    with pytest.raises(SignatureError) as e:
        verify_attestation(record_for(logged), blobs=store_of(logged), trust=trust, at=NOW)
    message = str(e.value)
    assert f"signed by key {attacker_id[:16]}" in message and "not pinned" in message
    pinned = trust.keyring.entries[0]
    assert f"pinned: {pinned.name} {pinned.key_id[:12]}" in message
    unlogged = attacker.cosign_att(image.ref, [(CTRF_TESTS, ctrf_tests(["x"]))], log=False)
    with pytest.raises(SignatureError, match="not named by the evidence"):
        verify_attestation(record_for(unlogged), blobs=store_of(unlogged), trust=trust, at=NOW)
    att = attacker.cosign_att(image.ref, [(CTRF_TESTS, ctrf_tests(["y"]))])
    with pytest.raises(SignatureError, match=f"signed by key {attacker_id[:16]}"):
        verify_attestation(record_for(att), blobs=store_of(att), trust=trust, at=NOW)
