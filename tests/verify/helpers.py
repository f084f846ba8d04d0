"""Shared by the attestation tests: a publisher with a Rekor double and the trust that
pins it, and records and blob stores for what the publisher wrote."""

from __future__ import annotations

from dhi_offline.evidence.records import AttestationRecord, MemoryBlobStore, SignatureRef, record_id
from dhi_offline.trust.keyring import Keyring, KeyringEntry
from dhi_offline.trust.keys import from_crypto
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.attestation import PublisherTrust
from tests.support.publisher import Published, TestPublisher
from tests.support.rekor_double import RekorDouble


def make_world() -> tuple[TestPublisher, RekorDouble, PublisherTrust]:
    """A publisher logging to a Rekor double, and trust pinning exactly its key."""
    rekor = RekorDouble()
    publisher = TestPublisher(rekor=rekor)
    ring = Keyring("test", (KeyringEntry("publisher", from_crypto(publisher.public_key)),))
    trust = PublisherTrust(
        keyring=ring, trusted_root=TrustedRoot.from_bytes(rekor.trusted_root_json())
    )
    return publisher, rekor, trust


def store_of(*published: Published) -> MemoryBlobStore:
    store = MemoryBlobStore()
    for p in published:
        for digest, (_, data) in p.objects().items():
            store.blobs[digest] = data
    return store


def record_for(
    p: Published, *, subject: str | None = None, layer_index: int = 0
) -> AttestationRecord:
    att = p.attestation
    layer = att.layer_descriptors()[layer_index]["digest"]
    layout = {"dhi": "dhi-scout"}.get(p.layout, p.layout)
    sigs: tuple[SignatureRef, ...] = ()
    if p.signature_manifest is not None:
        sm = p.signature_manifest
        sigs = (SignatureRef(sm.digest, sm.layer_descriptors()[0]["digest"]),)
    subj = subject or p.subject.digest
    return AttestationRecord(
        id=record_id(layout, subj, att.digest, layer),
        layout=layout,
        image=p.subject.digest,
        platform="linux/amd64",
        subject=subj,
        manifest=att.digest,
        layer=layer,
        predicate_type=None,
        source="test",
        signatures=sigs,
    )
