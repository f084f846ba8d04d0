#!/usr/bin/env python3
"""Benchmark scale: N images x 2 platforms x 10 attestations, exported and verified.

Publishes N images (default 2,000: 40,000 attestations) into two loopback Debian
``docker-registry`` instances with ``bench_export``'s objects and storage seeding
(``--publish storage``), then runs, each as its own subprocess so that its peak RSS is
measured (``wait4`` rusage of that child):

- ``dhi-offline export`` of all N images into one bundle, ``--jobs 8``, with SET-only
  entries completed from a served Rekor double (in this process);
- ``dhi-offline verify`` of that bundle (policy ``dhi-default``, JSON report);
- the same export and verify of the first N/10 images, the reference for ``memory
  flat``: verify's peak RSS at N within 1.5x of its peak at N/10.

Per platform 10 attestations: 6 DHI-layout ones in the attestation registry (CTRF
tests, CycloneDX SBOM, SLSA provenance, OpenVEX as ``bench_export``, plus an SPDX SBOM
and a SLSA verification summary), each with a cosign signature manifest and a
hashedrekord entry; one cosign ``.att`` tag with 2 DSSE layers and 2 sigstore-bundle
referrers (one SET-only) in the image registry.

Images are built, signed and written to storage one at a time and then dropped, so this
process holds only the Rekor double's log, not the published objects.

Usage: ``python benchmarks/bench_scale.py [--images N | --quick] [--jobs J] [--json FILE]``
(``--quick``: 100 images, reference 10). Needs Debian's ``docker-registry``; exits 0
with a note when it is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # bench_export and _timing, however this is run

from _timing import (  # noqa: E402
    cli_env,
    dhi_offline_cli,
    fmt_mb,
    print_machine,
    report_target,
    run_child,
)
from bench_export import (  # noqa: E402
    LOG_TIME,
    SPDX,
    TAG,
    VSA,
    ImageSet,
    build_image_set,
    seed_repo,
)

from dhi_offline.bundle.signing import generate_keypair  # noqa: E402
from tests.support.publisher import ImageRef, TestPublisher, cyclonedx_sbom  # noqa: E402
from tests.support.registry import registry_binary, run_registry  # noqa: E402
from tests.support.rekor_double import RekorDouble  # noqa: E402

ATTESTATIONS_PER_PLATFORM = 10
FLAT_RATIO = 1.5
"""Memory is flat when verify's peak RSS at N is within this factor of its peak at N/10."""


def build_scale_image_set(i: int, publisher: TestPublisher) -> ImageSet:
    """``bench_export``'s image ``i`` (8 attestations per platform) plus, per platform,
    two more DHI-layout attestations: an SPDX SBOM and a verification summary."""
    s = build_image_set(i, publisher)
    for manifest in s.platform_manifests:
        ref = ImageRef(name=f"dhi.io/{s.repository}", digest=manifest.digest, size=manifest.size)
        spdx = cyclonedx_sbom(ref, n_components=8)  # any SBOM-shaped document will do
        s.att_repo.add(
            [
                publisher.dhi_attestation(ref, SPDX, {"spdxVersion": "SPDX-2.3", "doc": spdx}),
                publisher.dhi_attestation(
                    ref, VSA, {"verificationResult": "PASSED", "verifier": {"id": "bench"}}
                ),
            ]
        )
        s.attestations += 2
    return s


def publish(n: int, publisher: TestPublisher, image_storage: Path, att_storage: Path) -> int:
    """Build, sign and seed images 0..n-1, one at a time; returns the attestations."""
    total = 0
    for i in range(n):
        s = build_scale_image_set(i, publisher)
        seed_repo(image_storage, s.repository, s.image_repo)
        seed_repo(att_storage, s.repository, s.att_repo)
        total += s.attestations
        if (i + 1) % 500 == 0:
            print(f"  published {i + 1} images", flush=True)
    return total


