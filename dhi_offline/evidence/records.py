"""Evidence records: where each attestation of an image was found and what it consists of.

A record only *points* at raw manifests and blobs (by digest) kept byte-exact beside it;
it asserts nothing the verifier takes on trust. The verifier re-reads every pointed-to
byte, re-checks every digest and re-verifies every signature.

Layouts (see ``docs/format.md``):

- ``dhi-scout``: an attestation manifest whose layer is a bare in-toto statement, signed
  by cosign signatures that are referrers of the attestation manifest (Docker Hardened
  Images / Docker Scout);
- ``cosign-att``: a DSSE envelope layer of a cosign ``.att`` manifest (or of an
  attestation stored as a referrer by ``cosign attest --registry-referrers-mode``);
- ``sigstore-bundle``: a sigstore bundle stored as a referrer (cosign 3, GitHub);
- ``buildkit``: an unsigned BuildKit attestation manifest inside the image index.

Each layout's name is declared once, in its module under ``dhi_offline/verify/layouts/``,
and registered in one place: ``LAYOUTS`` in ``dhi_offline/verify/layouts/__init__.py``
hands the names to :func:`register_layout_names`. This module (below ``verify/`` in
the package layering) checks record files against those names when it parses them: an
unknown layout is refused at parse time, before anything is verified.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dhi_offline.encoding import loads_json, require_dict, require_int, require_str
from dhi_offline.errors import MalformedEvidenceError

EVIDENCE_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_LAYOUT_NAMES: set[str] = set()
"""The layouts a record may name, as registered by ``dhi_offline.verify.layouts``."""


def register_layout_names(names: Iterable[str]) -> None:
    """Accept records of the layouts ``names`` (called by the layout registry only).

    Raises:
        ValueError: a name is not a non-empty string.
    """
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an evidence layout needs a non-empty name, not {name!r}")
        _LAYOUT_NAMES.add(name)


def layout_names() -> frozenset[str]:
    """The layouts a record may name (empty until ``dhi_offline.verify.layouts`` is
    imported)."""
    return frozenset(_LAYOUT_NAMES)


def _check_layout(layout: str) -> str:
    if layout in _LAYOUT_NAMES:
        return layout
    if not _LAYOUT_NAMES:  # a caller that never imported the registry: a bug, not evidence
        raise RuntimeError(
            "no evidence layout is registered: import dhi_offline.verify.layouts "
            "before parsing evidence records"
        )
    raise MalformedEvidenceError(f"unknown attestation layout {layout!r}")


class BlobStore(Protocol):
    """Content-addressed bytes: ``get`` returns data whose digest is ``digest``."""

    def get(self, digest: str) -> bytes:
        """The bytes for ``digest``; raises MalformedEvidenceError when absent or wrong."""
        ...


def check_digest(digest: str, data: bytes) -> None:
    """``data`` must hash to ``digest`` (``sha256:<hex>``).

    Raises:
        MalformedEvidenceError: another digest algorithm, or different bytes.
    """
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64:
        raise MalformedEvidenceError(f"unsupported digest {digest!r}")
    if hashlib.sha256(data).hexdigest() != hexpart:
        raise MalformedEvidenceError(f"content stored as {digest[:19]}… has a different digest")


@dataclass
class MemoryBlobStore:
    """A dict-backed store (export side)."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes for ``digest``."""
        data = self.blobs.get(digest)
        if data is None:
            raise MalformedEvidenceError(f"{digest[:19]}… is not in the evidence")
        return data


@dataclass(frozen=True)
class DirectoryBlobStore:
    """Blobs under ``root/sha256/<hex>`` (an opened bundle), or in ``memory``.

    A blob's name is the claim the verifier relies on: every read is hashed, unless
    ``checked`` says the bytes were already checked against their names.
    """

    root: Path
    memory: Mapping[str, bytes] = field(default_factory=dict)
    """Hex digest -> bytes of the blobs the reader kept in memory (consulted first)."""
    checked: bool = False
    """Whether every blob, in ``memory`` or under ``root``, was checked to hash to its
    name when it was written: the bundle reader checks each member against the signed
    manifest (which names a blob by its sha256) as it writes it into the private
    work directory it created. Then reads are not hashed again (for a 16 MB SBOM,
    ~9 ms of the main process: docs/performance.md). The verifier's own work
    directory is the only writer; anyone who can write there can also change the
    verifier's code."""

    def get(self, digest: str) -> bytes:
        """The bytes for ``digest``, checked against it."""
        alg, _, hexpart = digest.partition(":")
        if alg != "sha256" or not _HEX64.fullmatch(hexpart):
            raise MalformedEvidenceError(f"unsupported digest {digest!r}")
        data = self.memory.get(hexpart)
        if data is None:
            try:
                data = (self.root / "sha256" / hexpart).read_bytes()
            except OSError as e:
                raise MalformedEvidenceError(f"{digest[:19]}… is not in the evidence") from e
        if not self.checked:
            check_digest(digest, data)
        return data


@dataclass(frozen=True)
class SignatureRef:
    """A cosign signature manifest and its simple-signing layer (layout ``dhi-scout``)."""

    manifest: str
    layer: str

    def to_json(self) -> dict[str, str]:
        """JSON form."""
        return {"manifest": self.manifest, "layer": self.layer}


