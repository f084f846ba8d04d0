#!/usr/bin/env python3
"""Benchmark peak memory of ``dhi-offline verify`` as bundles grow.

Workload: bundles of about 250, 500 and 1000 MB of member data (``--quick``: 50 and
100 MB), each made of SBOM attestations of the same size (``--sbom-mb``, default 16 MB;
10 MB with ``--quick``) so that only their number grows: random-ish CycloneDX JSON that
compresses about as real SBOMs do (ratio ~8). Statements are generated straight to
files and streamed into the bundle: generation never holds a bundle in memory.

Measured: the peak resident set size of one ``dhi-offline verify`` subprocess (its own
``wait4`` rusage), the median of ``--runs`` runs per size; the baseline is the same
command on a bundle of one 100 kB SBOM (interpreter, imports, one small attestation).

Target: under 200 MB at every size, and flat: the largest bundle's peak within 25 MB
of the smallest's.

Usage: ``python benchmarks/bench_verify_memory.py [--sizes-mb 250,500,1000] [--sbom-mb MB]
[--quick] [--runs R] [--fresh] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _publish import BENCH_POLICY_SBOM, build_sbom_bundle, load_keys
from _timing import (
    cache_dir,
    cached_file,
    cli_env,
    median,
    print_machine,
    print_table,
    run_child,
    tar_stream_size,
    verify_argv,
)

TARGET_RSS = 200e6
FLAT_TOLERANCE = 25e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="250,500,1000")
    parser.add_argument("--sbom-mb", type=float, default=16.0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 and 100 MB")
    parser.add_argument("--runs", type=int, default=None, help="runs per size (default 3)")
    parser.add_argument("--fresh", action="store_true", help="rebuild cached inputs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sizes = [50, 100] if args.quick else [int(s) for s in args.sizes_mb.split(",")]
    sbom_mb = 10.0 if args.quick else args.sbom_mb
    runs = args.runs or (1 if args.quick else 3)
    sbom_size = int(sbom_mb * 1_000_000)

    m = print_machine()
    cache = cache_dir("memory", fresh=args.fresh)
    keys = load_keys(cache / "keys")
    policy = cache / "policy.toml"
    policy.write_text(BENCH_POLICY_SBOM)
    work = cache / "work"
    work.mkdir(exist_ok=True)

    def bundle_for(count: int, size: int) -> Path:
        started = time.perf_counter()
        path = cached_file(
            cache / f"sbom-{count}x{size}.dhi.tar.zst",
            lambda tmp: build_sbom_bundle(
                tmp, keys, attestations=count, sbom_size=size, staging=cache / "staging", seed=count
            ),
        )
        took = time.perf_counter() - started
        if took > 1:
            print(f"built {path.name} in {took:.1f} s")
        return path

    def measure(bundle: Path) -> tuple[list[int], list[float]]:
        rss: list[int] = []
        secs: list[float] = []
        for _ in range(runs):
            done = run_child(verify_argv(bundle, keys, work, policy=policy), env=cli_env(work))
            if done.returncode != 0:
                raise SystemExit(
                    f"dhi-offline verify {bundle.name} failed ({done.returncode}): "
                    f"{done.stderr.decode()[-400:]}"
                )
            rss.append(done.max_rss)
            secs.append(done.seconds)
        return rss, secs

    rows: list[list[str]] = []
    figures: dict[str, Any] = {"machine": m, "sbom_bytes": sbom_size, "runs": runs, "sizes": []}
    base_rss, base_s = measure(bundle_for(1, 100_000))
    base = median(base_rss)
    rows.append(
        [
            "baseline: 1 x 100 kB SBOM",
            "0.1",
            "",
            "1",
            f"{base / 1e6:.0f}",
            "",
            f"{median(base_s):.1f}",
        ]
    )
    peaks: list[float] = []
    for size_mb in sizes:
        count = max(1, round(size_mb * 1_000_000 / sbom_size))
        bundle = bundle_for(count, sbom_size)
        tar = tar_stream_size(bundle)
        rss, secs = measure(bundle)
        peak = median(rss)
        peaks.append(peak)
        rows.append(
            [
                f"{size_mb} MB",
                f"{tar / 1e6:.0f}",
                f"{bundle.stat().st_size / 1e6:.0f}",
                str(count),
                f"{peak / 1e6:.0f}",
                f"{(peak - base) / 1e6:+.0f}",
                f"{median(secs):.1f}",
            ]
        )
        figures["sizes"].append(
            {
                "target_mb": size_mb,
                "tar_bytes": tar,
                "bundle_bytes": bundle.stat().st_size,
                "attestations": count,
                "max_rss_bytes": rss,
                "median_max_rss_bytes": peak,
                "seconds": [round(s, 2) for s in secs],
            }
        )
    under = all(p < TARGET_RSS for p in peaks)
    flat = peaks[-1] - peaks[0] <= FLAT_TOLERANCE
    print(
        f"\npeak RSS of dhi-offline verify, median of {runs} run(s); SBOMs of {sbom_mb:g} MB each"
    )
    print_table(
        ["bundle", "tar MB", "file MB", "SBOMs", "peak RSS MB", "vs baseline", "seconds"], rows
    )
    growth = (peaks[-1] - peaks[0]) / 1e6 / ((sizes[-1] - sizes[0]) or 1)
    print(
        f"growth: {growth:.2f} MB of RSS per MB of bundle between {sizes[0]} and {sizes[-1]} MB; "
        f"target under {TARGET_RSS / 1e6:.0f} MB: {'met' if under else 'NOT met'}; "
        f"flat (within {FLAT_TOLERANCE / 1e6:.0f} MB): {'met' if flat else 'NOT met'}"
    )
    figures.update(
        baseline_rss_bytes=base,
        growth_mb_per_mb=round(growth, 3),
        under_target=under,
        flat=flat,
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
