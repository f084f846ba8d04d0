#!/usr/bin/env python3
"""Benchmark ``dhi-offline export``: N images x 2 platforms x 8 attestations, loopback.

What is measured (printed as ``name: value`` lines; ``--json FILE`` writes them too):

- export throughput: images and attestations per second of one ``dhi-offline export``
  of all N images into one bundle (run in-process through the CLI entry point, as the
  tests do), with Rekor completion from a served Rekor double; the wall time is split
  into time spent inside registry requests, inside Rekor requests, and the rest
  (verification, bundle writing), by timing subclasses of the CLI's clients;
- HTTP requests: registry requests the export made (``RegistryClient.requests``, split
  by kind) against the minimum a client needs for what was published (counted from the
  published objects: one GET per object the bundle needs plus one listing per referrers
  subject and per ``.att`` lookup); Rekor requests against the SET-only entries;
- concurrency: the exporter fetches sequentially (``run_export`` walks images, platforms
  and referrers one request at a time; ``RegistryClient`` is thread-safe but nothing
  drives it in parallel), so only the sequential export is measured. As a bound on what
  a parallel exporter could gain, a sample of the same objects is fetched with the same
  client from 1 and from 8 threads, straight from the loopback registries and through a
  proxy that holds each request 20 ms (a stand-in for a registry across a network);
- bundle size per attestation.

Publishing is timed but not part of the figures. Images and attestations are built in
memory with ``tests.support.publisher`` (real ECDSA signatures, logged in the Rekor
double): per platform 4 DHI-style attestations with cosign signatures in a separate
attestation registry (as ``registry.scout.docker.com`` holds them), one cosign ``.att``
tag with 2 DSSE layers and 2 sigstore-bundle referrers (one SET-only) in the image
registry. Referrers are published with the ``sha256-<hex>`` tag fallback (distribution
2.8 has no referrers API). ``--publish storage`` (the default) writes the exact bytes
into distribution's filesystem storage layout, which the registries serve as if pushed;
``--publish api`` pushes them with ``RegistryClient.push_blob``/``push_manifest`` from 8
threads instead. On the 2-core reference machine the API path took 6.9 s for 20 images
(3,140 requests: HEAD, POST and PUT per blob; more threads did not help, the registry
is the bottleneck), the storage path 1.5 s; for 200 images about 70 s against 15 s.
Writing OCI layouts and running ``skopeo copy`` per image goes through the same uploads,
plus a process start per image.

Usage: ``python benchmarks/bench_export.py [--images N | --quick] [--publish storage|api]
[--json FILE]``.
Needs Debian's ``docker-registry``; exits 0 with a note when it is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform as host_platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # tests.support, when run as a script

import httpx  # noqa: E402

from dhi_offline.bundle.signing import generate_keypair  # noqa: E402
from dhi_offline.cli import export as export_cmd  # noqa: E402
from dhi_offline.cli.main import main as cli_main  # noqa: E402
from dhi_offline.oci.auth import NoCredentials  # noqa: E402
from dhi_offline.oci.client import RegistryClient  # noqa: E402
from dhi_offline.oci.content import referrers_tag  # noqa: E402
from dhi_offline.tlog.rekor_client import RekorClient  # noqa: E402
from tests.support.publisher import (  # noqa: E402
    CTRF_TESTS,
    CYCLONEDX,
    INTOTO_VULNS,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    OPENVEX,
    SLSA_PROVENANCE_V1,
    Blob,
    ImageRef,
    Manifest,
    Published,
    TestPublisher,
    ctrf_tests,
    cyclonedx_sbom,
    intoto_vulns,
    openvex,
    slsa_provenance_v1,
)
from tests.support.registry import (  # noqa: E402
    Fault,
    FaultProxy,
    RunningRegistry,
    registry_binary,
    run_registry,
)
from tests.support.rekor_double import RekorDouble  # noqa: E402

PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))
TAG = "1.0"
LOG_TIME = 1_775_000_000
VSA = "https://slsa.dev/verification_summary/v1"
SPDX = "https://spdx.dev/Document/v2.3"
SBOM_COMPONENTS = 40
PUSH_THREADS = 8
FETCH_THREADS = 8
LATENCY = 0.02
"""Seconds each request is held by the latency stand-in (a nearby cloud registry)."""
LATENCY_SAMPLE = 400
"""Objects fetched through the latency stand-in (enough for a stable ratio)."""
FETCH_SAMPLE = 2000
"""Objects fetched straight from the loopback registries, from 1 and from 8 threads."""


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ----------------------------------------------------------------- what is published


@dataclass
class Repo:
    """Objects for one repository of one registry, in push order."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    manifests: list[tuple[str, Manifest]] = field(default_factory=list)
    """(tag or digest to push under, manifest)."""
    referrers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    needed: list[tuple[str, bool]] = field(default_factory=list)
    """(digest, is a manifest) of every object an export reads: the manifests, and the
    layers of attestation manifests (never image layers or configs)."""

    def add(self, items: Sequence[Published]) -> None:
        for item in items:
            for b in item.blobs:
                self.blobs[b.digest] = b
            for m in item.manifests:
                self.manifests.append((m.tag or m.digest, m))
                self.needed.append((m.digest, True))
                self.needed.extend((d["digest"], False) for d in m.layer_descriptors())
                if m.subject is not None:
                    self.referrers.setdefault(m.subject, []).append(m.descriptor())