@dataclass(frozen=True)
class TlogCompletion:
    """A Rekor entry fetched at export time to add an inclusion proof to a SET-only entry."""

    log_id: str
    """Hex SHA-256 of the log key."""
    log_index: int
    path: str
    """Member path of the exact Rekor API response."""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"logId": self.log_id, "logIndex": self.log_index, "path": self.path}


@dataclass(frozen=True)
class AttestationRecord:
    """One attestation of one image platform, as found at export time."""

    id: str
    layout: str
    """The name of the layout that stores it (one of :func:`layout_names`)."""
    image: str
    """Digest of the image as referenced (index or single manifest)."""
    platform: str | None
    subject: str
    """The digest the statement must be about (the platform manifest)."""
    manifest: str
    layer: str
    predicate_type: str | None
    """As declared by annotations; only the signed statement's value is trusted."""
    source: str
    signatures: tuple[SignatureRef, ...] = ()
    exporter_status: str = "verified"
    exporter_problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (keys sorted when the index is serialized)."""
        return {
            "id": self.id,
            "layout": self.layout,
            "image": self.image,
            "platform": self.platform,
            "subject": self.subject,
            "manifest": self.manifest,
            "layer": self.layer,
            "predicateType": self.predicate_type,
            "source": self.source,
            "signatures": [s.to_json() for s in self.signatures],
            "exporterStatus": self.exporter_status,
            "exporterProblem": self.exporter_problem,
        }

    @classmethod
    def from_json(cls, obj: object) -> AttestationRecord:
        """Parse one record strictly.

        Raises:
            MalformedEvidenceError: missing or ill-typed fields, or a layout no module
                registered.
            RuntimeError: no layout is registered at all (the caller never imported
                ``dhi_offline.verify.layouts``).
        """
        d = require_dict(obj, what="attestation record")
        layout = _check_layout(require_str(d.get("layout"), what="record.layout"))
        sigs_obj = d.get("signatures", [])
        if not isinstance(sigs_obj, list):
            raise MalformedEvidenceError("record.signatures: expected a list")
        sigs = tuple(
            SignatureRef(
                manifest=require_str(
                    require_dict(s, what="signature").get("manifest"), what="signature.manifest"
                ),
                layer=require_str(s.get("layer"), what="signature.layer"),
            )
            for s in sigs_obj
        )
        platform = d.get("platform")
        ptype = d.get("predicateType")
        problem = d.get("exporterProblem")
        return cls(
            id=require_str(d.get("id"), what="record.id"),
            layout=layout,
            image=require_str(d.get("image"), what="record.image"),
            platform=platform if isinstance(platform, str) else None,
            subject=require_str(d.get("subject"), what="record.subject"),
            manifest=require_str(d.get("manifest"), what="record.manifest"),
            layer=require_str(d.get("layer"), what="record.layer"),
            predicate_type=ptype if isinstance(ptype, str) else None,
            source=require_str(d.get("source", ""), what="record.source"),
            signatures=sigs,
            exporter_status=require_str(
                d.get("exporterStatus", "verified"), what="record.exporterStatus"
            ),
            exporter_problem=problem if isinstance(problem, str) else None,
        )


@dataclass(frozen=True)
class EvidenceIndex:
    """All records of a bundle, and the Rekor entries completed at export time."""

    attestations: tuple[AttestationRecord, ...]
    completions: tuple[TlogCompletion, ...] = ()

    def to_json_bytes(self) -> bytes:
        """Deterministic JSON (sorted keys, records in a stable order)."""
        doc = {
            "version": EVIDENCE_VERSION,
            "attestations": [
                r.to_json() for r in sorted(self.attestations, key=lambda r: (r.subject, r.id))
            ],
            "tlogCompletions": [
                c.to_json() for c in sorted(self.completions, key=lambda c: (c.log_id, c.log_index))
            ],
        }
        return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"

    @classmethod
    def from_json_bytes(cls, data: bytes) -> EvidenceIndex:
        """Parse the evidence index strictly.

        Raises:
            MalformedEvidenceError: unknown version or malformed records (a record of
                an unknown layout among them).
        """
        doc = require_dict(loads_json(data, what="evidence index"), what="evidence index")
        if doc.get("version") != EVIDENCE_VERSION:
            raise MalformedEvidenceError(
                f"unsupported evidence index version {doc.get('version')!r}"
            )
        atts = doc.get("attestations")
        comps = doc.get("tlogCompletions", [])
        if not isinstance(atts, list) or not isinstance(comps, list):
            raise MalformedEvidenceError(
                "evidence index: attestations and tlogCompletions are lists"
            )
        records = tuple(AttestationRecord.from_json(a) for a in atts)
        if len({r.id for r in records}) != len(records):
            raise MalformedEvidenceError("evidence index lists an attestation twice")
        completions = tuple(
            TlogCompletion(
                log_id=require_str(
                    require_dict(c, what="completion").get("logId"), what="completion.logId"
                ),
                log_index=require_int(c.get("logIndex"), what="completion.logIndex"),
                path=require_str(c.get("path"), what="completion.path"),
            )
            for c in comps
        )
        return cls(attestations=records, completions=completions)


def record_id(layout: str, subject: str, manifest: str, layer: str) -> str:
    """A stable id for a record: the same evidence always gets the same id."""
    return hashlib.sha256(f"{layout}\n{subject}\n{manifest}\n{layer}".encode()).hexdigest()[:16]
