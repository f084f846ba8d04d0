"""A test "publisher": realistic signed attestations in the three OCI storage layouts.

Everything is built from scratch here (DSSE PAE, Rekor bodies, JSON layouts) rather than
with dhi_offline's own helpers, so verifying the output with dhi_offline is a real
cross-check. Layouts (see docs/reference formats §1.2-1.3, §3, §5):

(a) ``dhi``: Docker Hardened Images / Docker Scout. An attestation manifest (OCI image
    manifest, empty config, one ``application/vnd.in-toto+json`` layer holding the bare
    in-toto Statement, ``subject`` = the image) and a cosign signature manifest that is a
    referrer of the *attestation manifest* (as ``cosign sign --experimental-oci11``
    writes it): a simple-signing layer naming the attestation manifest digest, its
    signature annotation and, when logged, the legacy ``dev.sigstore.cosign/bundle``
    annotation (hashedrekord 0.0.1 in the Rekor double).
(b) ``cosign-att``: legacy ``cosign attest``: one manifest for tag ``sha256-<hex>.att``
    with DSSE envelope layers, an empty signature annotation, ``predicateType`` and the
    legacy bundle annotation (intoto 0.0.1).
(c) ``sigstore-bundle``: cosign 3 / GitHub: a referrer manifest whose one layer is a
    sigstore bundle v0.3 (``publicKey.hint``, ``dsseEnvelope``, a dsse 0.0.1 entry with
    SET, inclusion proof and checkpoint); or a SET-only / unlogged variant.

Manifests and blobs are returned as plain dataclasses with their exact bytes; nothing
is pushed anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.rekor_double import RekorDouble

# ----------------------------------------------------------------- media types

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
COSIGN_SIG_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_V01_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle+json;version=0.1"

# annotation keys
ANN_PREDICATE_TYPE_LAYER = "in-toto.io/predicate-type"
ANN_COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
ANN_COSIGN_BUNDLE = "dev.sigstore.cosign/bundle"
ANN_COSIGN_PREDICATE_TYPE = "predicateType"
ANN_BUNDLE_CONTENT = "dev.sigstore.bundle.content"
ANN_BUNDLE_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
ANN_CREATED = "org.opencontainers.image.created"

# predicate types
CTRF_TESTS = "https://scout.docker.com/tests/v0.1"
CYCLONEDX = "https://cyclonedx.org/bom/v1.6"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
INTOTO_VULNS = "https://in-toto.io/attestation/vulns/v0.1"
OPENVEX = "https://openvex.dev/ns/v0.2.0"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"

COSIGN_SIGNATURE_TYPE = "cosign container image signature"

Layout = Literal["dhi", "cosign-att", "sigstore-bundle"]
TlogMode = Literal["proof", "set-only", "none"]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _compact(obj: Any) -> bytes:
    """JSON as Go's encoding/json writes it: no whitespace, fields in the given order."""
    return json.dumps(obj, separators=(",", ":")).encode()


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------- OCI objects


