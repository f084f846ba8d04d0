"""The embedded default for ``make demo``: a sample image published the way DHI publishes.

:func:`build_sample_layout` writes an OCI image layout holding a two-platform image
(linux/amd64, linux/arm64) and, for each platform, signed attestations in the Docker
Scout layout (an in-toto statement per attestation manifest, each signed by a cosign
signature that is a referrer of that manifest): CTRF tests, a CycloneDX SBOM, SLSA
provenance, an in-toto vulnerability report and an OpenVEX document. The publisher key
is the caller's; nothing is logged to Rekor (DHI may skip it too).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.evidence.cosign import SIGNATURE_ANNOTATION
from dhi_offline.evidence.simplesigning import COSIGN_SIGNATURE_TYPE
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.layout import OciLayoutWriter
from dhi_offline.oci.mediatypes import Descriptor, Platform

SAMPLE_NAME = "dhi.io/python-sample"
SAMPLE_TAG = "3.13"
PLATFORMS = (Platform("linux", "amd64"), Platform("linux", "arm64"))
TESTS = "https://scout.docker.com/tests/v0.1"
SBOM = "https://cyclonedx.org/bom/v1.6"
PROVENANCE = "https://slsa.dev/provenance/v1"
VULNS = "https://in-toto.io/attestation/vulns/v0.1"
VEX = "https://openvex.dev/ns/v0.2.0"
INTOTO_PREDICATE_ANNOTATION = mt.INTOTO_PREDICATE_ANNOTATION


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SampleImage:
    """What :func:`build_sample_layout` wrote."""

    layout: Path
    tag: str
    index_digest: str
    platforms: tuple[tuple[str, str], ...]
    """(platform, manifest digest) pairs."""
    attestations: int


def _predicates(
    purl: str, digest: str, when: datetime, *, failing: bool = False
) -> list[tuple[str, Any]]:
    start = int(when.timestamp())
    statuses = {"non-root-user": "failed"} if failing else {}
    tests = {
        "reportFormat": "CTRF",
        "results": {
            "summary": {
                "tests": 3,
                "passed": 3 - len(statuses),
                "failed": len(statuses),
                "skipped": 0,
                "start": start,
                "stop": start + 41,
            },
            "tests": [
                {
                    "name": name,
                    "status": statuses.get(name, "passed"),
                    "duration": 5,
                    "extra": {"stdout": base64.b64encode(f"{name}: ok\n".encode()).decode()},
                }
                for name in ("python-runs", "pip-installs", "non-root-user")
            ],
        },
    }
    components = [
        {"type": "library", "name": n, "version": v, "purl": f"pkg:apk/dhi/{n}@{v}"}
        for n, v in (
            ("python3", "3.13.1-r0"),
            ("openssl", "3.3.2-r0"),
            ("zlib", "1.3.1-r0"),
            ("libffi", "3.4.6-r0"),
            ("sqlite-libs", "3.46.1-r0"),
        )
    ]
    sbom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components}
    provenance = {
        "buildDefinition": {
            "buildType": "https://docker.com/dhi/build/v1",
            "externalParameters": {"source": "github.com/example/dhi-python"},
        },
        "runDetails": {"builder": {"id": "https://docker.com/dhi/builder"}},
    }
    vulns = {
        "scanner": {
            "uri": "pkg:docker/scout@1.0",
            "result": [
                {"id": "CVE-2024-0001", "severity": [{"method": "nvd", "score": "9.8"}]},
                {"id": "CVE-2024-0002", "severity": [{"method": "nvd", "score": "LOW"}]},
            ],
        },
        "metadata": {"scanStartedOn": when.isoformat(), "scanFinishedOn": when.isoformat()},
    }
    vex = {
        "@context": VEX,
        "@id": f"https://example.com/vex/{digest}",
        "author": "Docker Hardened Images (sample)",
        "timestamp": when.isoformat(),
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2024-0001"},
                "products": [{"@id": purl}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_present",
            }
        ],
    }
    return [(TESTS, tests), (SBOM, sbom), (PROVENANCE, provenance), (VULNS, vulns), (VEX, vex)]


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def _attest(
    writer: OciLayoutWriter,
    *,
    key: ec.EllipticCurvePrivateKey,
    subject: Descriptor,
    predicate_type: str,
    predicate: Any,
) -> None:
    # The member order in-toto-golang (and so BuildKit, cosign, Scout) writes: the
    # predicate last. Only the predicate's own keys are sorted.
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": predicate_type,
            "subject": [
                {"name": SAMPLE_NAME, "digest": {"sha256": subject.digest.partition(":")[2]}}
            ],
            "predicate": json.loads(_json(predicate)),
        },
        separators=(",", ":"),
    ).encode()
    empty = writer.add_blob(mt.EMPTY_JSON, mt.OCI_EMPTY)
    layer = writer.add_blob(statement, mt.IN_TOTO)
    attestation = writer.add_manifest(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": mt.IN_TOTO,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": empty.digest, "size": empty.size},
            "layers": [
                {
                    "mediaType": mt.IN_TOTO,
                    "digest": layer.digest,
                    "size": layer.size,
                    "annotations": {INTOTO_PREDICATE_ANNOTATION: predicate_type},
                }
            ],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
        },
        mt.OCI_MANIFEST,
    )
    payload = _json(
        {
            "critical": {
                "identity": {"docker-reference": SAMPLE_NAME},
                "image": {"docker-manifest-digest": attestation.digest},
                "type": COSIGN_SIGNATURE_TYPE,
            },
            "optional": None,
        }
    )
    sig_layer = writer.add_blob(payload, mt.COSIGN_SIMPLESIGNING)
    writer.add_manifest(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": mt.COSIGN_ARTIFACT_SIG,
            "config": {
                "mediaType": mt.COSIGN_ARTIFACT_SIG,
                "digest": empty.digest,
                "size": empty.size,
            },
            "layers": [
                {
                    "mediaType": mt.COSIGN_SIMPLESIGNING,
                    "digest": sig_layer.digest,
                    "size": sig_layer.size,
                    "annotations": {SIGNATURE_ANNOTATION: _sign(key, payload)},
                }
            ],
            "subject": {
                "mediaType": attestation.media_type,
                "digest": attestation.digest,
                "size": attestation.size,
            },
        },
        mt.OCI_MANIFEST,
    )


def build_sample_layout(
    path: Path,
    key: ec.EllipticCurvePrivateKey,
    *,
    when: datetime | None = None,
    failing_tests: Collection[str] = (),
) -> SampleImage:
    """Write the sample image and its signed attestations as an OCI layout at ``path``.

    ``failing_tests`` names platforms (``linux/arm64``) whose CTRF report has one failed
    test: a platform that verifies but fails the default policy.
    """
    when = when or datetime.now(UTC).replace(microsecond=0)
    count = 0
    with OciLayoutWriter(path) as writer:
        entries: list[dict[str, Any]] = []
        platforms: list[tuple[str, str]] = []
        for plat in PLATFORMS:
            layer = writer.add_blob(
                hashlib.sha256(str(plat).encode()).digest() * 64, mt.OCI_LAYER_GZIP
            )
            config = writer.add_blob(
                _json(
                    {
                        "architecture": plat.architecture,
                        "os": plat.os,
                        "config": {"User": "65532", "Cmd": ["python3"]},
                        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
                    }
                ),
                mt.OCI_CONFIG,
            )
            manifest = writer.add_manifest(
                {
                    "schemaVersion": 2,
                    "mediaType": mt.OCI_MANIFEST,
                    "config": {
                        "mediaType": mt.OCI_CONFIG,
                        "digest": config.digest,
                        "size": config.size,
                    },
                    "layers": [
                        {"mediaType": mt.OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size}
                    ],
                },
                mt.OCI_MANIFEST,
                in_index=False,
            )
            entries.append(
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": manifest.digest,
                    "size": manifest.size,
                    "platform": plat.to_json(),
                }
            )
            platforms.append((str(plat), manifest.digest))
            purl = f"pkg:docker/{SAMPLE_NAME}@{SAMPLE_TAG}?platform={plat}"
            failing = str(plat) in failing_tests
            for ptype, predicate in _predicates(purl, manifest.digest, when, failing=failing):
                _attest(
                    writer, key=key, subject=manifest, predicate_type=ptype, predicate=predicate
                )
                count += 1
        index = writer.add_manifest(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries},
            mt.OCI_INDEX,
            tag=SAMPLE_TAG,
        )
    return SampleImage(
        layout=path,
        tag=SAMPLE_TAG,
        index_digest=index.digest,
        platforms=tuple(platforms),
        attestations=count,
    )
