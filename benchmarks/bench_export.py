#!/usr/bin/env python3
"""Benchmark ``dhi-offline export``: N images x 2 platforms x 8 attestations, loopback.

What is measured (printed as ``name: value`` lines; ``--json FILE`` writes them too):

- export throughput: images and attestations per second of one ``dhi-offline export``
  of all N images into one bundle (run in-process through the CLI entry point, as the
  tests do), with Rekor completion from a served Rekor double, at ``--jobs 1`` (images
  one after another), 4 and 8 (images fetched by that many threads at once), and the
  speed-up over ``--jobs 1``. Twice: straight from the loopback registries (N images),
  and with every registry and Rekor request held 20 ms by a loopback proxy, a stand-in
  for services across a network (``--latency-images``, fewer, so a run stays short);
- where the time goes: wall time inside registry requests, inside Rekor requests, and
  the rest (verification, bundle writing), by timing subclasses of the CLI's clients;
  with several jobs the request time of all threads is summed, and divided by the wall
  time gives the mean number of requests in flight;
- HTTP requests: registry requests the export made (``RegistryClient.requests``, split
  by kind), per image and against the minimum a client needs for what was published
  (counted from the published objects: one GET per object the bundle needs plus one
  listing per referrers subject and per ``.att`` lookup); Rekor requests against the
  SET-only entries. Counts must not depend on ``--jobs`` (checked);
- bundle size per attestation, and whether every ``--jobs`` gave the same bundle bytes
  (``SOURCE_DATE_EPOCH`` is fixed; checked per route, since the evidence names the
  registry host, which differs through the proxy).

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

Usage: ``python benchmarks/bench_export.py [--images N | --quick] [--latency-images M]
[--jobs J,J...] [--publish storage|api] [--json FILE]``.
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
import threading
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
JOBS = (1, 4, 8)
"""``--jobs`` values measured; the first is the baseline of the speed-ups."""
LATENCY = 0.02
"""Seconds each request is held by the latency stand-in (a nearby cloud registry)."""
LATENCY_IMAGES = 40
"""Images exported through the latency stand-in (each sequential one takes ~2 s)."""
EPOCH = "1780000000"
"""SOURCE_DATE_EPOCH of every export, so bundles of different --jobs can be compared."""


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
    minimum = 1 + len(PLATFORMS) + 1  # the tag, each platform manifest, the empty config
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
        #   manifest, statement blob, signature listing, signature manifest, payload blob;
        #   the config blobs that make those manifests pushable unchanged (``push``): the
        #   .att manifest's and each signature manifest's (the empty config: per image).
        minimum += (1 + 1 + 2 + 4) + (1 + 5 * len(dhi)) + (1 + len(dhi))
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
    """CPU time of this Python process (exporter, Rekor double and proxies, all threads)."""
    registry_seconds: float
    """Time spent inside registry requests (RegistryClient._perform), summed over threads."""
    rekor_seconds: float
    """Time spent inside Rekor requests (RekorClient.entry_by_index etc.), summed."""
    code: int
    summary: dict[str, Any]
    requests: int
    kinds: Counter[str]
    rekor_requests: int
    bundle: bytes
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
    count requests by kind and add up the time spent waiting on each service (from
    every worker thread, under a lock).
    """
    made: list[RegistryClient] = []
    kinds: Counter[str] = Counter()
    spent = {"registry": 0.0, "rekor": 0.0}
    lock = threading.Lock()

    def add(what: str, seconds: float) -> None:
        with lock:
            spent[what] += seconds

    class Counting(RegistryClient):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

        def _count_request(self, request: httpx.Request) -> None:
            super()._count_request(request)
            with lock:
                kinds[request_kind(request)] += 1

        def _perform(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super()._perform(*args, **kwargs)
            finally:
                add("registry", time.perf_counter() - started)

    class TimedRekor(RekorClient):
        def entry_by_index(self, log_index: int) -> Any:
            started = time.perf_counter()
            try:
                return super().entry_by_index(log_index)
            finally:
                add("rekor", time.perf_counter() - started)

        def consistency_proof(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().consistency_proof(*args, **kwargs)
            finally:
                add("rekor", time.perf_counter() - started)

    out = work / f"{name}.dhi.tar.zst"
    stdout, stderr = io.StringIO(), io.StringIO()
    # The CLI module's own names are replaced (it imported the classes), and put back.
    patched: dict[str, type] = {"RegistryClient": Counting, "RekorClient": TimedRekor}
    originals = {attr: getattr(export_cmd, attr) for attr in patched}
    for attr, cls in patched.items():
        setattr(export_cmd, attr, cls)
    rekor_before = len(rekor.requests)
    try:
        with (
            _patched_env(
                DHI_OFFLINE_STATE_DIR=str(work / f"state-{name}"),
                DOCKER_CONFIG=str(work / "no-docker-config"),
                SOURCE_DATE_EPOCH=EPOCH,
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
        for attr, original in originals.items():
            setattr(export_cmd, attr, original)
    summary = json.loads(stdout.getvalue()) if stdout.getvalue().strip() else {}
    bundle = out.read_bytes() if out.exists() else b""
    out.unlink(missing_ok=True)
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
        bundle=bundle,
        stderr=stderr.getvalue().strip(),
    )


class LatencyProxy(FaultProxy):
    """A loopback proxy that holds every request ``delay`` seconds: a stand-in for a
    service across a network (TCP_NODELAY, so it adds no Nagle stalls of its own)."""

    def __init__(self, upstream: str, delay: float) -> None:
        super().__init__(upstream, [Fault("stall", times=-1, stall_seconds=delay)])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()
        return type("NoDelayHandler", (base,), {"disable_nagle_algorithm": True})


def run_figures(
    run: ExportRun, sets: list[ImageSet], jobs: int, route: str, baseline: ExportRun | None
) -> dict[str, Any]:
    """The figures of one export of ``sets``."""
    n = len(sets)
    attestations = sum(s.attestations for s in sets)
    minimum = sum(s.minimum_requests for s in sets)
    inside = run.registry_seconds + run.rekor_seconds
    return {
        "route": route,
        "jobs": jobs,
        "images": n,
        "attestations": attestations,
        "verified": run.summary["attestations"]["verified"],
        "seconds": round(run.seconds, 2),
        "images_per_s": round(n / run.seconds, 2),
        "attestations_per_s": round(attestations / run.seconds, 1),
        "speedup": round(baseline.seconds / run.seconds, 2) if baseline else 1.0,
        "registry_share": round(run.registry_seconds / run.seconds, 2),
        "rekor_share": round(run.rekor_seconds / run.seconds, 2),
        "other_share": round(max(0.0, run.seconds - inside) / run.seconds, 2),
        "requests_in_flight": round(inside / run.seconds, 2),
        "cpu_seconds": round(run.cpu_seconds, 2),
        "registry_requests": run.requests,
        "registry_requests_minimum": minimum,
        "registry_requests_ratio": round(run.requests / minimum, 2),
        "registry_requests_per_image": round(run.requests / n, 1),
        "registry_requests_minimum_per_image": round(minimum / n, 1),
        "ms_per_registry_request": round(1000 * run.registry_seconds / run.requests, 2),
        "requests_by_kind": dict(sorted(run.kinds.items())),
        "rekor_requests": run.rekor_requests,
        "rekor_requests_minimum": sum(s.set_only_entries for s in sets),
        "completed_from_rekor": run.summary["tlog"]["completedFromRekor"],
        "bundle_bytes": len(run.bundle),
        "bundle_bytes_per_attestation": round(len(run.bundle) / attestations),
    }


def export_route(
    sets: list[ImageSet],
    route: str,
    *,
    hosts: tuple[str, str, str],
    common: list[str],
    jobs_list: Sequence[int],
    work: Path,
    rekor: RekorDouble,
) -> tuple[list[dict[str, Any]], bool, str | None]:
    """Export ``sets`` through (image registry, attestation registry, Rekor URL) at
    every ``--jobs``: (figures per run, same bundle bytes for all, error)."""
    image_host, att_host, rekor_url = hosts
    argv = [
        "export",
        *(f"{image_host}/{s.repository}:{TAG}" for s in sets),
        "--attestations-from",
        att_host,
        "--rekor-url",
        rekor_url,
        *common,
    ]
    runs: list[dict[str, Any]] = []
    bundles: set[bytes] = set()
    baseline: ExportRun | None = None
    for jobs in jobs_list:
        run = run_export([*argv, "--jobs", str(jobs)], work, f"{route}-j{jobs}", rekor)
        if run.code != 0:
            return runs, False, f"{route} --jobs {jobs}: exit {run.code}: {run.stderr}"
        runs.append(run_figures(run, sets, jobs, route, baseline))
        baseline = baseline or run
        bundles.add(run.bundle)
    return runs, len(bundles) == 1, None


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
        "--latency-images",
        type=int,
        default=LATENCY_IMAGES,
        help="how many of them to export through the 20 ms proxy",
    )
    parser.add_argument(
        "--jobs",
        default=",".join(map(str, JOBS)),
        help="comma-separated --jobs values to measure; the first is the baseline",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 images (6 through the proxy), jobs 1,8"
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
    n_latency = min(n_images, 6 if args.quick else args.latency_images)
    jobs_list = [1, 8] if args.quick else [int(j) for j in args.jobs.split(",")]
    if registry_binary() is None:
        print("bench_export: skipped: docker-registry is not installed")
        return 0

    figures: dict[str, Any] = {
        "machine": machine(),
        "images": n_images,
        "latency_images": n_latency,
        "latency_ms": round(LATENCY * 1000),
    }
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

        common = [
            "--key",
            str(work / "publisher.pub"),
            "--signing-key",
            str(work / "exporter.pem"),
            "--trusted-root",
            str(work / "tr.json"),
        ]
        loopback, same_loopback, error = export_route(
            sets,
            "loopback",
            hosts=(image_reg.host, att_reg.host, rekor_url),
            common=common,
            jobs_list=jobs_list,
            work=work,
            rekor=rekor,
        )
        latency: list[dict[str, Any]] = []
        same_latency = False
        if error is None:
            rekor_host = rekor_url.removeprefix("http://")
            with (
                LatencyProxy(image_reg.host, LATENCY) as p1,
                LatencyProxy(att_reg.host, LATENCY) as p2,
                LatencyProxy(rekor_host, LATENCY) as p3,
            ):
                latency, same_latency, error = export_route(
                    sets[:n_latency],
                    "latency",
                    hosts=(p1.host, p2.host, p3.url),
                    common=common,
                    jobs_list=jobs_list,
                    work=work,
                    rekor=rekor,
                )
    if error is not None:
        print(f"bench_export: export failed: {error}", file=sys.stderr)
        return 1
    figures["runs"] = [*loopback, *latency]
    figures["export"] = loopback[0]  # the baseline (--jobs 1, loopback), as before
    figures["same_bundle_for_every_jobs"] = same_loopback and same_latency
    figures["same_requests_for_every_jobs"] = all(
        len({(r["registry_requests"], r["rekor_requests"]) for r in runs}) == 1
        for runs in (loopback, latency)
    )
    _print(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    bad = [r for r in figures["runs"] if r["verified"] != r["attestations"]]
    if bad or not figures["same_bundle_for_every_jobs"]:
        print("bench_export: not every attestation verified, or bundles differ", file=sys.stderr)
        return 1
    return 0


def _print(figures: dict[str, Any]) -> None:
    m, e, p = figures["machine"], figures["export"], figures["publish"]
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
    ]
    for r in figures["runs"]:
        where = "loopback" if r["route"] == "loopback" else f"+{figures['latency_ms']} ms"
        lines.append(
            f"export {where} --jobs {r['jobs']}: {r['images']} images in {r['seconds']} s, "
            f"{r['images_per_s']} images/s, {r['attestations_per_s']} attestations/s, "
            f"speed-up {r['speedup']}x (CPU {r['cpu_seconds']} s, "
            f"{r['requests_in_flight']} requests in flight on average)"
        )
    lines += [
        f"images per second: {e['images_per_s']} (loopback, --jobs 1)",
        f"attestations per second: {e['attestations_per_s']} (loopback, --jobs 1)",
        f"time split (loopback, --jobs 1): registry requests {e['registry_share']:.0%}, "
        f"Rekor requests {e['rekor_share']:.0%}, the rest (verify, write) {e['other_share']:.0%}",
        f"registry requests: {e['registry_requests']} vs minimum {e['registry_requests_minimum']} "
        f"(ratio {e['registry_requests_ratio']}; {e['registry_requests_per_image']} per image "
        f"vs {e['registry_requests_minimum_per_image']}; {e['ms_per_registry_request']} ms each)",
        "requests by kind: " + ", ".join(f"{k} {v}" for k, v in e["requests_by_kind"].items()),
        f"rekor requests: {e['rekor_requests']} vs minimum {e['rekor_requests_minimum']} "
        f"({e['completed_from_rekor']} entries completed)",
        f"bundle bytes: {e['bundle_bytes']} ({e['bundle_bytes_per_attestation']} per attestation)",
        "same requests for every --jobs: "
        + ("yes" if figures["same_requests_for_every_jobs"] else "NO"),
        "same bundle bytes for every --jobs: "
        + ("yes" if figures["same_bundle_for_every_jobs"] else "NO"),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