@dataclass(frozen=True)
class Blob:
    """A blob with its media type (as its descriptor would name it)."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The OCI descriptor, fields in go-containerregistry order."""
        d: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if annotations:
            d["annotations"] = dict(sorted(annotations.items()))
        return d


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes, the digest of the manifest it refers to, if any, and the
    tag to push it under, if any (legacy ``.att``)."""

    data: bytes
    media_type: str = OCI_MANIFEST
    subject: str | None = None
    tag: str | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def doc(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.data)
        return out

    @property
    def artifact_type(self) -> str | None:
        """``artifactType``, else ``config.mediaType`` (as the referrers API reports it)."""
        doc = self.doc
        at = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
        return str(at) if at else None

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.doc.get("annotations") or {})

    def layer_descriptors(self) -> list[dict[str, Any]]:
        return list(self.doc.get("layers") or [])

    def descriptor(self) -> dict[str, Any]:
        """The descriptor a referrers index lists for this manifest."""
        d: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        at = self.artifact_type
        if at:
            d["artifactType"] = at
        if self.annotations:
            d["annotations"] = self.annotations
        return d


def referrers_index(manifests: Iterable[Manifest]) -> bytes:
    """An OCI image index as ``GET /v2/<name>/referrers/<digest>`` returns it."""
    return _compact(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [m.descriptor() for m in manifests],
        }
    )


@dataclass(frozen=True)
class ImageRef:
    """The image an attestation is about: its platform manifest descriptor and name."""

    name: str
    """Repository, e.g. ``dhi.io/python`` (the simple-signing docker-reference)."""
    digest: str
    size: int = 1024
    media_type: str = OCI_MANIFEST

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass(frozen=True)
class FakeImage:
    """A small but real OCI image: an index, one platform manifest, config and layer."""

    ref: ImageRef
    """The platform manifest (what attestations are about)."""
    index: Manifest
    manifest: Manifest
    blobs: tuple[Blob, ...]


def make_image(
    name: str, *, seed: str = "", os: str = "linux", architecture: str = "amd64"
) -> FakeImage:
    """A deterministic fake image (content varies with ``name`` and ``seed``)."""
    layer = Blob(OCI_LAYER, hashlib.sha256(f"layer:{name}:{seed}".encode()).digest() * 4)
    config = Blob(
        OCI_CONFIG,
        _compact(
            {
                "architecture": architecture,
                "os": os,
                "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Labels": {"seed": seed}},
                "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
            }
        ),
    )
    manifest = Manifest(
        _compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
            }
        )
    )
    index = Manifest(
        _compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "size": manifest.size,
                        "digest": manifest.digest,
                        "platform": {"architecture": architecture, "os": os},
                    }
                ],
            }
        ),
        media_type=OCI_INDEX,
    )
    ref = ImageRef(name=name, digest=manifest.digest, size=manifest.size)
    return FakeImage(ref=ref, index=index, manifest=manifest, blobs=(config, layer))


@dataclass(frozen=True)
class Published:
    """What one publishing call produced.

    ``manifests`` are in push order: the attestation manifest first, then (layout
    ``dhi``) its signature manifest. ``blobs`` are all blobs those manifests reference.
    """

    layout: Layout
    subject: ImageRef
    manifests: tuple[Manifest, ...]
    blobs: tuple[Blob, ...]
    statements: tuple[bytes, ...]
    """The in-toto Statement bytes (one per attestation)."""
    predicate_types: tuple[str, ...]
    log_entries: tuple[dict[str, Any], ...] = ()
    """The Rekor ``{uuid: LogEntry}`` objects the double returned when logging."""
    signature: bytes | None = None
    """Layout ``dhi``: the simple-signing signature (DER)."""
    simple_signing_payload: bytes | None = None
    envelopes: tuple[bytes, ...] = ()
    """Layouts ``cosign-att`` and ``sigstore-bundle``: the DSSE envelope bytes."""
    bundle: bytes | None = None
    """Layout ``sigstore-bundle``: the bundle JSON (also the layer blob)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def attestation(self) -> Manifest:
        return self.manifests[0]

    @property
    def signature_manifest(self) -> Manifest | None:
        return self.manifests[1] if len(self.manifests) > 1 else None

    def blob(self, digest: str) -> Blob:
        for b in self.blobs:
            if b.digest == digest:
                return b
        raise KeyError(digest)

    def layer(self, manifest: Manifest | None = None, index: int = 0) -> Blob:
        """The blob of layer ``index`` of ``manifest`` (default: the attestation)."""
        m = manifest or self.attestation
        return self.blob(m.layer_descriptors()[index]["digest"])

    def objects(self) -> dict[str, tuple[str, bytes]]:
        """Every manifest and blob by digest: ``{digest: (media_type, bytes)}``."""
        out = {m.digest: (m.media_type, m.data) for m in self.manifests}
        out.update({b.digest: (b.media_type, b.data) for b in self.blobs})
        return out


# ----------------------------------------------------------------- predicates


DEFAULT_TESTS = (
    "image-starts",
    "runs-as-nonroot",
    "no-shell-in-runtime",
    "fips-provider-loaded",
    "entrypoint-version",
)


