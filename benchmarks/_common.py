"""Shared helpers of the ``bench_verify_*`` benchmarks: inputs, timing, the machine.

Bundles are written directly with :func:`dhi_offline.bundle.writer.write_bundle` and
:mod:`dhi_offline.evidence.records`, holding Docker Hardened Images-layout attestations
(``dhi-scout``: an attestation manifest whose layer is the bare in-toto statement, and a
cosign signature manifest, referrer of it, whose simple-signing payload names the
attestation manifest and is signed by the publisher key). The OCI objects are built as
``tests/support/publisher.py`` builds them, independently of the code under test.

Large statements are generated straight to files and given to the writer as ``Path``
sources, so no benchmark ever holds a whole large bundle (or its members) in memory.

Generated inputs are cached under ``$DHI_BENCH_CACHE`` (default
``/tmp/dhi-offline-bench-cache``), keyed by what they depend on; ``--fresh`` on every
benchmark ignores the cache. The cache holds throw-away keys generated for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform as host_platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # tests.support, when run as a script. Last, so that dhi_offline still comes from
    # PYTHONPATH (a scratch copy with a fix to measure) or the installed package.
    sys.path.append(str(REPO_ROOT))

import cryptography  # noqa: E402
import zstandard  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

import dhi_offline  # noqa: E402
from dhi_offline import __version__  # noqa: E402
from dhi_offline.bundle import layout  # noqa: E402
from dhi_offline.bundle.manifest import ImageEntry, PlatformImage  # noqa: E402
from dhi_offline.bundle.signing import generate_keypair, load_private_key  # noqa: E402
from dhi_offline.bundle.writer import MemberSource, WrittenBundle, write_bundle  # noqa: E402
from dhi_offline.evidence.records import (  # noqa: E402
    AttestationRecord,
    EvidenceIndex,
    SignatureRef,
    record_id,
)
from dhi_offline.trust.keyring import Keyring, KeyringEntry  # noqa: E402
from dhi_offline.trust.keys import PublicKey, load_pem  # noqa: E402

CACHE_ROOT = Path(os.environ.get("DHI_BENCH_CACHE", "/tmp/dhi-offline-bench-cache"))  # noqa: S108
GENERATOR_VERSION = "1"
"""Bump when what the generators write changes (invalidates the cache)."""
VENV_BIN = REPO_ROOT / ".venv" / "bin"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
COSIGN_SIG_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
ANN_PREDICATE_TYPE_LAYER = "in-toto.io/predicate-type"
ANN_COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
ANN_CREATED = "org.opencontainers.image.created"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
CYCLONEDX = "https://cyclonedx.org/bom/v1.6"

BENCH_POLICY_SBOM = """\
name = "bench-sbom"
[attestations]
required = ["sbom"]
"""
"""A policy the large-SBOM bundles pass (they carry SBOMs only)."""


# ----------------------------------------------------------------- small helpers


def compact(obj: Any) -> bytes:
    """JSON as Go's encoding/json writes it: no whitespace, fields in the given order."""
    return json.dumps(obj, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def fmt_mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def repeat(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall seconds of ``runs`` calls of ``fn``."""
    out: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def interleaved(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Wall seconds of each function, run in turn ``runs`` times (A B A B ...), so slow
    phases of a noisy machine hit every contender alike."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - started)
    return out


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


# ----------------------------------------------------------------- the machine


def machine() -> dict[str, str]:
    """nproc, memory, Python, CPU model, and the versions that matter here."""
    memory = ""
    if shutil.which("free"):
        done = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            if line.startswith("Mem:"):
                memory = line.split()[1]
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libzstd = ".".join(map(str, zstandard.ZSTD_VERSION))
    zstd_cli = ""
    if shutil.which("zstd"):
        done = subprocess.run(["zstd", "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"v\d+\.\d+\.\d+", done.stdout)
        zstd_cli = f"zstd CLI {found.group(0)}" if found else done.stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "affinity": str(len(os.sched_getaffinity(0))),
        "memory": memory,
        "cpu": cpu,
        "python": host_platform.python_version(),
        "system": f"{host_platform.system()} {host_platform.release()} {host_platform.machine()}",
        "dhi_offline": __version__,
        "cryptography": cryptography.__version__,
        "zstandard": f"{zstandard.__version__} (libzstd {libzstd})",
        "zstd_cli": zstd_cli,
    }


def print_machine() -> dict[str, str]:
    m = machine()
    print(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} memory, Python {m['python']}, "
        f"{m['system']}"
    )
    print(
        f"versions: dhi-offline {m['dhi_offline']} ({Path(dhi_offline.__file__).parent}), "
        f"cryptography {m['cryptography']}, "
        f"zstandard {m['zstandard']}" + (f", {m['zstd_cli']}" if m["zstd_cli"] else "")
    )
    return m


def pin_to_one_core() -> int | None:
    """Pin this process (and its children) to one CPU; returns it, or None if not allowed."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return cpus[-1]
    except (AttributeError, OSError):
        return None


# ----------------------------------------------------------------- keys and cache


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

    def sign(self, data: bytes) -> bytes:
        """The publisher's ASN.1/DER ECDSA P-256 signature over SHA-256 of ``data``."""
        return self.publisher.sign(data, ec.ECDSA(hashes.SHA256()))


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


def cache_dir(name: str, *, fresh: bool = False) -> Path:
    """``CACHE_ROOT/<name>-g<GENERATOR_VERSION>-v<dhi-offline version>``, emptied when fresh."""
    path = CACHE_ROOT / f"{name}-g{GENERATOR_VERSION}-v{__version__}"
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_file(path: Path, build: Callable[[Path], object]) -> Path:
    """``path`` if it exists, else ``build(tmp)`` then an atomic rename to ``path``."""
    if path.exists():
        return path
    tmp = path.with_name(f".{path.name}.building")
    if tmp.exists():
        if tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink()
    build(tmp)
    tmp.replace(path)
    return path


# ----------------------------------------------------------------- bundles


@dataclass(frozen=True)
class PlatformRef:
    """A platform manifest attestations are about."""

    name: str
    """Repository, e.g. ``dhi.io/python`` (the simple-signing docker-reference)."""
    platform: str
    digest: str
    size: int

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": OCI_MANIFEST, "size": self.size, "digest": self.digest}


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
            config = compact(
                {
                    "architecture": arch,
                    "os": os_name,
                    "config": {"Env": ["PATH=/usr/bin"], "Labels": {"seed": seed}},
                    "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
                }
            )
            manifest = compact(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": OCI_CONFIG,
                        "size": len(config),
                        "digest": sha256_digest(config),
                    },
                    "layers": [
                        {"mediaType": OCI_LAYER, "size": len(layer), "digest": sha256_digest(layer)}
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
            refs.append(PlatformRef(name, plat, digest, len(manifest)))
        index = compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
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
        empty = {
            "mediaType": EMPTY_MEDIA_TYPE,
            "size": len(EMPTY_BLOB),
            "digest": sha256_digest(EMPTY_BLOB),
        }
        att = compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": IN_TOTO_MEDIA_TYPE,
                "config": empty,
                "layers": [
                    {
                        "mediaType": IN_TOTO_MEDIA_TYPE,
                        "size": layer_size,
                        "digest": layer_digest,
                        "annotations": {ANN_PREDICATE_TYPE_LAYER: predicate_type},
                    }
                ],
                "subject": ref.descriptor(),
                "annotations": {ANN_CREATED: "2026-01-01T00:00:00Z"},
            }
        )
        att_digest = self._blob(att)
        payload = compact(
            {
                "critical": {
                    "identity": {"docker-reference": ref.name},
                    "image": {"docker-manifest-digest": att_digest},
                    "type": "cosign container image signature",
                },
                "optional": None,
            }
        )
        signature = self.keys.sign(payload)
        self.signed.append((payload, signature))
        payload_digest = self._blob(payload)
        sig_config = compact(
            {
                "architecture": "",
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
                "config": {},
            }
        )
        sig_manifest = compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": COSIGN_SIG_ARTIFACT_TYPE,
                    "size": len(sig_config),
                    "digest": sha256_digest(sig_config),
                },
                "layers": [
                    {
                        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                        "size": len(payload),
                        "digest": payload_digest,
                        "annotations": {ANN_COSIGN_SIGNATURE: b64(signature)},
                    }
                ],
                "subject": {"mediaType": OCI_MANIFEST, "size": len(att), "digest": att_digest},
                "artifactType": COSIGN_SIG_ARTIFACT_TYPE,
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