def run_cli(argv: list[str], env: dict[str, str], what: str) -> tuple[Any, dict[str, Any]]:
    """One CLI subprocess; (its ChildRun, its JSON output). Exits on failure."""
    done = run_child([*dhi_offline_cli(), *argv], env=env)
    if done.returncode != 0:
        raise SystemExit(
            f"bench_scale: {what} failed (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace')[-2000:]}"
            f"{done.stdout.decode(errors='replace')[-1000:]}"
        )
    return done, json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images",
        type=int,
        default=2000,
        help="images to publish and export (default 2000: 40,000 attestations, issue 13)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 images")
    parser.add_argument("--jobs", type=int, default=8, help="--jobs of the export")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", type=Path, help="move the bundles and keys into this directory")
    args = parser.parse_args(argv)
    n_images = 100 if args.quick else args.images
    n_small = max(1, n_images // 10)
    if registry_binary() is None:
        print("bench_scale: skipped: docker-registry is not installed")
        return 0

    figures: dict[str, Any] = {"machine": print_machine(), "images": n_images, "jobs": args.jobs}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        rekor = RekorDouble(clock=lambda: LOG_TIME)
        (work / "tr.json").write_bytes(rekor.trusted_root_json())
        publisher = TestPublisher(rekor=rekor)
        (work / "publisher.pub").write_bytes(publisher.public_key_pem)
        generate_keypair(work / "exporter")
        rekor_url = stack.enter_context(rekor.serve())
        image_reg = stack.enter_context(run_registry(work / "reg-images"))
        att_reg = stack.enter_context(run_registry(work / "reg-attestations"))

        started = time.perf_counter()
        attestations = publish(n_images, publisher, image_reg.storage, att_reg.storage)
        figures["publish_s"] = round(time.perf_counter() - started, 1)
        figures["attestations"] = attestations
        print(
            f"publish: {n_images} images x 2 platforms x {ATTESTATIONS_PER_PLATFORM} attestations "
            f"= {attestations} attestations in {figures['publish_s']} s "
            f"(build, sign, Rekor double, storage seeding)",
            flush=True,
        )

        env = cli_env(work)
        env["DOCKER_CONFIG"] = str(work / "no-docker-config")
        runs: dict[int, dict[str, Any]] = {}
        for n in (n_small, n_images):
            bundle = work / f"scale-{n}.dhi.tar.zst"
            export_argv = [
                "export",
                *(f"{image_reg.host}/bench/img-{i:04d}:{TAG}" for i in range(n)),
                "--attestations-from",
                att_reg.host,
                "--rekor-url",
                rekor_url,
                "--key",
                str(work / "publisher.pub"),
                "--signing-key",
                str(work / "exporter.pem"),
                "--trusted-root",
                str(work / "tr.json"),
                "--jobs",
                str(args.jobs),
                "-o",
                str(bundle),
                "--format",
                "json",
            ]
            exported, summary = run_cli(export_argv, env, f"export of {n} images")
            print(
                f"  {n} images: export {exported.seconds:.1f} s, {fmt_mb(exported.max_rss)}, "
                f"bundle {fmt_mb(bundle.stat().st_size)}",
                flush=True,
            )
            if args.keep:  # before verify, so that a refused bundle can be looked at
                args.keep.mkdir(parents=True, exist_ok=True)
                for name in ("exporter.pub", "publisher.pub", "tr.json"):
                    (args.keep / name).write_bytes((work / name).read_bytes())
                bundle = bundle.replace(args.keep / bundle.name)
            verify_argv = [
                "verify",
                str(bundle),
                "--trust-exporter",
                str(work / "exporter.pub"),
                "--trust-publisher",
                str(work / "publisher.pub"),
                "--trusted-root",
                str(work / "tr.json"),
                "--format",
                "json",
            ]
            verified, report = run_cli(verify_argv, env, f"verify of {n} images")
            expected = n * 2 * ATTESTATIONS_PER_PLATFORM
            run = {
                "images": n,
                "attestations": expected,
                "export_verified": summary["attestations"]["verified"],
                "export_s": round(exported.seconds, 1),
                "export_cpu_s": round(exported.user + exported.system, 1),
                "export_max_rss": exported.max_rss,
                "bundle_bytes": bundle.stat().st_size,
                "verify_verdict": report.get("verdict"),
                "verify_s": round(verified.seconds, 1),
                "verify_cpu_s": round(verified.user + verified.system, 1),
                "verify_max_rss": verified.max_rss,
            }
            runs[n] = run
            print(
                f"  {n} images: verify {run['verify_s']} s, {fmt_mb(run['verify_max_rss'])}",
                flush=True,
            )
            if run["export_verified"] != expected:
                raise SystemExit(
                    f"bench_scale: export verified {run['export_verified']} of {expected}"
                )
            if not args.keep:
                bundle.unlink()
    big, small = runs[n_images], runs[n_small]
    flat = big["verify_max_rss"] <= FLAT_RATIO * small["verify_max_rss"]
    figures.update(runs=list(runs.values()), memory_flat=flat)
    n_att = big["attestations"]
    lines = [
        f"workload: {n_images} images x 2 platforms x {ATTESTATIONS_PER_PLATFORM} attestations "
        f"= {n_att} attestations ({big['export_verified']} verified by export)",
        f"publish: {figures['publish_s']} s",
        f"export --jobs {args.jobs}: {big['export_s']} s wall, {big['export_cpu_s']} s CPU, "
        f"{n_att / big['export_s']:.0f} attestations/s, peak RSS {fmt_mb(big['export_max_rss'])}",
        f"bundle: {fmt_mb(big['bundle_bytes'])} "
        f"({big['bundle_bytes'] / n_att:.0f} bytes per attestation)",
        f"verify: {big['verify_s']} s wall, {big['verify_cpu_s']} s CPU, "
        f"{n_att / big['verify_s']:.0f} attestations/s, peak RSS {fmt_mb(big['verify_max_rss'])}, "
        f"verdict {big['verify_verdict']}",
        f"reference ({n_small} images): export {small['export_s']} s, peak RSS "
        f"{fmt_mb(small['export_max_rss'])}; verify {small['verify_s']} s, peak RSS "
        f"{fmt_mb(small['verify_max_rss'])}",
        f"memory flat: {'yes' if flat else 'NO'} (verify peak RSS "
        f"{big['verify_max_rss'] / small['verify_max_rss']:.2f}x of the {n_small}-image run, "
        f"limit {FLAT_RATIO}x; export {big['export_max_rss'] / small['export_max_rss']:.2f}x)",
    ]
    print("\n".join(lines))
    report_target(
        5,
        f"scale, {n_att} attestations exported from the loopback registries and verified",
        f"export {big['export_s']} s ({fmt_mb(big['export_max_rss'])}), verify "
        f"{big['verify_s']} s ({fmt_mb(big['verify_max_rss'])}), verdict {big['verify_verdict']}",
        big["export_verified"] == n_att and big["verify_verdict"] == "PASS",
    )
    report_target(
        5,
        f"scale, verify memory flat ({n_images} vs {n_small} images within {FLAT_RATIO}x)",
        f"{big['verify_max_rss'] / small['verify_max_rss']:.2f}x "
        f"(export {big['export_max_rss'] / small['export_max_rss']:.2f}x)",
        flat,
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    # A target not met is a figure, not a failure: `make bench` goes on to the next.
    return 0


if __name__ == "__main__":
    sys.exit(main())