@dataclass
class ImageSet:
    """One image: its objects in the image registry and in the attestation registry."""

    repository: str
    index: Manifest
    platform_manifests: list[Manifest]
    image_repo: Repo
    att_repo: Repo
    minimum_requests: int
    set_only_entries: int
    attestations: int


def build_image_set(i: int, publisher: TestPublisher) -> ImageSet:
    """Image ``i``: an index of two platform manifests and 8 attestations per platform."""
    repository = f"bench/img-{i:04d}"
    image_repo, att_repo = Repo(), Repo()
    platform_manifests: list[Manifest] = []
    entries: list[dict[str, Any]] = []
    minimum = 1 + len(PLATFORMS)  # the tag, then each platform manifest
    set_only = attestations = 0
    for os_name, arch in PLATFORMS:
        layer = Blob(OCI_LAYER, f"layer {repository} {arch}\n".encode() * 8)
        config = Blob(
            OCI_CONFIG,
            _compact(
                {
                    "architecture": arch,
                    "os": os_name,
                    "config": {"Env": ["PATH=/usr/bin"]},
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
        image_repo.blobs.update({config.digest: config, layer.digest: layer})
        image_repo.manifests.append((manifest.digest, manifest))
        image_repo.needed.append((manifest.digest, True))
        platform_manifests.append(manifest)
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "size": manifest.size,
                "digest": manifest.digest,
                "platform": {"architecture": arch, "os": os_name},
            }
        )
        ref = ImageRef(name=f"dhi.io/{repository}", digest=manifest.digest, size=manifest.size)
        # (a) DHI / Docker Scout: 4 in the attestation registry, each signed and logged.
        dhi = [
            publisher.dhi_attestation(ref, CTRF_TESTS, ctrf_tests()),
            publisher.dhi_attestation(
                ref, CYCLONEDX, cyclonedx_sbom(ref, n_components=SBOM_COMPONENTS)
            ),
            publisher.dhi_attestation(ref, SLSA_PROVENANCE_V1, slsa_provenance_v1(ref)),
            publisher.dhi_attestation(
                ref, OPENVEX, openvex(ref, [("CVE-2025-0001", "not_affected")])
            ),
        ]
        att_repo.add(dhi)
        # (b) cosign attest: one .att tag with 2 DSSE layers in the image registry.
        att = publisher.cosign_att(
            ref,
            [(INTOTO_VULNS, intoto_vulns({"CVE-2025-0001": "LOW"})), (SPDX, {"spdx": "2.3"})],
        )
        # (c) cosign 3 / GitHub: 2 sigstore-bundle referrers, one with its proof.
        bundles = [
            publisher.bundle_attestation(ref, VSA, {"verificationResult": "PASSED"}),
            publisher.bundle_attestation(ref, SPDX, {"spdx": "2.3"}, tlog="set-only"),
        ]
        image_repo.add([att, *bundles])
        attestations += len(dhi) + 2 + len(bundles)
        set_only += len(dhi) + 2 + 1
        # The minimum a client needs, per platform:
        #   image registry: 1 referrers listing, 1 .att tag (the .att manifest itself),
        #   2 DSSE blobs, 2 bundle manifests + 2 bundle blobs;
        #   attestation registry: 1 referrers listing, and per DHI attestation its
        #   manifest, statement blob, signature listing, signature manifest, payload blob.
        minimum += (1 + 1 + 2 + 4) + (1 + 5 * len(dhi))
    index = Manifest(
        _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        media_type=OCI_INDEX,
    )
    image_repo.manifests.append((TAG, index))
    image_repo.needed.append((index.digest, True))
    return ImageSet(
        repository,
        index,
        platform_manifests,
        image_repo,
        att_repo,
        minimum,
        set_only,
        attestations,
    )


def _referrers_indexes(repo: Repo) -> list[tuple[str, bytes]]:
    """(tag, index bytes): the ``sha256-<hex>`` referrers tag of every subject."""
    return [
        (
            referrers_tag(subject),
            _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}),
        )
        for subject, descriptors in repo.referrers.items()
    ]


