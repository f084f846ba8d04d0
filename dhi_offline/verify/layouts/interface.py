"""What an evidence layout is: how attestations of one kind are stored in a registry.

A layout is a plugin with two sides:

- connected (export): which layers of a referrer or tagged manifest are its
  attestations (:meth:`Layout.recognises`), what else it must fetch for them
  (:meth:`Layout.signatures`), and which transparency-log entries Rekor must complete
  (:meth:`Layout.log_entries`);
- host (import, offline): :meth:`Layout.verify`, the verification plan of
  ``dhi_offline.verify.attestation`` for this layout.

This module imports no network code: discovery is handed a
:class:`~dhi_offline.oci.source.Source` (a protocol, named here for typing only), so the
host side can import every layout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from dhi_offline.evidence.intoto import Prepared, Statement
from dhi_offline.evidence.records import (
    AttestationRecord,
    BlobStore,
    MemoryBlobStore,
    SignatureRef,
    record_id,
)
from dhi_offline.oci.content import Fetched
from dhi_offline.trust.keyring import Keyring
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.layouts import fetch
from dhi_offline.verify.tlog import VerifiedLogEntry

if TYPE_CHECKING:  # a protocol: importing oci.source at run time would pull in the client
    from dhi_offline.oci.source import Source

TlogStatus = Literal["inclusion-proof", "set-only", "absent"]


@dataclass(frozen=True)
class PublisherTrust:
    """What the verifier trusts for publisher evidence."""

    keyring: Keyring
    trusted_root: TrustedRoot
    last_signer: list[str] = field(default_factory=list, compare=False, repr=False)
    """Key id that verified the previous signature: tried first (a bundle's attestations
    usually share one signer); every key is still tried before a signature is refused."""


@dataclass(frozen=True)
class AttestationResult:
    """A verified attestation."""

    record: AttestationRecord
    statement: Statement
    signer: str
    """Keyring entry name, or "unsigned" for BuildKit attestations."""
    key_id: str | None
    signing_times: tuple[datetime, ...]
    log_entries: tuple[VerifiedLogEntry, ...]

    @property
    def predicate_type(self) -> str:
        """The predicate type of the signed statement."""
        return self.statement.predicate_type

    @property
    def tlog_status(self) -> TlogStatus:
        """How the transparency log vouches for this attestation."""
        if any(e.inclusion_proof for e in self.log_entries):
            return "inclusion-proof"
        if self.log_entries:
            return "set-only"
        return "absent"


class LogEntryRef(NamedTuple):
    """A SET-only transparency-log entry the evidence carries, for Rekor to complete."""

    log_id: bytes
    log_index: int
    body: bytes
    """The entry body the evidence signed (Rekor's answer must carry exactly this)."""


@dataclass(frozen=True)
class Found:
    """Where discovery found a manifest: what the records read from it are about."""

    source: Source
    """Where the manifest, its layers and anything it refers to are read from."""
    store: MemoryBlobStore
    """Every manifest and blob read is kept here byte-exact."""
    image: str
    """Digest of the image as referenced (index or single manifest)."""
    platform: str | None
    subject: str
    """The platform manifest digest the attestations must be about."""
    via: str
    """How the manifest was found (``referrers API``, ``cosign .att tag``, ``index``...)."""


def annotation(desc: Mapping[str, Any], key: str) -> str | None:
    """The string annotation ``key`` of a descriptor or manifest, or None.

    None as well when the annotations are not an object or the value is not a string
    (OCI annotations are strings; anything else says nothing).
    """
    ann = desc.get("annotations")
    value = ann.get(key) if isinstance(ann, dict) else None
    return value if isinstance(value, str) else None


def layer_with_digest(manifest: Mapping[str, Any], digest: str) -> dict[str, Any] | None:
    """The first layer descriptor of ``manifest`` with ``digest``, or None."""
    layers = manifest.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and layer.get("digest") == digest:
            return layer
    return None


class Layout(ABC):
    """One way attestations are stored: recognised and fetched at export, verified offline.

    A new layout is one module with a subclass and one line in ``LAYOUTS``
    (``dhi_offline/verify/layouts/__init__.py``).
    """

    name: ClassVar[str]
    """The ``layout`` of the records it makes, declared once, by the subclass (record ids
    hash it: never rename); ``LAYOUTS`` registers it with ``evidence.records``."""
    in_referrers: ClassVar[bool] = True
    """Whether discovery looks for it among referrer and tagged manifests (BuildKit's
    attestations are found in the image index instead)."""

    @abstractmethod
    def recognises(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> bool:
        """Whether ``layer`` of ``manifest`` is an attestation of this layout, by content."""

    @abstractmethod
    def predicate_type(self, manifest: Mapping[str, Any], layer: Mapping[str, Any]) -> str | None:
        """The predicate type the registry declares for it (unverified, for the report)."""

    def signatures(self, found: Found, fetched: Fetched) -> tuple[SignatureRef, ...]:
        """Signatures stored apart from the attestation manifest, fetched into the store."""
        return ()

    def record(
        self, found: Found, fetched: Fetched, manifest: Mapping[str, Any], layer: Mapping[str, Any]
    ) -> AttestationRecord:
        """Fetch the attestation layer (and its signatures) and record it.

        Raises:
            DhiError: a registry or layout failure, or content not matching its digest.
        """
        digest = str(layer.get("digest"))
        found.store.blobs[digest] = found.source.blob(digest, fetch.declared_size(layer))
        return AttestationRecord(
            id=record_id(self.name, found.subject, fetched.digest, digest),
            layout=self.name,
            image=found.image,
            platform=found.platform,
            subject=found.subject,
            manifest=fetched.digest,
            layer=digest,
            predicate_type=self.predicate_type(manifest, layer),
            source=f"{found.source.description} ({found.via})",
            signatures=self.signatures(found, fetched),
        )

    def log_entries(self, record: AttestationRecord, blobs: BlobStore) -> list[LogEntryRef]:
        """Every SET-only log entry ``record`` carries (Rekor adds inclusion proofs).

        Raises:
            DhiError: malformed evidence (verification reports it).
        """
        return []

    @abstractmethod
    def verify(
        self,
        record: AttestationRecord,
        *,
        blobs: BlobStore,
        trust: PublisherTrust,
        at: datetime,
        completions: Mapping[tuple[str, int], bytes],
        prepared: Prepared | None,
    ) -> AttestationResult:
        """Verify one record of this layout, offline (``verify.attestation``'s plan).

        Raises:
            VerificationError: a subclass naming the failed step.
            DhiError: malformed evidence (the caller reports it as such).
        """
