"""Sigstore bundles for DHI signatures (``evidence/sigstore/<record id>.sigstore.json``).

A Rekor-backed cosign signature of a ``dhi-scout`` attestation is repackaged as a
sigstore bundle v0.3 (public-key hint, the completed log entry, the message signature
over the simple-signing payload), so other clients (``cosign verify-blob``, sigstore
libraries) can check it offline too.
"""

from __future__ import annotations

import base64
import hashlib
import json

from dhi_offline.bundle import layout
from dhi_offline.encoding import loads_json, require_dict
from dhi_offline.errors import DhiError
from dhi_offline.evidence.cosign import BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION, parse_legacy_bundle
from dhi_offline.evidence.records import MemoryBlobStore
from dhi_offline.evidence.sigstore_bundle import BUNDLE_V03_MEDIA_TYPE, parse_bundle
from dhi_offline.tlog.rekor_client import entry_to_bundle_tlog_entry, parse_log_entry
from dhi_offline.trust.keyring import Keyring
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.layouts import AttestationResult, annotation
from dhi_offline.verify.layouts.dhi_scout import DhiScout
from dhi_offline.verify.layouts.interface import layer_with_digest
from dhi_offline.verify.sigstore import Artifact, verify_sigstore_bundle


def sigstore_bundles(
    verified: list[AttestationResult],
    store: MemoryBlobStore,
    lookup: dict[tuple[str, int], bytes],
    keyring: Keyring,
    trusted_root: TrustedRoot,
) -> dict[str, bytes]:
    """A sigstore bundle v0.3 for every Rekor-backed cosign signature that verified.

    Each bundle is verified with the same key before it is packed: what other clients
    are given to check must check out here first.
    """
    out: dict[str, bytes] = {}
    for result in verified:
        record = result.record
        if record.layout != DhiScout.name or result.key_id is None:
            continue
        key_entry = keyring.by_id(result.key_id)
        if key_entry is None:
            continue
        for sig in record.signatures:
            try:
                bundle = _bundle_for_signature(
                    sig.manifest, sig.layer, store, lookup, result.key_id
                )
                if bundle is None:
                    continue
                verify_sigstore_bundle(
                    parse_bundle(bundle),
                    artifact=Artifact.from_bytes(store.get(sig.layer)),
                    trusted_root=trusted_root,
                    key=key_entry.key,
                )
            except DhiError:
                continue
            out[layout.sigstore_bundle_path(record.id)] = bundle
            break
    return out


def _bundle_for_signature(
    manifest_digest: str,
    layer_digest: str,
    store: MemoryBlobStore,
    lookup: dict[tuple[str, int], bytes],
    key_id: str,
) -> bytes | None:
    doc = require_dict(
        loads_json(store.get(manifest_digest), what="signature manifest"), what="signature manifest"
    )
    layer = layer_with_digest(doc, layer_digest)
    if layer is None:
        return None
    logged = annotation(layer, BUNDLE_ANNOTATION)
    if logged is None:
        return None
    legacy = parse_legacy_bundle(logged)
    raw = lookup.get((legacy.log_id.hex(), legacy.log_index))
    if raw is None:
        return None
    payload = store.get(layer_digest)
    bundle = {
        "mediaType": BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key_id},
            "tlogEntries": [entry_to_bundle_tlog_entry(parse_log_entry(raw))],
        },
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": base64.b64encode(hashlib.sha256(payload).digest()).decode(),
            },
            "signature": str(annotation(layer, SIGNATURE_ANNOTATION) or ""),
        },
    }
    return json.dumps(bundle, sort_keys=True, indent=1).encode() + b"\n"
