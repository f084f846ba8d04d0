"""Inputs of the ``bench_verify_*`` benchmarks: keys, DHI-layout bundles, large SBOMs.

Bundles are written directly with :func:`dhi_offline.bundle.writer.write_bundle` and
:mod:`dhi_offline.evidence.records`, holding Docker Hardened Images-layout attestations
(``dhi-scout``: an attestation manifest whose layer is the bare in-toto statement, and a
cosign signature manifest, referrer of it, whose simple-signing payload names the
attestation manifest and is signed by the publisher key). The statement, the
simple-signing payload and the signature config come from ``tests/support/publisher.py``;
the builder only adds what the publisher cannot: statements given as files, and the
bundle around them.

Large statements are generated straight to files and given to the writer as ``Path``
sources, so no benchmark ever holds a whole large bundle (or its members) in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import _timing  # noqa: F401 (puts the repository on sys.path for tests.support)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline import __version__
from dhi_offline.bundle import layout
from dhi_offline.bundle.manifest import ImageEntry, PlatformImage
from dhi_offline.bundle.signing import generate_keypair, load_private_key
from dhi_offline.bundle.writer import MemberSource, WrittenBundle, write_bundle
from dhi_offline.evidence.records import (
    AttestationRecord,
    EvidenceIndex,
    SignatureRef,
    record_id,
)
from dhi_offline.oci.mediatypes import (
    ANNOTATION_CREATED,
    COSIGN_ARTIFACT_SIG,
    COSIGN_SIMPLESIGNING,
    EMPTY_DIGEST,
    EMPTY_JSON,
    IN_TOTO,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    sha256_digest,
)
from dhi_offline.trust.keyring import Keyring, KeyringEntry
from dhi_offline.trust.keys import PublicKey, load_pem
from tests.support.publisher import (
    ANN_COSIGN_SIGNATURE,
    ANN_PREDICATE_TYPE_LAYER,
    CYCLONEDX,
    STATEMENT_V1,
    ImageRef,
    TestPublisher,
    _compact,
    _sig_config,
    simple_signing_payload,
)

BENCH_POLICY_SBOM = """\
name = "bench-sbom"
[attestations]
required = ["sbom"]
"""
"""A policy the large-SBOM bundles pass (they carry SBOMs only)."""


# ----------------------------------------------------------------- keys


@dataclass(frozen=True)
class Keys:
    """Throw-away exporter and publisher keys, as files and objects."""

    directory: Path
    exporter: ec.EllipticCurvePrivateKey
    publisher: ec.EllipticCurvePrivateKey

    @property
    def exporter_pub(self) -> Path:
        return self.directory / "exporter.pub"

    @property
    def publisher_pub(self) -> Path:
        return self.directory / "publisher.pub"

    def exporter_public(self) -> PublicKey:
        return load_pem(self.exporter_pub.read_bytes())

    def publisher_public(self) -> PublicKey:
        return load_pem(self.publisher_pub.read_bytes())

    @cached_property
    def signer(self) -> TestPublisher:
        return TestPublisher(self.publisher)

    def sign(self, data: bytes) -> bytes:
        """The publisher's ASN.1/DER ECDSA P-256 signature over SHA-256 of ``data``."""
        return self.signer.sign(data)


