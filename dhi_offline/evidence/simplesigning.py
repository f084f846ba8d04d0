"""cosign "simple signing" payloads (``application/vnd.dev.cosign.simplesigning.v1+json``).

cosign signs these exact bytes; the payload names the manifest digest it is about in
``critical.image.docker-manifest-digest``. Go decodes JSON keys case-insensitively and
cosign's own spec example writes ``Docker-manifest-digest``, so keys are matched here
without regard to case (but a key present twice in different cases is refused).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

from dhi_offline.encoding import loads_json, require_dict
from dhi_offline.errors import MalformedEvidenceError, SubjectMismatchError

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
# Red Hat's "atomic" signatures use the same structure with this type.
ATOMIC_SIGNATURE_TYPE = "atomic container signature"
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


def _get_ci(obj: dict[str, Any], key: str, *, what: str) -> Any:
    matches = [k for k in obj if k.lower() == key.lower()]
    if len(matches) > 1:
        raise MalformedEvidenceError(f"{what}: key {key!r} appears more than once")
    return obj[matches[0]] if matches else None


@dataclass(frozen=True)
class SimpleSigningPayload:
    """The fields of a simple-signing payload that verification relies on."""

    manifest_digest: str
    type: str
    docker_reference: str
    optional: dict[str, Any]
    raw: bytes


def parse_simple_signing(payload: bytes) -> SimpleSigningPayload:
    """Parse a simple-signing payload.

    Raises:
        MalformedEvidenceError: not JSON, missing ``critical``/``image``/digest, a type
            that is not a container signature, or a malformed digest.
    """
    what = "simple-signing payload"
    doc = require_dict(loads_json(payload, what=what), what=what)
    critical = require_dict(_get_ci(doc, "critical", what=what), what=f"{what}.critical")
    image = require_dict(_get_ci(critical, "image", what=what), what=f"{what}.critical.image")
    digest = _get_ci(image, "docker-manifest-digest", what=what)
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise MalformedEvidenceError(f"{what}: docker-manifest-digest is not a sha256 digest")
    ptype = _get_ci(critical, "type", what=what)
    if ptype not in (COSIGN_SIGNATURE_TYPE, ATOMIC_SIGNATURE_TYPE):
        raise MalformedEvidenceError(
            f"{what}: critical.type {ptype!r} is not a container signature"
        )
    identity = _get_ci(critical, "identity", what=what)
    ref = ""
    if isinstance(identity, dict):
        r = _get_ci(identity, "docker-reference", what=what)
        ref = r if isinstance(r, str) else ""
    optional = _get_ci(doc, "optional", what=what)
    return SimpleSigningPayload(
        manifest_digest=digest,
        type=ptype,
        docker_reference=ref,
        optional=optional if isinstance(optional, dict) else {},
        raw=payload,
    )


def require_manifest_digest(payload: SimpleSigningPayload, digest: str) -> None:
    """The payload must be about ``digest`` (the signed manifest).

    Raises:
        SubjectMismatchError: it names another manifest.
    """
    if not hmac.compare_digest(payload.manifest_digest, digest.lower()):
        raise SubjectMismatchError(
            f"signature is for {payload.manifest_digest[:23]}…, not {digest[:23]}…"
        )