def ctrf_tests(
    tests: Sequence[str] = DEFAULT_TESTS,
    *,
    failing: Collection[str] = (),
    skipped: Collection[str] = (),
    start: int = 1_749_216_533,
    stop: int | None = None,
) -> dict[str, Any]:
    """A DHI-style CTRF report: summary start/stop in Unix SECONDS, per-test
    ``extra.stdout`` in base64 (docs.docker.com DHI test.md example)."""
    unknown = (set(failing) | set(skipped)) - set(tests)
    if unknown:
        raise ValueError(f"unknown tests {sorted(unknown)}")
    items: list[dict[str, Any]] = []
    for i, name in enumerate(tests):
        status = "failed" if name in failing else "skipped" if name in skipped else "passed"
        out = f"running {name}\n{'FAIL' if status == 'failed' else 'ok'}\n"
        items.append(
            {
                "name": name,
                "status": status,
                "duration": 1000 + 137 * i,
                "extra": {"stdout": _b64(out.encode())},
            }
        )
    count = {s: sum(1 for t in items if t["status"] == s) for s in ("passed", "failed", "skipped")}
    return {
        "reportFormat": "CTRF",
        "results": {
            "summary": {
                "failed": count["failed"],
                "passed": count["passed"],
                "skipped": count["skipped"],
                "start": start,
                "stop": stop if stop is not None else start + 41,
                "tests": len(items),
            },
            "tests": items,
        },
    }


def cyclonedx_sbom(
    image: ImageRef, n_components: int = 3, *, timestamp: str = "2025-06-06T13:28:53Z"
) -> dict[str, Any]:
    """A CycloneDX 1.6 SBOM of ``n_components`` apk packages."""
    components = [
        {
            "type": "library",
            "bom-ref": f"pkg:apk/dhi/pkg{i}@1.{i}.0-r0?arch=x86_64",
            "name": f"pkg{i}",
            "version": f"1.{i}.0-r0",
            "purl": f"pkg:apk/dhi/pkg{i}@1.{i}.0-r0?arch=x86_64",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
        }
        for i in range(n_components)
    ]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image.digest)}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "component": {
                "type": "container",
                "bom-ref": image_purl(image),
                "name": image.name,
                "version": image.digest,
            },
        },
        "components": components,
    }


def slsa_provenance_v1(
    image: ImageRef,
    *,
    builder_id: str = "https://github.com/docker-hardened-images/builder@v1",
    materials: Sequence[tuple[str, str]] = (),
    started: str = "2025-06-06T13:20:00Z",
    finished: str = "2025-06-06T13:28:00Z",
) -> dict[str, Any]:
    """SLSA provenance v1; ``materials`` are ``(uri, sha256 hex)`` pairs."""
    deps = materials or (
        ("pkg:apk/dhi/openssl@3.5.0-r0", hashlib.sha256(b"openssl").hexdigest()),
        ("git+https://github.com/docker-hardened-images/catalog@refs/heads/main", "0" * 64),
    )
    return {
        "buildDefinition": {
            "buildType": "https://docs.docker.com/dhi/build/v1",
            "externalParameters": {"image": image.name, "platform": "linux/amd64"},
            "internalParameters": {},
            "resolvedDependencies": [{"uri": u, "digest": {"sha256": d}} for u, d in deps],
        },
        "runDetails": {
            "builder": {"id": builder_id},
            "metadata": {
                "invocationId": str(uuid.uuid5(uuid.NAMESPACE_URL, "build:" + image.digest)),
                "startedOn": started,
                "finishedOn": finished,
            },
        },
    }


