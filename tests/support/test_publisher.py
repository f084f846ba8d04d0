"""The test publisher's three layouts verify with dhi_offline's own modules."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from dhi_offline.errors import LogEntryBindingError, SignatureError
from dhi_offline.evidence.dsse import envelope_from_bytes, verify_envelope
from dhi_offline.evidence.intoto import parse_statement
from dhi_offline.evidence.sigstore_bundle import parse_bundle
from dhi_offline.evidence.simplesigning import parse_simple_signing, require_manifest_digest
from dhi_offline.tlog.body import SignedContent, verify_entry_body
from dhi_offline.tlog.rekor_client import (
    RekorClient,
    entry_to_bundle_tlog_entry,
    verify_rekor_entry,
)
from dhi_offline.tlog.set import verify_signed_entry_timestamp
from dhi_offline.trust.keys import PublicKey, from_crypto, load_pem
from dhi_offline.trust.trusted_root import LogInstance, TrustedRoot
from dhi_offline.verify.sigstore import Artifact, KeylessPolicy, verify_sigstore_bundle
from tests.conftest import CONFORMANCE
from tests.support.publisher import (
    ANN_BUNDLE_CONTENT,
    ANN_BUNDLE_PREDICATE_TYPE,
    ANN_COSIGN_BUNDLE,
    ANN_COSIGN_PREDICATE_TYPE,
    ANN_COSIGN_SIGNATURE,
    ANN_PREDICATE_TYPE_LAYER,
    BUNDLE_V01_MEDIA_TYPE,
    BUNDLE_V03_MEDIA_TYPE,
    COSIGN_SIG_ARTIFACT_TYPE,
    CTRF_TESTS,
    CYCLONEDX,
    DSSE_MEDIA_TYPE,
    EMPTY_DIGEST,
    EMPTY_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    INTOTO_VULNS,
    OCI_INDEX,
    OPENVEX,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SLSA_PROVENANCE_V1,
    FakeImage,
    Published,
    TestPublisher,
    ctrf_tests,
    cyclonedx_sbom,
    intoto_vulns,
    make_image,
    openvex,
    pae,
    referrers_index,
    sha256_digest,
    slsa_provenance_v1,
)
from tests.support.rekor_double import RekorDouble

CLOCK = 1_750_000_000


@pytest.fixture
def rekor() -> RekorDouble:
    d = RekorDouble(clock=lambda: CLOCK, index_offset=500)
    d.add_entry(b'{"someone":"else"}')  # so proofs are not trivial
    d.add_entry(b'{"someone":"else, again"}')
    return d


@pytest.fixture
def publisher(rekor: RekorDouble) -> TestPublisher:
    return TestPublisher(rekor=rekor)


@pytest.fixture
def image() -> FakeImage:
    return make_image("dhi.io/python", seed="3.13")


def pub_key(publisher: TestPublisher) -> PublicKey:
    return from_crypto(publisher.public_key)


def tlog(rekor: RekorDouble) -> LogInstance:
    return TrustedRoot.from_bytes(rekor.trusted_root_json()).tlogs[0]


def check_digests(pub: Published) -> None:
    """Every descriptor in every manifest names a blob we have, with its size."""
    have = pub.objects()
    for m in pub.manifests:
        doc = m.doc
        for d in [doc["config"], *doc["layers"]]:
            media_type, data = have[d["digest"]]
            assert media_type == d["mediaType"]
            assert sha256_digest(data) == d["digest"]
            assert len(data) == d["size"]


def legacy_bundle(annotation: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(annotation)
    assert set(doc) == {"SignedEntryTimestamp", "Payload"}
    assert set(doc["Payload"]) == {"body", "integratedTime", "logIndex", "logID"}
    return doc


def verify_legacy_set(doc: dict[str, Any], rekor: RekorDouble) -> bytes:
    p = doc["Payload"]
    verify_signed_entry_timestamp(
        body_b64=p["body"],
        integrated_time=p["integratedTime"],
        log_index=p["logIndex"],
        log_id=bytes.fromhex(p["logID"]),
        signature=base64.b64decode(doc["SignedEntryTimestamp"]),
        log=tlog(rekor),
    )
    return base64.b64decode(p["body"])


# --------------------------------------------------------------- basics


def test_empty_descriptor_and_pae() -> None:
    assert sha256_digest(b"{}") == EMPTY_DIGEST
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_fake_image(image: FakeImage) -> None:
    idx = image.index.doc
    assert image.index.media_type == OCI_INDEX
    assert idx["manifests"][0]["digest"] == image.manifest.digest == image.ref.digest
    assert image.ref.size == image.manifest.size
    assert {b.digest for b in image.blobs} == {
        image.manifest.doc["config"]["digest"],
        image.manifest.doc["layers"][0]["digest"],
    }


# --------------------------------------------------------------- (a) DHI layout


def test_dhi_layout_logged(publisher: TestPublisher, rekor: RekorDouble, image: FakeImage) -> None:
    pub = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests())
    check_digests(pub)
    att, sig_m = pub.attestation, pub.signature_manifest
    assert sig_m is not None

    # the attestation manifest: empty config, one bare in-toto statement layer
    doc = att.doc
    assert doc["artifactType"] == IN_TOTO_MEDIA_TYPE
    assert doc["config"] == {"mediaType": EMPTY_MEDIA_TYPE, "size": 2, "digest": EMPTY_DIGEST}
    assert doc["subject"] == image.ref.descriptor()
    assert att.subject == image.ref.digest
    (layer,) = doc["layers"]
    assert layer["mediaType"] == IN_TOTO_MEDIA_TYPE
    assert layer["annotations"] == {ANN_PREDICATE_TYPE_LAYER: CTRF_TESTS}
    stmt = parse_statement(pub.layer().data)
    stmt.require_subject(image.ref.digest)
    assert stmt.predicate_type == CTRF_TESTS
    assert stmt.raw == pub.statements[0]

    # the signature manifest: a referrer of the attestation manifest
    sdoc = sig_m.doc
    assert sdoc["artifactType"] == COSIGN_SIG_ARTIFACT_TYPE
    assert sdoc["config"]["mediaType"] == COSIGN_SIG_ARTIFACT_TYPE
    assert sdoc["subject"]["digest"] == att.digest
    assert sdoc["subject"]["size"] == att.size
    assert sig_m.subject == att.digest
    (slayer,) = sdoc["layers"]
    assert slayer["mediaType"] == SIMPLE_SIGNING_MEDIA_TYPE
    payload = pub.layer(sig_m).data
    assert payload == pub.simple_signing_payload
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"dhi.io/python"},"image":'
        b'{"docker-manifest-digest":"' + att.digest.encode() + b'"},"type":'
        b'"cosign container image signature"},"optional":null}'
    )
    ss = parse_simple_signing(payload)
    require_manifest_digest(ss, att.digest)

    # the signature verifies with the publisher key (loaded as users load it: PEM)
    signature = base64.b64decode(slayer["annotations"][ANN_COSIGN_SIGNATURE])
    assert signature == pub.signature
    key = load_pem(publisher.public_key_pem)
    key.verify(signature, payload)
    with pytest.raises(SignatureError):
        key.verify(signature, payload.replace(b"dhi.io", b"evil.io"))

    # the legacy bundle: SET by the double's key, hashedrekord body bound to this signature
    bundle = legacy_bundle(slayer["annotations"][ANN_COSIGN_BUNDLE])
    body = verify_legacy_set(bundle, rekor)
    assert bundle["Payload"]["logIndex"] == 502
    content = SignedContent(
        signature=signature, key=key, artifact_digest=hashlib.sha256(payload).digest()
    )
    verify_entry_body(kind="hashedrekord", version="0.0.1", body=body, content=content)
    other = SignedContent(
        signature=signature, key=key, artifact_digest=hashlib.sha256(b"x").digest()
    )
    with pytest.raises(LogEntryBindingError):
        verify_entry_body(kind="hashedrekord", version="0.0.1", body=body, content=other)

    # the double holds exactly that entry, with a proof
    ((_, entry),) = pub.log_entries[0].items()
    assert base64.b64decode(entry["body"]) == body
    assert rekor.size == 3


def test_dhi_layout_unlogged(
    publisher: TestPublisher, rekor: RekorDouble, image: FakeImage
) -> None:
    pub = publisher.dhi_attestation(image.ref, CYCLONEDX, cyclonedx_sbom(image.ref, 4), log=False)
    check_digests(pub)
    assert pub.signature_manifest is not None
    (slayer,) = pub.signature_manifest.doc["layers"]
    assert set(slayer["annotations"]) == {ANN_COSIGN_SIGNATURE}
    assert pub.log_entries == ()
    assert rekor.size == 2
    pub_key(publisher).verify(
        base64.b64decode(slayer["annotations"][ANN_COSIGN_SIGNATURE]),
        pub.layer(pub.signature_manifest).data,
    )


def test_dhi_layout_without_rekor_or_signature(image: FakeImage) -> None:
    publisher = TestPublisher()  # no Rekor: never logs
    pub = publisher.dhi_attestation(image.ref, SLSA_PROVENANCE_V1, slsa_provenance_v1(image.ref))
    assert pub.log_entries == ()
    unsigned = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(), sign=False)
    assert unsigned.signature_manifest is None
    assert len(unsigned.blobs) == 2
    with pytest.raises(ValueError, match="no Rekor"):
        publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests(), log=True)


# --------------------------------------------------------------- (b) cosign .att layout


def test_cosign_att_layout(publisher: TestPublisher, rekor: RekorDouble, image: FakeImage) -> None:
    vulns = intoto_vulns({"CVE-2024-0001": "HIGH", "CVE-2024-0002": "LOW"})
    pub = publisher.cosign_att(image.ref, [(INTOTO_VULNS, vulns), (CTRF_TESTS, ctrf_tests())])
    check_digests(pub)
    m = pub.attestation
    assert m.tag == f"sha256-{image.ref.hex}.att"
    assert m.subject is None
    assert "subject" not in m.doc
    assert len(m.layer_descriptors()) == 2
    key = pub_key(publisher)
    for i, desc in enumerate(m.layer_descriptors()):
        assert desc["mediaType"] == DSSE_MEDIA_TYPE
        ann = desc["annotations"]
        assert ann[ANN_COSIGN_SIGNATURE] == ""
        assert ann[ANN_COSIGN_PREDICATE_TYPE] == pub.predicate_types[i]
        blob = pub.layer(m, i).data
        assert blob == pub.envelopes[i]
        env = envelope_from_bytes(blob)
        sig = verify_envelope(env, key)
        stmt = parse_statement(env.payload)
        stmt.require_subject(image.ref.digest)
        assert stmt.predicate_type == pub.predicate_types[i]

        body = verify_legacy_set(legacy_bundle(ann[ANN_COSIGN_BUNDLE]), rekor)
        content = SignedContent(signature=sig.sig, key=key, envelope=env, envelope_bytes=blob)
        verify_entry_body(kind="intoto", version="0.0.1", body=body, content=content)
        spec = json.loads(body)["spec"]
        assert spec["content"]["hash"]["value"] == hashlib.sha256(blob).hexdigest()
        assert base64.b64decode(spec["publicKey"]) == publisher.public_key_pem
        moved = SignedContent(signature=sig.sig, key=key, envelope=env, envelope_bytes=blob + b" ")
        with pytest.raises(LogEntryBindingError):
            verify_entry_body(kind="intoto", version="0.0.1", body=body, content=moved)
    assert rekor.size == 4


# --------------------------------------------------------------- (c) sigstore bundle layout


def test_bundle_layout_with_proof(
    publisher: TestPublisher, rekor: RekorDouble, image: FakeImage
) -> None:
    pub = publisher.bundle_attestation(
        image.ref, OPENVEX, openvex(image.ref, [("CVE-2024-0001", "not_affected")])
    )
    check_digests(pub)
    doc = pub.attestation.doc
    assert doc["artifactType"] == BUNDLE_V03_MEDIA_TYPE
    assert doc["config"]["mediaType"] == EMPTY_MEDIA_TYPE
    assert doc["config"]["digest"] == EMPTY_DIGEST
    assert doc["subject"] == image.ref.descriptor()
    assert doc["annotations"][ANN_BUNDLE_CONTENT] == "dsse-envelope"
    assert doc["annotations"][ANN_BUNDLE_PREDICATE_TYPE] == OPENVEX
    (layer,) = doc["layers"]
    assert layer["mediaType"] == BUNDLE_V03_MEDIA_TYPE
    assert pub.layer().data == pub.bundle

    bundle = parse_bundle(pub.layer().data)
    assert bundle.media_type == BUNDLE_V03_MEDIA_TYPE
    assert bundle.key_hint == publisher.key_hint
    (entry,) = bundle.tlog_entries
    assert (entry.kind, entry.version) == ("dsse", "0.0.1")
    assert entry.inclusion_proof is not None
    assert entry.inclusion_proof.tree_size == 3
    result = verify_sigstore_bundle(
        bundle,
        key=pub_key(publisher),
        trusted_root=TrustedRoot.from_bytes(rekor.trusted_root_json()),
        artifact=Artifact.from_digest(image.ref.digest),
    )
    assert result.statement is not None
    assert result.statement.predicate_type == OPENVEX
    assert result.log_entries[0].inclusion_proof
    assert result.log_entries[0].log_index == 502

    # another image's digest is refused
    with pytest.raises(Exception, match="subject"):
        verify_sigstore_bundle(
            bundle,
            key=pub_key(publisher),
            trusted_root=TrustedRoot.from_bytes(rekor.trusted_root_json()),
            artifact=Artifact.from_digest(make_image("other").ref.digest),
        )


def test_bundle_set_only_is_completed_from_the_served_log(
    publisher: TestPublisher, rekor: RekorDouble, image: FakeImage
) -> None:
    pub = publisher.bundle_attestation(
        image.ref, CYCLONEDX, cyclonedx_sbom(image.ref, 2), tlog="set-only"
    )
    root = TrustedRoot.from_bytes(rekor.trusted_root_json())
    bundle = parse_bundle(pub.layer().data)
    assert bundle.media_type == BUNDLE_V01_MEDIA_TYPE
    (entry,) = bundle.tlog_entries
    assert entry.inclusion_proof is None
    assert entry.signed_entry_timestamp is not None
    artifact = Artifact.from_digest(image.ref.digest)
    key = pub_key(publisher)
    result = verify_sigstore_bundle(bundle, key=key, trusted_root=root, artifact=artifact)
    assert not result.log_entries[0].inclusion_proof

    # the log grows; the exporter completes the entry with a proof fetched by index
    rekor.add_entry(b'{"later":1}')
    with rekor.serve() as url, RekorClient(url) as client:
        fetched = client.entry_by_index(entry.log_index)
        served_root = TrustedRoot.from_bytes(rekor.trusted_root_json())
    assert served_root.tlogs[0].base_url == url
    verify_rekor_entry(fetched, root.tlogs[0], expected_body=entry.body)
    doc = json.loads(pub.layer().data)
    doc["mediaType"] = BUNDLE_V03_MEDIA_TYPE
    doc["verificationMaterial"]["tlogEntries"] = [entry_to_bundle_tlog_entry(fetched)]
    completed = parse_bundle(json.dumps(doc).encode())
    (centry,) = completed.tlog_entries
    assert centry.inclusion_proof is not None
    assert centry.inclusion_proof.tree_size == 4
    result = verify_sigstore_bundle(completed, key=key, trusted_root=root, artifact=artifact)
    assert result.log_entries[0].inclusion_proof


def test_bundle_unlogged(publisher: TestPublisher, rekor: RekorDouble, image: FakeImage) -> None:
    pub = publisher.bundle_attestation(image.ref, CTRF_TESTS, ctrf_tests(), tlog="none")
    bundle = parse_bundle(pub.layer().data)
    assert bundle.tlog_entries == ()
    assert rekor.size == 2
    verify_sigstore_bundle(
        bundle,
        key=pub_key(publisher),
        trusted_root=TrustedRoot.from_bytes(rekor.trusted_root_json()),
        artifact=Artifact.from_digest(image.ref.digest),
        require_tlog=False,
        require_time=False,
    )


def test_referrers_index(publisher: TestPublisher, image: FakeImage) -> None:
    a = publisher.dhi_attestation(image.ref, CTRF_TESTS, ctrf_tests())
    b = publisher.bundle_attestation(image.ref, CTRF_TESTS, ctrf_tests())
    index = json.loads(referrers_index([a.attestation, b.attestation]))
    assert index["mediaType"] == OCI_INDEX
    assert [d["artifactType"] for d in index["manifests"]] == [
        IN_TOTO_MEDIA_TYPE,
        BUNDLE_V03_MEDIA_TYPE,
    ]
    assert index["manifests"][1]["annotations"][ANN_BUNDLE_PREDICATE_TYPE] == CTRF_TESTS
    assert a.signature_manifest is not None
    assert a.signature_manifest.descriptor()["artifactType"] == COSIGN_SIG_ARTIFACT_TYPE


# --------------------------------------------------------------- trusted root


def test_trusted_root_with_production_material(rekor: RekorDouble) -> None:
    root = TrustedRoot.from_bytes(rekor.trusted_root_json(production=True))
    assert root.tlogs[0].log_id == rekor.log_id
    assert root.tlogs[0].key is not None
    assert len(root.tlogs) == 3
    assert root.certificate_authorities
    assert root.ctlogs
    # a real keyless bundle (production Rekor v1 + Fulcio) still verifies with it
    case = CONFORMANCE / "happy-path-v0.3"
    bundle = parse_bundle((case / "bundle.sigstore.json").read_bytes())
    verify_sigstore_bundle(
        bundle,
        artifact=Artifact.from_bytes((CONFORMANCE / "a.txt").read_bytes()),
        trusted_root=root,
        policy=KeylessPolicy(
            identity="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-"
            "beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
            issuer="https://token.actions.githubusercontent.com",
        ),
    )


def test_trusted_root_with_extra_logs(rekor: RekorDouble) -> None:
    other = RekorDouble()
    root = TrustedRoot.from_bytes(rekor.trusted_root_json(other))
    assert [t.log_id for t in root.tlogs] == [rekor.log_id, other.log_id]
    assert root.tlogs[0].base_url == f"https://{rekor.host}"


# --------------------------------------------------------------- predicates


def test_ctrf_predicate() -> None:
    ok = ctrf_tests()
    assert ok["reportFormat"] == "CTRF"
    s = ok["results"]["summary"]
    assert (s["tests"], s["passed"], s["failed"], s["skipped"]) == (5, 5, 0, 0)
    assert s["stop"] - s["start"] == 41  # seconds, as in DHI's example
    assert s["start"] < 10**10
    t = ok["results"]["tests"][0]
    assert base64.b64decode(t["extra"]["stdout"]).startswith(b"running ")
    bad = ctrf_tests(failing=["runs-as-nonroot"], skipped=["image-starts"])
    s = bad["results"]["summary"]
    assert (s["passed"], s["failed"], s["skipped"]) == (3, 1, 1)
    statuses = {t["name"]: t["status"] for t in bad["results"]["tests"]}
    assert statuses["runs-as-nonroot"] == "failed"
    with pytest.raises(ValueError, match="unknown"):
        ctrf_tests(failing=["nope"])


def test_other_predicates(image: FakeImage) -> None:
    sbom = cyclonedx_sbom(image.ref, 7)
    assert sbom["specVersion"] == "1.6"
    assert len(sbom["components"]) == 7
    assert sbom["metadata"]["component"]["version"] == image.ref.digest

    vulns = intoto_vulns([("CVE-2024-1", "CRITICAL"), ("CVE-2024-2", "MEDIUM")])
    assert [(r["id"], r["severity"][0]["score"]) for r in vulns["scanner"]["result"]] == [
        ("CVE-2024-1", "CRITICAL"),
        ("CVE-2024-2", "MEDIUM"),
    ]

    vex = openvex(
        image.ref,
        [("CVE-2024-1", "not_affected"), ("CVE-2024-2", "fixed"), ("CVE-2024-3", "affected")],
    )
    assert vex["@context"] == OPENVEX
    assert [s["status"] for s in vex["statements"]] == ["not_affected", "fixed", "affected"]
    assert vex["statements"][0]["justification"]
    assert vex["statements"][2]["action_statement"]
    product = vex["statements"][0]["products"][0]
    assert product["hashes"]["sha-256"] == image.ref.hex
    assert image.ref.hex in product["@id"]
    with pytest.raises(ValueError, match="status"):
        openvex(image.ref, [("CVE-1", "maybe")])

    prov = slsa_provenance_v1(image.ref, materials=[("pkg:apk/x@1", "ab" * 32)])
    assert prov["buildDefinition"]["resolvedDependencies"] == [
        {"uri": "pkg:apk/x@1", "digest": {"sha256": "ab" * 32}}
    ]
    assert prov["runDetails"]["builder"]["id"]