def load_keys(directory: Path) -> Keys:
    """The keys under ``directory``, generated on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "exporter.pem").exists():
        generate_keypair(directory / "exporter")
    pem = directory / "publisher.pem"
    if not pem.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        tmp = directory / ".publisher.pem.tmp"
        tmp.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (directory / "publisher.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        tmp.replace(pem)
    publisher = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(publisher, ec.EllipticCurvePrivateKey)
    exporter = load_private_key(directory / "exporter.pem")
    assert isinstance(exporter, ec.EllipticCurvePrivateKey)
    return Keys(directory=directory, exporter=exporter, publisher=publisher)


# ----------------------------------------------------------------- bundles


@dataclass(frozen=True)
class PlatformRef(ImageRef):
    """A platform manifest attestations are about (``name`` is the simple-signing
    docker-reference, as for the publisher's statements)."""

    platform: str = field(default="linux/amd64", kw_only=True)


@dataclass
class BundleBuilder:
    """Collects images, DHI-layout attestations and their records, then writes a bundle."""

    keys: Keys
    members: dict[str, MemberSource] = field(default_factory=dict)
    records: list[AttestationRecord] = field(default_factory=list)
    images: list[ImageEntry] = field(default_factory=list)
    signed: list[tuple[bytes, bytes]] = field(default_factory=list)
    """(payload, signature) of every publisher signature, for the raw-crypto floor."""
    member_bytes: int = 0

    def _blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        self.members[layout.blob_path(digest)] = data
        return digest

    def add_image(
        self, name: str, platforms: Sequence[str] = ("linux/amd64",), *, seed: str = ""
    ) -> tuple[str, list[PlatformRef]]:
        """An image index with one manifest per platform; returns (index digest, refs)."""
        entries: list[dict[str, Any]] = []
        refs: list[PlatformRef] = []
        for plat in platforms:
            os_name, arch = plat.split("/")[:2]
            layer = hashlib.sha256(f"layer:{name}:{plat}:{seed}".encode()).digest() * 4
            config = _compact(
                {
                    "architecture": arch,
                    "os": os_name,
                    "config": {"Env": ["PATH=/usr/bin"], "Labels": {"seed": seed}},
                    "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
                }
            )
            manifest = _compact(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": OCI_CONFIG,
                        "size": len(config),
                        "digest": sha256_digest(config),
                    },
                    "layers": [
                        {
                            "mediaType": OCI_LAYER_GZIP,
                            "size": len(layer),
                            "digest": sha256_digest(layer),
                        }
                    ],
                }
            )
            digest = self._blob(manifest)
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "size": len(manifest),
                    "digest": digest,
                    "platform": {"architecture": arch, "os": os_name},
                }
            )
            refs.append(PlatformRef(name, digest, len(manifest), platform=plat))
        index = _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        index_digest = self._blob(index)
        self.images.append(
            ImageEntry(
                reference=f"{name}:1.0",
                digest=index_digest,
                media_type=OCI_INDEX,
                platforms=tuple(PlatformImage(platform=r.platform, digest=r.digest) for r in refs),
            )
        )
        return index_digest, refs

    def add_attestation(
        self,
        image_digest: str,
        ref: PlatformRef,
        predicate_type: str,
        statement: bytes | Path,
        *,
        statement_digest: str | None = None,
        statement_size: int | None = None,
    ) -> AttestationRecord:
        """A DHI-layout attestation of ``statement`` (bytes, or a file with its digest and
        size), signed by the publisher key, with no transparency-log entry (as DHI may)."""
        if isinstance(statement, bytes):
            layer_digest, layer_size = self._blob(statement), len(statement)
        else:
            assert statement_digest is not None and statement_size is not None
            layer_digest, layer_size = statement_digest, statement_size
            self.members[layout.blob_path(layer_digest)] = statement
        self.member_bytes += layer_size
        empty = {"mediaType": OCI_EMPTY, "size": len(EMPTY_JSON), "digest": EMPTY_DIGEST}
        att = _compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": IN_TOTO,
                "config": empty,
                "layers": [
                    {
                        "mediaType": IN_TOTO,
                        "size": layer_size,
                        "digest": layer_digest,
                        "annotations": {ANN_PREDICATE_TYPE_LAYER: predicate_type},
                    }
                ],
                "subject": ref.descriptor(),
                "annotations": {ANNOTATION_CREATED: "2026-01-01T00:00:00Z"},
            }
        )
        att_digest = self._blob(att)
        payload = simple_signing_payload(ref.name, att_digest)
        signature = self.keys.sign(payload)
        self.signed.append((payload, signature))
        payload_digest = self._blob(payload)
        sig_config = _sig_config([payload_digest])
        sig_manifest = _compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": COSIGN_ARTIFACT_SIG,
                    "size": len(sig_config),
                    "digest": sha256_digest(sig_config),
                },
                "layers": [
                    {
                        "mediaType": COSIGN_SIMPLESIGNING,
                        "size": len(payload),
                        "digest": payload_digest,
                        "annotations": {ANN_COSIGN_SIGNATURE: base64.b64encode(signature).decode()},
                    }
                ],
                "subject": {"mediaType": OCI_MANIFEST, "size": len(att), "digest": att_digest},
                "artifactType": COSIGN_ARTIFACT_SIG,
            }
        )
        sig_digest = self._blob(sig_manifest)
        record = AttestationRecord(
            id=record_id("dhi-scout", ref.digest, att_digest, layer_digest),
            layout="dhi-scout",
            image=image_digest,
            platform=ref.platform,
            subject=ref.digest,
            manifest=att_digest,
            layer=layer_digest,
            predicate_type=predicate_type,
            source="bench",
            signatures=(SignatureRef(manifest=sig_digest, layer=payload_digest),),
        )
        self.records.append(record)
        return record

    def write(self, output: Path) -> WrittenBundle:
        """The signed bundle (the evidence index and the publisher keyring added)."""
        members = dict(self.members)
        members[layout.EVIDENCE] = EvidenceIndex(attestations=tuple(self.records)).to_json_bytes()
        members[layout.KEYRING] = json.dumps(
            self.publisher_keyring().to_json(), sort_keys=True, indent=1
        ).encode()
        now = datetime.now(UTC).replace(microsecond=0)
        return write_bundle(
            output,
            tool_version=__version__,
            created=now - timedelta(days=1),
            expires=now + timedelta(days=3650),
            sequence=1,
            images=self.images,
            members=members.items(),
            private_key=self.keys.exporter,
        )

    def publisher_keyring(self) -> Keyring:
        return Keyring("bench", (KeyringEntry("bench-publisher", self.keys.publisher_public()),))