def intoto_vulns(
    cves: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    scanner_uri: str = "pkg:docker/docker/scout-cli@1.18.2",
    started: str = "2025-06-06T13:30:00Z",
    finished: str = "2025-06-06T13:30:12Z",
) -> dict[str, Any]:
    """in-toto vulns v0.1: ``cves`` maps CVE id to severity (e.g. ``"HIGH"``)."""
    items = list(cves.items()) if isinstance(cves, Mapping) else list(cves)
    return {
        "scanner": {
            "uri": scanner_uri,
            "version": "1.18.2",
            "db": {"uri": "https://scout.docker.com/db", "version": "2025-06-06"},
            "result": [
                {"id": cve, "severity": [{"method": "nvd", "score": severity}]}
                for cve, severity in items
            ],
        },
        "metadata": {"scanStartedOn": started, "scanFinishedOn": finished},
    }


def image_purl(image: ImageRef) -> str:
    """``pkg:oci/<name>@sha256%3A<hex>?repository_url=<repository>``."""
    short = image.name.rsplit("/", 1)[-1]
    return f"pkg:oci/{short}@sha256%3A{image.hex}?repository_url={image.name}"


def openvex(
    product: ImageRef,
    statements: Sequence[tuple[str, str]],
    *,
    author: str = "Docker Hardened Images <dhi@docker.com>",
    timestamp: str = "2025-06-06T13:31:00Z",
) -> dict[str, Any]:
    """OpenVEX 0.2.0; ``statements`` are ``(CVE id, status)`` with status one of
    ``not_affected``, ``affected``, ``fixed``, ``under_investigation``."""
    prod = {
        "@id": image_purl(product),
        "identifiers": {"purl": image_purl(product)},
        "hashes": {"sha-256": product.hex},
    }
    out: list[dict[str, Any]] = []
    for cve, status in statements:
        s: dict[str, Any] = {
            "vulnerability": {"name": cve},
            "products": [prod],
            "status": status,
        }
        if status == "not_affected":
            s["justification"] = "vulnerable_code_not_in_execute_path"
        elif status == "affected":
            s["action_statement"] = "Upgrade when a fixed package is released"
        elif status not in ("fixed", "under_investigation"):
            raise ValueError(f"unknown OpenVEX status {status!r}")
        out.append(s)
    doc_id = hashlib.sha256(_compact([product.digest, list(statements)])).hexdigest()
    return {
        "@context": OPENVEX,
        "@id": f"https://scout.docker.com/public/vex-{doc_id}",
        "author": author,
        "timestamp": timestamp,
        "version": 1,
        "statements": out,
    }