def push_repo(client: RegistryClient, host: str, repository: str, repo: Repo) -> None:
    """Publish through the distribution API, as a client would."""
    for blob in repo.blobs.values():
        client.push_blob(host, repository, blob.data, blob.media_type)
    for ref, m in repo.manifests:
        client.push_manifest(host, repository, ref, m.data, m.media_type)
    for tag, index in _referrers_indexes(repo):
        client.push_manifest(host, repository, tag, index, OCI_INDEX)


def _write_once(path: Path, data: bytes) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def seed_repo(storage: Path, repository: str, repo: Repo) -> None:
    """Publish by writing distribution's filesystem storage layout directly.

    The same bytes the API would store, where its filesystem driver keeps them
    (distribution ``registry/storage/paths.go``): blob data under ``blobs/``, per
    repository a ``_layers`` link per blob, a ``_manifests/revisions`` link per manifest
    and ``_manifests/tags/<tag>/{current,index}`` links per tag. The registry reads
    these on every request (no blob-descriptor cache is configured), so no restart is
    needed. Used because each API blob upload costs ~13 ms on the 2-core test machine
    whatever the client's concurrency (the registry serializes them).
    """
    v2 = storage / "docker" / "registry" / "v2"
    repo_dir = v2 / "repositories" / repository

    def blob(data: bytes) -> str:
        hex_digest = hashlib.sha256(data).hexdigest()
        _write_once(v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data", data)
        return hex_digest

    for b in repo.blobs.values():
        hex_digest = blob(b.data)
        _write_once(repo_dir / "_layers" / "sha256" / hex_digest / "link", b.digest.encode())
    tagged = [(ref, m.data) for ref, m in repo.manifests] + _referrers_indexes(repo)
    for ref, data in tagged:
        hex_digest = blob(data)
        link = f"sha256:{hex_digest}".encode()
        manifests = repo_dir / "_manifests"
        _write_once(manifests / "revisions" / "sha256" / hex_digest / "link", link)
        if not ref.startswith("sha256:"):
            current = manifests / "tags" / ref / "current" / "link"
            current.parent.mkdir(parents=True, exist_ok=True)
            current.write_bytes(link)
            _write_once(manifests / "tags" / ref / "index" / "sha256" / hex_digest / "link", link)


# ----------------------------------------------------------------- measuring the export


def request_kind(request: httpx.Request) -> str:
    """What a registry request was for, from its method and path."""
    path = request.url.path
    if "/referrers/" in path:
        return "referrers API"
    if "/blobs/" in path:
        return "blob"
    if "/manifests/" in path:
        ref = path.rsplit("/manifests/", 1)[1]
        if ref.endswith(".att"):
            return ".att tag"
        if ref.endswith(".sig"):
            return ".sig tag"
        if ref.startswith("sha256-"):
            return "referrers fallback tag"
        if ref.startswith("sha256:"):
            return "manifest by digest"
        return "tag"
    return "other"


@dataclass
class ExportRun:
    seconds: float
    cpu_seconds: float
    """CPU time of this Python process (exporter, and the Rekor double it talks to)."""
    registry_seconds: float
    """Wall time spent inside registry requests (RegistryClient._perform)."""
    rekor_seconds: float
    """Wall time spent inside Rekor requests (RekorClient.entry_by_index etc.)."""
    code: int
    summary: dict[str, Any]
    requests: int
    kinds: Counter[str]
    rekor_requests: int
    bundle_size: int
    stderr: str


@contextmanager
def _patched_env(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_export(argv: list[str], work: Path, name: str, rekor: RekorDouble) -> ExportRun:
    """One ``dhi-offline export`` in-process, timing and counting what it asks for.

    The CLI's ``RegistryClient`` and ``RekorClient`` are swapped for subclasses that
    count requests by kind and add up the time spent waiting on each service.
    """
    made: list[RegistryClient] = []
    kinds: Counter[str] = Counter()
    spent = {"registry": 0.0, "rekor": 0.0}

    class Counting(RegistryClient):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

        def _count_request(self, request: httpx.Request) -> None:
            super()._count_request(request)
            kinds[request_kind(request)] += 1

        def _perform(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super()._perform(*args, **kwargs)
            finally:
                spent["registry"] += time.perf_counter() - started

    class TimedRekor(RekorClient):
        def entry_by_index(self, log_index: int) -> Any:
            started = time.perf_counter()
            try:
                return super().entry_by_index(log_index)
            finally:
                spent["rekor"] += time.perf_counter() - started

        def consistency_proof(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().consistency_proof(*args, **kwargs)
            finally:
                spent["rekor"] += time.perf_counter() - started

    out = work / f"{name}.dhi.tar.zst"
    stdout, stderr = io.StringIO(), io.StringIO()
    originals = export_cmd.RegistryClient, export_cmd.RekorClient
    export_cmd.RegistryClient = Counting  # type: ignore[misc]
    export_cmd.RekorClient = TimedRekor  # type: ignore[misc]
    rekor_before = len(rekor.requests)
    try:
        with (
            _patched_env(
                DHI_OFFLINE_STATE_DIR=str(work / f"state-{name}"),
                DOCKER_CONFIG=str(work / "no-docker-config"),
                SOURCE_DATE_EPOCH=None,
            ),
            redirect_stdout(stdout),
            redirect_stderr(stderr),
        ):
            cpu = time.process_time()
            started = time.perf_counter()
            code = cli_main([*argv, "-o", str(out), "--format", "json"])
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
    finally:
        export_cmd.RegistryClient, export_cmd.RekorClient = originals  # type: ignore[misc]
    summary = json.loads(stdout.getvalue()) if stdout.getvalue().strip() else {}
    return ExportRun(
        seconds=seconds,
        cpu_seconds=cpu,
        registry_seconds=spent["registry"],
        rekor_seconds=spent["rekor"],
        code=code,
        summary=summary,
        requests=sum(c.requests for c in made),
        kinds=kinds,
        rekor_requests=len(rekor.requests) - rekor_before,
        bundle_size=out.stat().st_size if out.exists() else 0,
        stderr=stderr.getvalue().strip(),
    )


class LatencyProxy(FaultProxy):
    """A loopback proxy that holds every request ``delay`` seconds: a stand-in for a
    registry across a network (TCP_NODELAY, so it adds no Nagle stalls of its own)."""

    def __init__(self, upstream: str, delay: float) -> None:
        super().__init__(upstream, [Fault("stall", times=-1, stall_seconds=delay)])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()
        return type("NoDelayHandler", (base,), {"disable_nagle_algorithm": True})


def fetch_all(
    objects: list[tuple[str, str, str, bool]], threads: int, via: dict[str, str] | None = None
) -> tuple[float, int]:
    """GET every (host, repository, digest, is_manifest) with ``threads`` threads
    (``via`` maps a registry host to the proxy to use instead)."""
    with RegistryClient(credentials=NoCredentials(), concurrency=threads) as client:

        def get(obj: tuple[str, str, str, bool]) -> int:
            host, repository, digest, is_manifest = obj
            host = (via or {}).get(host, host)
            if is_manifest:
                return len(client.get_manifest(host, repository, digest).data)
            return len(client.get_blob(host, repository, digest))

        started = time.perf_counter()
        if threads == 1:
            total = sum(get(o) for o in objects)
        else:
            with ThreadPoolExecutor(threads) as pool:
                total = sum(pool.map(get, objects))
        return time.perf_counter() - started, total


def fetched_objects(
    sets: list[ImageSet], image_host: str, att_host: str
) -> list[tuple[str, str, str, bool]]:
    """Every manifest and blob an export of ``sets`` reads, with where it lives."""
    out: list[tuple[str, str, str, bool]] = []
    for s in sets:
        for host, repo in ((image_host, s.image_repo), (att_host, s.att_repo)):
            needed = dict(repo.needed)  # each object once, in first-seen order
            out += [(host, s.repository, d, is_manifest) for d, is_manifest in needed.items()]
    return out


# ----------------------------------------------------------------- the machine


def machine() -> dict[str, str]:
    free = shutil.which("free")
    memory = ""
    if free:
        done = subprocess.run([free, "-h"], capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            if line.startswith("Mem:"):
                memory = line.split()[1]
    return {
        "cpus": str(os.cpu_count()),
        "memory": memory,
        "python": host_platform.python_version(),
        "system": f"{host_platform.system()} {host_platform.release()} {host_platform.machine()}",
    }


# ----------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images to publish and export")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 images, smaller fetch samples"
    )
    parser.add_argument(
        "--publish",
        choices=("storage", "api"),
        default="storage",
        help="seed the registries' storage directly (fast) or push through the API",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    n_images = 20 if args.quick else args.images
    fetch_sample = 200 if args.quick else FETCH_SAMPLE
    latency_sample = 60 if args.quick else LATENCY_SAMPLE
    if registry_binary() is None:
        print("bench_export: skipped: docker-registry is not installed")
        return 0

    figures: dict[str, Any] = {"machine": machine(), "images": n_images}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        rekor = RekorDouble(clock=lambda: LOG_TIME)
        (work / "tr.json").write_bytes(rekor.trusted_root_json())
        publisher = TestPublisher(rekor=rekor)
        (work / "publisher.pub").write_bytes(publisher.public_key_pem)
        generate_keypair(work / "exporter")
        rekor_url = stack.enter_context(rekor.serve())
        image_reg: RunningRegistry = stack.enter_context(run_registry(work / "reg-images"))
        att_reg: RunningRegistry = stack.enter_context(run_registry(work / "reg-attestations"))

        started = time.perf_counter()
        sets = [build_image_set(i, publisher) for i in range(n_images)]
        built = time.perf_counter() - started
        started = time.perf_counter()
        push_requests = 0
        if args.publish == "api":
            with RegistryClient(credentials=NoCredentials(), concurrency=PUSH_THREADS) as client:

                def push(s: ImageSet) -> None:
                    push_repo(client, image_reg.host, s.repository, s.image_repo)
                    push_repo(client, att_reg.host, s.repository, s.att_repo)

                with ThreadPoolExecutor(PUSH_THREADS) as pool:
                    list(pool.map(push, sets))
                push_requests = client.requests
        else:
            for s in sets:
                seed_repo(image_reg.storage, s.repository, s.image_repo)
                seed_repo(att_reg.storage, s.repository, s.att_repo)
        figures["publish"] = {
            "method": args.publish,
            "build_and_sign_s": round(built, 2),
            "publish_s": round(time.perf_counter() - started, 2),
            "push_requests": push_requests,
        }

        base = [
            "export",
            *(f"{image_reg.host}/{s.repository}:{TAG}" for s in sets),
            "--attestations-from",
            att_reg.host,
            "--key",
            str(work / "publisher.pub"),
            "--signing-key",
            str(work / "exporter.pem"),
            "--trusted-root",
            str(work / "tr.json"),
        ]
        full = run_export([*base, "--rekor-url", rekor_url], work, "full", rekor)
        if full.code != 0:
            print(f"bench_export: export failed ({full.code}): {full.stderr}", file=sys.stderr)
            return 1

        objects = fetched_objects(sets, image_reg.host, att_reg.host)[:fetch_sample]
        seq_s, seq_bytes = fetch_all(objects, 1)
        par_s, par_bytes = fetch_all(objects, FETCH_THREADS)
        assert seq_bytes == par_bytes
        sample = objects[:latency_sample]
        with LatencyProxy(image_reg.host, LATENCY) as p1, LatencyProxy(att_reg.host, LATENCY) as p2:
            via = {image_reg.host: p1.host, att_reg.host: p2.host}
            lat_seq_s, _ = fetch_all(sample, 1, via)
            lat_par_s, _ = fetch_all(sample, FETCH_THREADS, via)

    attestations = sum(s.attestations for s in sets)
    minimum = sum(s.minimum_requests for s in sets)
    set_only = sum(s.set_only_entries for s in sets)
    verified = full.summary["attestations"]["verified"]
    other_s = full.seconds - full.registry_seconds - full.rekor_seconds
    figures["export"] = {
        "attestations": attestations,
        "verified": verified,
        "seconds": round(full.seconds, 2),
        "images_per_s": round(n_images / full.seconds, 1),
        "attestations_per_s": round(attestations / full.seconds, 1),
        "registry_share": round(full.registry_seconds / full.seconds, 2),
        "rekor_share": round(full.rekor_seconds / full.seconds, 2),
        "other_share": round(other_s / full.seconds, 2),
        "cpu_seconds": round(full.cpu_seconds, 2),
        "registry_requests": full.requests,
        "registry_requests_minimum": minimum,
        "registry_requests_ratio": round(full.requests / minimum, 2),
        "ms_per_registry_request": round(1000 * full.registry_seconds / full.requests, 2),
        "requests_by_kind": dict(sorted(full.kinds.items())),
        "rekor_requests": full.rekor_requests,
        "rekor_requests_minimum": set_only,
        "completed_from_rekor": full.summary["tlog"]["completedFromRekor"],
        "bundle_bytes": full.bundle_size,
        "bundle_bytes_per_attestation": round(full.bundle_size / attestations),
        "concurrency": "none: the exporter fetches sequentially",
    }
    figures["client_fetch"] = {
        "objects": len(objects),
        "sequential_s": round(seq_s, 2),
        "threads": FETCH_THREADS,
        "threads_s": round(par_s, 2),
        "speedup": round(seq_s / par_s, 2),
        "latency_ms": round(LATENCY * 1000),
        "latency_objects": len(sample),
        "latency_sequential_s": round(lat_seq_s, 2),
        "latency_threads_s": round(lat_par_s, 2),
        "latency_speedup": round(lat_seq_s / lat_par_s, 2),
        "projected_sequential_export_s_at_latency": round(full.requests * LATENCY, 1),
    }
    _print(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    if verified != attestations:
        print(f"bench_export: only {verified} of {attestations} verified", file=sys.stderr)
        return 1
    return 0


def _print(figures: dict[str, Any]) -> None:
    m, e, c, p = figures["machine"], figures["export"], figures["client_fetch"], figures["publish"]
    n = figures["images"]
    lines = [
        f"machine: {m['cpus']} CPUs, {m['memory']} memory, Python {m['python']}, {m['system']}",
        f"workload: {n} images x {len(PLATFORMS)} platforms x 8 attestations "
        f"= {e['attestations']} attestations ({e['verified']} verified)",
        f"publish ({p['method']}): build+sign {p['build_and_sign_s']} s, "
        f"publish {p['publish_s']} s"
        + (
            f" ({p['push_requests']} requests, {PUSH_THREADS} threads)"
            if p["push_requests"]
            else ""
        ),
        f"export seconds: {e['seconds']} (CPU {e['cpu_seconds']} s in this process)",
        f"images per second: {e['images_per_s']}",
        f"attestations per second: {e['attestations_per_s']}",
        f"time split: registry requests {e['registry_share']:.0%}, "
        f"Rekor requests {e['rekor_share']:.0%}, the rest (verify, write) {e['other_share']:.0%}",
        f"registry requests: {e['registry_requests']} vs minimum {e['registry_requests_minimum']} "
        f"(ratio {e['registry_requests_ratio']}; {e['ms_per_registry_request']} ms each)",
        "requests by kind: " + ", ".join(f"{k} {v}" for k, v in e["requests_by_kind"].items()),
        f"rekor requests: {e['rekor_requests']} vs minimum {e['rekor_requests_minimum']} "
        f"({e['completed_from_rekor']} entries completed)",
        f"bundle bytes: {e['bundle_bytes']} ({e['bundle_bytes_per_attestation']} per attestation)",
        f"concurrency: {e['concurrency']}",
        f"client fetch of {c['objects']} objects, loopback: 1 thread {c['sequential_s']} s, "
        f"{c['threads']} threads {c['threads_s']} s (speed-up {c['speedup']}x)",
        f"client fetch of {c['latency_objects']} objects, +{c['latency_ms']} ms per request: "
        f"1 thread {c['latency_sequential_s']} s, {c['threads']} threads "
        f"{c['latency_threads_s']} s (speed-up {c['latency_speedup']}x)",
        f"projected sequential export at +{c['latency_ms']} ms per request: "
        f">= {c['projected_sequential_export_s_at_latency']} s of waiting",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