# ----------------------------------------------------------------- large SBOMs

_LICENSES = (
    "Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause", "GPL-2.0-only", "GPL-3.0-or-later",
    "LGPL-2.1-or-later", "MPL-2.0", "ISC", "Zlib", "OpenSSL", "Python-2.0", "PSF-2.0",
    "Unlicense", "CC0-1.0", "Artistic-2.0", "BSL-1.0", "EPL-2.0", "curl", "X11",
)  # fmt: skip
_SYLLABLES = (
    "lib", "py", "go", "net", "ssl", "xml", "json", "z", "bz", "lz", "crypt", "util", "core",
    "http", "io", "fs", "re", "gtk", "dbus", "sys", "tls", "ffi", "yaml", "uuid", "sql",
    "pcre", "curl", "ssh", "gnu", "c", "std", "rt", "krb", "ldap", "idn", "magic", "cap",
)  # fmt: skip


def _words(rng: random.Random, n: int) -> list[str]:
    return [
        "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3)))
        + (f"-{rng.choice(_SYLLABLES)}" if rng.random() < 0.3 else "")
        for _ in range(n)
    ]


def _components(rng: random.Random, names: list[str], start: int, count: int) -> str:
    """``count`` CycloneDX components as JSON text (comma-separated, no brackets).

    Random-ish but shaped like a distro SBOM: package names from a vocabulary,
    versions, purls, licenses, a file path, and a SHA-256 for one in four components,
    so the JSON compresses (zstd) about as well as real SBOMs do, not trivially.
    """
    parts: list[str] = []
    for i in range(start, start + count):
        name = rng.choice(names)
        version = (
            f"{rng.randint(0, 30)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}-r{rng.randint(0, 9)}"
        )
        purl = f"pkg:apk/dhi/{name}@{version}?arch=x86_64&distro=dhi-3.22"
        extra = (
            f',"hashes":[{{"alg":"SHA-256","content":"{rng.randbytes(32).hex()}"}}]'
            if i % 4 == 0
            else ""
        )
        parts.append(
            f'{{"type":"library","bom-ref":"{purl}&id={i:07d}","name":"{name}",'
            f'"version":"{version}","purl":"{purl}"{extra},'
            f'"licenses":[{{"license":{{"id":"{rng.choice(_LICENSES)}"}}}}],'
            f'"properties":[{{"name":"dhi:package:file","value":"/usr/lib/{name}/'
            f'{rng.choice(names)}.so.{rng.randint(0, 9)}"}},'
            f'{{"name":"dhi:package:installed-size","value":"{rng.randint(1000, 9999999)}"}}]}}'
        )
    return ",".join(parts)


KEY_ORDERS = ("last", "sorted", "first")
"""Where the statement's ``predicate`` member sits: last (in-toto-golang, BuildKit,
cosign), after ``_type`` (sorted keys, canonical JSON), or first. All equally valid."""

SHAPES = (*KEY_ORDERS, "pretty", "nested")
""":data:`KEY_ORDERS` (compact), and two more ways publishers write statements:
``pretty``, sorted keys indented by two spaces, as ``jq -S .`` or Python's
``json.dumps(sort_keys=True, indent=2)`` write them (the predicate in the middle);
``nested``, compact with the predicate last, one component in four holding two nested
components (a hierarchical CycloneDX SBOM: libraries bundled in a JAR or a wheel)."""

_SENTINEL = "@@components@@"


def _nest(components: list[dict[str, object]]) -> None:
    for i, c in enumerate(components):
        if i % 4 == 1:
            c["components"] = [
                {**c, "bom-ref": f"{c['bom-ref']}/{k}", "name": f"{c['name']}-bundled{k}"}
                for k in range(2)
            ]


