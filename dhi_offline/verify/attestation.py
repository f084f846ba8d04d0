"""Verification of one attestation record against pinned publisher keys, offline.

The same function runs at export (before packing) and at import. Plan per record:

1. The attestation manifest is the stored bytes of its digest, lists the layer, and its
   ``subject`` (when present) is the platform manifest the record is for.
2. The statement: a bare in-toto statement (``dhi-scout``, ``buildkit``), a DSSE
   envelope (``cosign-att``) or a sigstore bundle (``sigstore-bundle``); its subject must
   be the platform manifest's digest (no mix-and-match between images or platforms).
3. The signature, by a key of the pinned publisher keyring:
   - ``dhi-scout``: a cosign simple-signing payload naming the attestation manifest's
     digest, signed by the key (cosign ``verify --key`` on the attestation manifest);
   - ``cosign-att``: the DSSE envelope signed by the key;
   - ``sigstore-bundle``: the whole sigstore bundle plan (``verify/sigstore.py``);
   - ``buildkit``: unsigned, reported as such.
   Each layout's steps are in its module of ``dhi_offline/verify/layouts/``.
4. The transparency log, when the evidence carries an entry: the entry bound to this
   signature (CVE-2022-36056), its SET, and the inclusion proof and checkpoint, either
   carried or completed from Rekor at export. No entry is recorded as "absent", not an
   error: Docker Hardened Images may skip Rekor. Policy decides whether that is enough.
5. The key's validity window at every verified signing time (or at the reference time
   when no time was verified: an inactive key then fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from dhi_offline.errors import DhiError, MalformedEvidenceError, VerificationError
from dhi_offline.evidence.intoto import Prepared
from dhi_offline.evidence.records import AttestationRecord, BlobStore
from dhi_offline.verify.layouts import (
    AttestationResult,
    PublisherTrust,
    TlogStatus,
    layout_named,
)
from dhi_offline.verify.layouts.checks import logged_key_id

__all__ = [
    "AttestationResult",
    "PublisherTrust",
    "TlogStatus",
    "logged_key_id",
    "verify_attestation",
]


def verify_attestation(
    record: AttestationRecord,
    *,
    blobs: BlobStore,
    trust: PublisherTrust,
    at: datetime,
    completions: Mapping[tuple[str, int], bytes] | None = None,
    prepared: Prepared | None = None,
) -> AttestationResult:
    """Verify one record (see the module docstring for the plan).

    Each layout runs the plan its own way (``dhi_offline/verify/layouts/``).

    Args:
        at: the reference time (``--at`` or now), used for keys when no time is verified.
        completions: Rekor responses stored at export, by (log id hex, log index).
        prepared: statements whose top level was parsed ahead, by their exact bytes.

    Raises:
        VerificationError: a subclass naming the failed step.
    """
    completions = completions or {}
    where = f"attestation {record.id} ({record.platform or 'image'})"
    try:
        return layout_named(record.layout).verify(
            record,
            blobs=blobs,
            trust=trust,
            at=at,
            completions=completions,
            prepared=prepared,
        )
    except VerificationError as e:
        raise type(e)(f"{where}: {e.message}", step=e.step) from e
    except DhiError as e:
        raise MalformedEvidenceError(f"{where}: {e.message}") from e
