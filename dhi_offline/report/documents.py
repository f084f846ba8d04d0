"""The machine-readable documents of the commands other than ``verify``/``import``
(whose report is :meth:`VerificationReport.to_json`), built in one place.

Each function returns plain JSON data; the CLI prints it with :func:`dumps`. Every field
is specified in ``docs/json-output.md`` and checked against it by
``tests/cli/test_json_output.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dhi_offline.archive.store import ArchiveCheck, LogLine
from dhi_offline.bundle.manifest import BundleManifest
from dhi_offline.encoding import format_rfc3339
from dhi_offline.trust.keyring import KeyringEntry
from dhi_offline.trust.store import PinnedKey
from dhi_offline.verify.result import ImageView
from dhi_offline.verify.sigstore import VerifiedSigstoreBundle


def dumps(doc: object) -> str:
    """Indented, keys sorted: two runs on the same input print the same bytes."""
    return json.dumps(doc, indent=2, sort_keys=True)


def inspect_document(manifest: BundleManifest) -> dict[str, Any]:
    """``inspect --format json``: the manifest as the bundle states it, unverified."""
    return {
        "verified": False,
        "note": "UNVERIFIED: read from the bundle without checking any signature",
        "formatVersion": manifest.format_version,
        "toolVersion": manifest.tool_version,
        "created": format_rfc3339(manifest.created),
        "expires": format_rfc3339(manifest.expires),
        "sequence": manifest.sequence,
        "exporterKeyId": manifest.exporter_key_id,
        "flags": list(manifest.flags),
        "images": [
            {
                "reference": i.reference,
                "digest": i.digest,
                "platforms": [{"platform": p.platform, "digest": p.digest} for p in i.platforms],
            }
            for i in manifest.images
        ],
        "members": len(manifest.members),
        "size": manifest.total_size,
    }


def trust_list_document(
    pinned: Iterable[PinnedKey], shipped: Iterable[KeyringEntry], distrusted: Mapping[str, str]
) -> dict[str, Any]:
    """``trust list --format json``."""
    return {
        "pinned": [{k: v for k, v in p.to_json().items() if k != "pem"} for p in pinned],
        "shipped": [
            {
                "name": e.name,
                "keyId": e.key_id,
                "role": "publisher",
                "status": e.status,
                "distrusted": e.key_id in distrusted,
            }
            for e in shipped
        ],
    }


def archive_verify_document(
    check: ArchiveCheck | None, *, problem: str | None = None, expect_head: str | None = None
) -> dict[str, Any]:
    """``archive verify --format json``: the check, or the problem found."""
    if check is None:
        return {"intact": False, "problem": problem}
    return {
        "intact": True,
        "attempts": check.count,
        "head": check.head,
        "bundles": check.bundles,
        "quarantined": check.quarantined,
        "expectedHeadMatched": True if expect_head else None,
    }


def already_imported_document(
    line: LogLine, archive: str, receipt: dict[str, Any]
) -> dict[str, Any]:
    """``import --format json`` of a bundle the archive already holds."""
    return {
        "alreadyImported": True,
        "logIndex": line.index,
        "head": line.head,
        "bundleSha256": line.bundle,
        "verdict": line.verdict,
        "archive": archive,
        "receipt": receipt,
    }


def attestation_rows(images: Iterable[ImageView], platform: str | None) -> list[dict[str, Any]]:
    """``attest list``: one row per attestation of the images (all states)."""
    return [
        {
            "predicateType": a.predicate_type,
            "platform": p.platform,
            "subject": p.digest,
            "layout": a.layout,
            "verified": a.verified,
            "problem": a.problem,
            "signer": a.signer,
            "keyId": a.key_id,
            "tlog": a.tlog_status,
            "id": a.id,
        }
        for img in images
        for p in img.platforms
        if platform is None or p.platform == platform
        for a in p.attestations
    ]


def verify_bundle_document(result: VerifiedSigstoreBundle, digest: str) -> dict[str, Any]:
    """``sigstore verify-bundle --format json`` when the bundle verified."""
    return {
        "verified": True,
        "artifact": digest,
        "signer": result.signer,
        "payloadType": result.payload_type,
        "predicateType": result.statement.predicate_type if result.statement else None,
        "signingTimes": [t.isoformat() for t in result.signing_times],
        "tlogEntries": [
            {
                "log": e.log_url,
                "logIndex": e.log_index,
                "inclusionProof": e.inclusion_proof,
                "checkpointOrigin": e.checkpoint_origin,
            }
            for e in result.log_entries
        ],
    }


def verify_bundle_failure_document(digest: str, step: str, reason: str) -> dict[str, Any]:
    """``sigstore verify-bundle --format json`` when it did not verify."""
    return {"verified": False, "artifact": digest, "step": step, "reason": reason}