def statement(image: ImageRef, predicate_type: str, predicate: Any) -> bytes:
    """An in-toto Statement v1 about ``image`` (subject digest = the platform manifest)."""
    return _compact(
        {
            "_type": STATEMENT_V1,
            "subject": [{"name": image.name, "digest": {"sha256": image.hex}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


# ----------------------------------------------------------------- signing pieces


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (written here independently)."""
    t = payload_type.encode()
    return (
        b"DSSEv1 "
        + str(len(t)).encode()
        + b" "
        + t
        + b" "
        + str(len(payload)).encode()
        + (b" " + payload)
    )


def simple_signing_payload(docker_reference: str, manifest_digest: str) -> bytes:
    """The exact bytes ``cosign sign`` signs (sigstore/sigstore payload.Cosign)."""
    return _compact(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": COSIGN_SIGNATURE_TYPE,
            },
            "optional": None,
        }
    )


def _sig_config(layer_digests: Sequence[str]) -> bytes:
    """The config file go-containerregistry writes for a cosign signature image."""
    return _compact(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layer_digests],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": list(layer_digests)},
            "config": {},
        }
    )


def legacy_bundle_annotation(entry: Mapping[str, Any]) -> str:
    """cosign's ``dev.sigstore.cosign/bundle`` JSON from a Rekor ``{uuid: LogEntry}``."""
    ((_, e),) = entry.items()
    return _compact(
        {
            "SignedEntryTimestamp": e["verification"]["signedEntryTimestamp"],
            "Payload": {
                "body": e["body"],
                "integratedTime": e["integratedTime"],
                "logIndex": e["logIndex"],
                "logID": e["logID"],
            },
        }
    ).decode()


def bundle_tlog_entry(
    entry: Mapping[str, Any], kind: str, version: str, *, proof: bool = True
) -> dict[str, Any]:
    """A sigstore bundle ``tlogEntries[]`` member from a Rekor ``{uuid: LogEntry}``
    (hex -> base64, int64 -> string), written here independently of dhi_offline."""
    ((_, e),) = entry.items()
    v = e["verification"]
    out: dict[str, Any] = {
        "logIndex": str(e["logIndex"]),
        "logId": {"keyId": _b64(bytes.fromhex(e["logID"]))},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": str(e["integratedTime"]),
        "inclusionPromise": {"signedEntryTimestamp": v["signedEntryTimestamp"]},
    }
    if proof:
        p = v["inclusionProof"]
        out["inclusionProof"] = {
            "logIndex": str(p["logIndex"]),
            "rootHash": _b64(bytes.fromhex(p["rootHash"])),
            "treeSize": str(p["treeSize"]),
            "hashes": [_b64(bytes.fromhex(h)) for h in p["hashes"]],
            "checkpoint": {"envelope": p["checkpoint"]},
        }
    out["canonicalizedBody"] = e["body"]
    return out


# ----------------------------------------------------------------- the publisher


class TestPublisher:
    """Signs attestations with ``key`` and (optionally) logs them in ``rekor``.

    Args:
        key: the publisher's ECDSA P-256 key (generated when omitted).
        rekor: the Rekor double to log in; None models a publisher that never logs.
        clock: "now" for ``org.opencontainers.image.created`` annotations.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | None = None,
        rekor: RekorDouble | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.rekor = rekor
        self.clock = clock or (lambda: datetime(2025, 6, 6, 13, 31, tzinfo=UTC))

    # ------------------------------------------------------------- key material

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()

    @property
    def public_key_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def public_key_der(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def key_hint(self) -> str:
        """base64 SHA-256 of the DER key (the hint sigstore-go/cosign 3 write)."""
        return _b64(hashlib.sha256(self.public_key_der).digest())

    def sign(self, data: bytes) -> bytes:
        """ASN.1/DER ECDSA over SHA-256 of ``data`` (as cosign signs)."""
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def dsse_envelope(
        self, payload: bytes, payload_type: str = IN_TOTO_MEDIA_TYPE, *, keyid: str = ""
    ) -> tuple[bytes, bytes]:
        """``(envelope JSON bytes, signature)``; fields in go-securesystemslib order."""
        sig = self.sign(pae(payload_type, payload))
        env = _compact(
            {
                "payloadType": payload_type,
                "payload": _b64(payload),
                "signatures": [{"keyid": keyid, "sig": _b64(sig)}],
            }
        )
        return env, sig

    # ------------------------------------------------------------- Rekor bodies

    def hashedrekord_body(self, payload: bytes, signature: bytes) -> bytes:
        return rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {
                        "hash": {
                            "algorithm": "sha256",
                            "value": hashlib.sha256(payload).hexdigest(),
                        }
                    },
                    "signature": {
                        "content": _b64(signature),
                        "publicKey": {"content": _b64(self.public_key_pem)},
                    },
                },
            }
        )

    def intoto_body(self, envelope: bytes, payload: bytes) -> bytes:
        return rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "intoto",
                "spec": {
                    "content": {
                        "hash": {
                            "algorithm": "sha256",
                            "value": hashlib.sha256(envelope).hexdigest(),
                        },
                        "payloadHash": {
                            "algorithm": "sha256",
                            "value": hashlib.sha256(payload).hexdigest(),
                        },
                    },
                    "publicKey": _b64(self.public_key_pem),
                },
            }
        )

    def dsse_body(self, envelope: bytes, payload: bytes, signature: bytes) -> bytes:
        return rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(envelope).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [
                        {"signature": _b64(signature), "verifier": _b64(self.public_key_pem)}
                    ],
                },
            }
        )

    def _log(self, body: bytes) -> dict[str, Any]:
        if self.rekor is None:
            raise ValueError("this publisher has no Rekor log to log in")
        return self.rekor.add_entry(body)

    def _created(self) -> str:
        return _rfc3339(self.clock())

    # ------------------------------------------------------------- (a) DHI

    def dhi_attestation(
        self,
        image: ImageRef,
        predicate_type: str,
        predicate: Any,
        *,
        log: bool | None = None,
        artifact_type: str = IN_TOTO_MEDIA_TYPE,
        docker_reference: str | None = None,
        sign: bool = True,
    ) -> Published:
        """Layout (a): attestation manifest + cosign signature referrer of it.

        Args:
            log: log the signature in the Rekor double and add the legacy bundle
                annotation (default: when the publisher has a Rekor double). ``False``
                models DHI's "not in Rekor" case.
            artifact_type: the attestation manifest's ``artifactType``.
            docker_reference: the simple-signing ``docker-reference`` (default: the
                image name).
            sign: False leaves the attestation unsigned (no signature manifest).
        """
        do_log = (self.rekor is not None) if log is None else log
        stmt = statement(image, predicate_type, predicate)
        layer = Blob(IN_TOTO_MEDIA_TYPE, stmt)
        empty = Blob(EMPTY_MEDIA_TYPE, EMPTY_BLOB)
        att = Manifest(
            _compact(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "artifactType": artifact_type,
                    "config": empty.descriptor(),
                    "layers": [layer.descriptor({ANN_PREDICATE_TYPE_LAYER: predicate_type})],
                    "subject": image.descriptor(),
                    "annotations": {ANN_CREATED: self._created()},
                }
            ),
            subject=image.digest,
        )
        if not sign:
            return Published(
                layout="dhi",
                subject=image,
                manifests=(att,),
                blobs=(empty, layer),
                statements=(stmt,),
                predicate_types=(predicate_type,),
            )

        payload = simple_signing_payload(docker_reference or image.name, att.digest)
        sig = self.sign(payload)
        annotations = {ANN_COSIGN_SIGNATURE: _b64(sig)}
        entries: tuple[dict[str, Any], ...] = ()
        if do_log:
            entry = self._log(self.hashedrekord_body(payload, sig))
            annotations[ANN_COSIGN_BUNDLE] = legacy_bundle_annotation(entry)
            entries = (entry,)
        pl_blob = Blob(SIMPLE_SIGNING_MEDIA_TYPE, payload)
        config = Blob(COSIGN_SIG_ARTIFACT_TYPE, _sig_config([pl_blob.digest]))
        sig_manifest = Manifest(
            _compact(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config.descriptor(),
                    "layers": [pl_blob.descriptor(annotations)],
                    "subject": {"mediaType": OCI_MANIFEST, "size": att.size, "digest": att.digest},
                    "artifactType": COSIGN_SIG_ARTIFACT_TYPE,
                }
            ),
            subject=att.digest,
        )
        return Published(
            layout="dhi",
            subject=image,
            manifests=(att, sig_manifest),
            blobs=(empty, layer, config, pl_blob),
            statements=(stmt,),
            predicate_types=(predicate_type,),
            log_entries=entries,
            signature=sig,
            simple_signing_payload=payload,
        )

    # ------------------------------------------------------------- (b) cosign .att

    def cosign_att(
        self,
        image: ImageRef,
        attestations: Sequence[tuple[str, Any]],
        *,
        log: bool | None = None,
    ) -> Published:
        """Layout (b): one legacy ``sha256-<hex>.att`` manifest with one DSSE layer per
        ``(predicate_type, predicate)``; each logged as intoto 0.0.1 when ``log``."""
        do_log = (self.rekor is not None) if log is None else log
        layers: list[tuple[Blob, dict[str, str]]] = []
        stmts: list[bytes] = []
        envs: list[bytes] = []
        entries: list[dict[str, Any]] = []
        for predicate_type, predicate in attestations:
            stmt = statement(image, predicate_type, predicate)
            env, _sig = self.dsse_envelope(stmt)
            ann = {ANN_COSIGN_SIGNATURE: "", ANN_COSIGN_PREDICATE_TYPE: predicate_type}
            if do_log:
                entry = self._log(self.intoto_body(env, stmt))
                ann[ANN_COSIGN_BUNDLE] = legacy_bundle_annotation(entry)
                entries.append(entry)
            layers.append((Blob(DSSE_MEDIA_TYPE, env), ann))
            stmts.append(stmt)
            envs.append(env)
        config = Blob(OCI_CONFIG, _sig_config([b.digest for b, _ in layers]))
        manifest = Manifest(
            _compact(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config.descriptor(),
                    "layers": [b.descriptor(a) for b, a in layers],
                }
            ),
            tag=f"sha256-{image.hex}.att",
        )
        return Published(
            layout="cosign-att",
            subject=image,
            manifests=(manifest,),
            blobs=(config, *(b for b, _ in layers)),
            statements=tuple(stmts),
            predicate_types=tuple(pt for pt, _ in attestations),
            log_entries=tuple(entries),
            envelopes=tuple(envs),
        )

    # ------------------------------------------------------------- (c) bundle referrer

    def bundle_attestation(
        self,
        image: ImageRef,
        predicate_type: str,
        predicate: Any,
        *,
        tlog: TlogMode = "proof",
        bundle_media_type: str | None = None,
        keyid: str = "",
    ) -> Published:
        """Layout (c): a sigstore bundle referrer (cosign 3 ``attest``, GitHub).

        Args:
            tlog: ``"proof"``: a dsse 0.0.1 entry with SET, inclusion proof and
                checkpoint (bundle v0.3); ``"set-only"``: the entry with its SET only
                (default media type v0.1, which requires no proof); ``"none"``: no
                entry (not logged).
            bundle_media_type: override the bundle's ``mediaType``.
            keyid: the DSSE signature's ``keyid`` (cosign writes ``""``).
        """
        stmt = statement(image, predicate_type, predicate)
        env, sig = self.dsse_envelope(stmt, keyid=keyid)
        entries: tuple[dict[str, Any], ...] = ()
        tlog_entries: list[dict[str, Any]] = []
        if tlog != "none":
            entry = self._log(self.dsse_body(env, stmt, sig))
            entries = (entry,)
            tlog_entries.append(bundle_tlog_entry(entry, "dsse", "0.0.1", proof=tlog == "proof"))
        media_type = bundle_media_type or (
            BUNDLE_V01_MEDIA_TYPE if tlog == "set-only" else BUNDLE_V03_MEDIA_TYPE
        )
        env_doc = json.loads(env)
        bundle = _compact(
            {
                "mediaType": media_type,
                "verificationMaterial": {
                    "publicKey": {"hint": self.key_hint},
                    "tlogEntries": tlog_entries,
                },
                "dsseEnvelope": {
                    "payload": env_doc["payload"],
                    "payloadType": env_doc["payloadType"],
                    "signatures": [
                        {"sig": s["sig"], **({"keyid": s["keyid"]} if s["keyid"] else {})}
                        for s in env_doc["signatures"]
                    ],
                },
            }
        )
        layer = Blob(BUNDLE_V03_MEDIA_TYPE, bundle)
        empty = Blob(EMPTY_MEDIA_TYPE, EMPTY_BLOB)
        config = empty.descriptor()
        config["artifactType"] = BUNDLE_V03_MEDIA_TYPE  # cosign WriteReferrer sets it
        manifest = Manifest(
            _compact(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config,
                    "layers": [layer.descriptor()],
                    "annotations": {
                        ANN_BUNDLE_CONTENT: "dsse-envelope",
                        ANN_BUNDLE_PREDICATE_TYPE: predicate_type,
                        ANN_CREATED: self._created(),
                    },
                    "subject": image.descriptor(),
                    "artifactType": BUNDLE_V03_MEDIA_TYPE,
                }
            ),
            subject=image.digest,
        )
        return Published(
            layout="sigstore-bundle",
            subject=image,
            manifests=(manifest,),
            blobs=(empty, layer),
            statements=(stmt,),
            predicate_types=(predicate_type,),
            log_entries=entries,
            envelopes=(env,),
            bundle=bundle,
        )