def statement_bytes(ref: PlatformRef, predicate_type: str, predicate: Any) -> bytes:
    """An in-toto Statement v1 about ``ref``."""
    return compact(
        {
            "_type": STATEMENT_V1,
            "subject": [{"name": ref.name, "digest": {"sha256": ref.hex}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


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


def write_sbom_statement(
    path: Path, ref: PlatformRef, size: int, seed: int, *, order: str = "last"
) -> tuple[str, int]:
    """Write an in-toto statement holding a CycloneDX SBOM of about ``size`` bytes to
    ``path``, streaming (a batch of components at a time); returns (digest, size).
    ``order`` is one of :data:`KEY_ORDERS`."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    names = _words(rng, 4000)
    members = {
        "_type": STATEMENT_V1,
        "subject": [{"name": ref.name, "digest": {"sha256": ref.hex}}],
        "predicateType": CYCLONEDX,
    }
    if order == "last":
        before, after = compact(members)[:-1] + b",", b"}"
    elif order == "sorted":
        rest = {k: members[k] for k in ("predicateType", "subject")}
        before = compact({"_type": STATEMENT_V1})[:-1] + b","
        after = b"," + compact(rest)[1:]
    elif order == "first":
        before, after = b"{", b"," + compact(members)[1:]
    else:
        raise ValueError(f"unknown key order {order!r}")
    head = (
        before
        + b'"predicate":'
        + compact(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "serialNumber": f"urn:uuid:{hashlib.sha256(str(seed).encode()).hexdigest()[:32]}",
                "version": 1,
                "metadata": {
                    "timestamp": "2026-01-01T00:00:00Z",
                    "component": {"type": "container", "name": ref.name, "version": ref.digest},
                },
            }
        )[:-1]
        + b',"components":['
    )
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


# ----------------------------------------------------------------- running the CLI


def cli_env(work: Path) -> dict[str, str]:
    """An environment with an empty trust store, archive and state of its own."""
    env = dict(os.environ)
    env["DHI_OFFLINE_CONFIG_DIR"] = str(work / "cli-config")
    env["DHI_OFFLINE_DATA_DIR"] = str(work / "cli-data")
    env["DHI_OFFLINE_STATE_DIR"] = str(work / "cli-state")
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def dhi_offline_cli() -> list[str]:
    exe = VENV_BIN / "dhi-offline"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "dhi_offline"]


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    returncode: int
    max_rss: int
    """Peak resident set size of the child, bytes (``wait4`` rusage of that one child)."""
    user: float
    system: float
    stdout: bytes
    stderr: bytes


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``argv`` and measure it alone: wall time and that child's own rusage."""

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            seconds=seconds,
            returncode=proc.returncode,
            max_rss=usage.ru_maxrss * 1024,
            user=usage.ru_utime,
            system=usage.ru_stime,
            stdout=out.read(),
            stderr=err.read(),
        )


def verify_argv(bundle: Path, keys: Keys, work: Path, *, policy: Path | None) -> list[str]:
    """``dhi-offline verify`` of ``bundle`` trusting the bench keys, JSON report."""
    argv = [
        *dhi_offline_cli(),
        "verify",
        str(bundle),
        "--trust-exporter",
        str(keys.exporter_pub),
        "--trust-publisher",
        str(keys.publisher_pub),
        "--format",
        "json",
    ]
    if policy is not None:
        argv += ["--policy", str(policy)]
    return argv


def tar_stream_size(bundle: Path) -> int:
    """The content size a bundle's zstd frame header declares (the tar stream's length)."""
    with bundle.open("rb") as fh:
        return int(zstandard.get_frame_parameters(fh.read(18)).content_size)


def chunks_of(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def profile(fn: Any) -> None:
    """Run ``fn`` under pyinstrument and print the profile (``--profile``)."""
    try:
        from pyinstrument import Profiler  # noqa: PLC0415 (optional: only for --profile)
    except ImportError:
        print("--profile: pyinstrument is not installed (.venv/bin/pip install pyinstrument)")
        return
    profiler = Profiler(interval=0.001)
    profiler.start()
    fn()
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))