def _write_shaped_statement(
    path: Path,
    *,
    members: dict[str, object],
    predicate: dict[str, object],
    size: int,
    rng: random.Random,
    names: list[str],
    shape: str,
) -> tuple[str, int]:
    """``pretty`` and ``nested``: components built as objects, a batch at a time."""
    doc = {**members, "predicate": {**predicate, "components": [_SENTINEL]}}
    if shape == "pretty":
        text = json.dumps(doc, indent=2, sort_keys=True)
    else:
        text = json.dumps({**members, **{"predicate": doc["predicate"]}}, separators=(",", ":"))
    before, _, after = text.partition(f'"{_SENTINEL}"')
    line_start = before.rfind("\n") + 1
    indent = " " * (len(before) - line_start) if shape == "pretty" else ""
    before = before[:line_start] if shape == "pretty" else before
    digest = hashlib.sha256()
    written = 0
    with path.open("wb") as out:

        def emit(data: str) -> None:
            nonlocal written
            raw = data.encode()
            digest.update(raw)
            out.write(raw)
            written += len(raw)

        emit(before)
        i = 0
        while written + len(after) < size:
            batch = json.loads("[" + _components(rng, names, i, 2000) + "]")
            if shape == "nested":
                _nest(batch)
                chunk = ",".join(json.dumps(c, separators=(",", ":")) for c in batch)
            else:
                chunk = ",\n".join(
                    indent + json.dumps(c, indent=2, sort_keys=True).replace("\n", "\n" + indent)
                    for c in batch
                )
            emit(("," + ("\n" if shape == "pretty" else "") if i else "") + chunk)
            i += 2000
        emit(("\n" + indent[:-2] if shape == "pretty" else "") + after)
    return "sha256:" + digest.hexdigest(), written


def write_sbom_statement(
    path: Path, ref: PlatformRef, size: int, seed: int, *, order: str = "last"
) -> tuple[str, int]:
    """Write an in-toto statement holding a CycloneDX SBOM of about ``size`` bytes to
    ``path``, streaming (a batch of components at a time); returns (digest, size).
    ``order`` is one of :data:`SHAPES`."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    names = _words(rng, 4000)
    members: dict[str, object] = {
        "_type": STATEMENT_V1,
        "subject": [{"name": ref.name, "digest": {"sha256": ref.hex}}],
        "predicateType": CYCLONEDX,
    }
    predicate: dict[str, object] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{hashlib.sha256(str(seed).encode()).hexdigest()[:32]}",
        "version": 1,
        "metadata": {
            "timestamp": "2026-01-01T00:00:00Z",
            "component": {"type": "container", "name": ref.name, "version": ref.digest},
        },
    }
    if order in ("pretty", "nested"):
        return _write_shaped_statement(
            path,
            members=members,
            predicate=predicate,
            size=size,
            rng=rng,
            names=names,
            shape=order,
        )
    if order == "last":
        before, after = _compact(members)[:-1] + b",", b"}"
    elif order == "sorted":
        rest = {k: members[k] for k in ("predicateType", "subject")}
        before = _compact({"_type": STATEMENT_V1})[:-1] + b","
        after = b"," + _compact(rest)[1:]
    elif order == "first":
        before, after = b"{", b"," + _compact(members)[1:]
    else:
        raise ValueError(f"unknown key order {order!r}")
    head = before + b'"predicate":' + _compact(predicate)[:-1] + b',"components":['
    tail = b"]}" + after
    digest = hashlib.sha256()
    written = 0
    batch = 2000
    i = 0
    with path.open("wb") as out:

        def emit(data: bytes) -> None:
            nonlocal written
            digest.update(data)
            out.write(data)
            written += len(data)

        emit(head)
        while written + len(tail) < size:
            text = _components(rng, names, i, batch).encode()
            emit((b"," if i else b"") + text)
            i += batch
        emit(tail)
    return "sha256:" + digest.hexdigest(), written


def build_sbom_bundle(
    output: Path,
    keys: Keys,
    *,
    attestations: int,
    sbom_size: int,
    staging: Path,
    seed: int = 0,
    order: str = "last",
) -> tuple[WrittenBundle, BundleBuilder]:
    """A bundle of ``attestations`` SBOM attestations of ~``sbom_size`` bytes each: one
    single-platform image per SBOM. Statements are staged as files under ``staging``
    (removed afterwards), so memory stays at one batch of components."""
    staging.mkdir(parents=True, exist_ok=True)
    builder = BundleBuilder(keys)
    try:
        for n in range(attestations):
            image, (ref,) = builder.add_image(f"dhi.io/bench-sbom-{n:03d}", seed=str(seed))
            path = staging / f"sbom-{n:03d}.json"
            digest, size = write_sbom_statement(
                path, ref, sbom_size, seed * 100_000 + n, order=order
            )
            builder.add_attestation(
                image, ref, CYCLONEDX, path, statement_digest=digest, statement_size=size
            )
        written = builder.write(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written, builder
