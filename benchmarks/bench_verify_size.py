#!/usr/bin/env python3
"""Benchmark bundle size against general-purpose archivers on the same members.

For each bundle, its members are extracted with ``open_bundle`` (so they are exactly
what the bundle carries, manifest and signature included) and archived again with the
system tar (``--sort=name``, owner 0:0, mtime 0, GNU format), then compressed:

- ``gzip -6 -n`` (what ``tar czf`` gives);
- ``zstd -19 --long`` (``-T0``: all CPUs; the ratio barely depends on it);
- ``zstd -10``, the bundle's own level, as a check that the tar layouts compare.

Bundles: the demo bundle (``dhi_offline.demo.build_sample_layout`` exported in-process
with ``run_export``: two platforms, ten small signed attestations), and the large-SBOM
bundle of ``bench_verify_large_sbom.py`` (20 SBOMs of 16 MB; ``--quick``: 3 of 4 MB).

Usage: ``python benchmarks/bench_verify_size.py [--quick] [--fresh] [--json FILE]``.
Needs ``tar``, ``gzip`` and ``zstd``; exits 0 with a note when one is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _publish import Keys, build_sbom_bundle, load_keys
from _timing import cache_dir, cached_file, print_machine, print_table, tar_stream_size

from dhi_offline.bundle.reader import open_bundle
from dhi_offline.demo import SAMPLE_NAME, build_sample_layout
from dhi_offline.export.run import ExportConfig, ImageRequest, run_export
from dhi_offline.oci.source import LayoutSource
from dhi_offline.trust.keyring import Keyring, KeyringEntry
from dhi_offline.trust.shipped import shipped_trusted_root

COMPRESSORS = {
    "gzip -6": "gzip -6 -n",
    "zstd -19 --long": "zstd -q -19 --long -T0",
    "zstd -10": "zstd -q -10",
}


def build_demo(output: Path, keys: Keys, work: Path) -> None:
    """The demo's sample image, exported in-process as ``dhi-offline demo`` does."""
    sample = build_sample_layout(work / "layout", keys.publisher)
    now = datetime.now(UTC).replace(microsecond=0)
    run_export(
        [ImageRequest(f"{SAMPLE_NAME}:{sample.tag}", sample.tag, LayoutSource(sample.layout), ())],
        ExportConfig(
            output=output,
            signing_key=keys.exporter,
            keyring=Keyring(
                "demo publisher", (KeyringEntry("demo-publisher", keys.publisher_public()),)
            ),
            trusted_root=shipped_trusted_root("production"),
            now=now,
            expires=timedelta(days=3650),
            state_dir=work / "exporter-state",
            rekor=None,
        ),
        lambda kind, message: None,
    )


def compressed_sizes(bundle: Path, keys: Keys) -> dict[str, Any]:
    """Extract ``bundle``'s members, tar them, compress; sizes (bytes) and seconds."""
    exporter = keys.exporter_public()
    out: dict[str, Any] = {"bundle": bundle.stat().st_size}
    with tempfile.TemporaryDirectory(prefix="bench-size-") as tmp:
        members = Path(tmp) / "members"
        members.mkdir()
        opened = open_bundle(
            bundle,
            trusted_exporters=lambda k: exporter if k == exporter.key_id else None,
            dest=members,
        )
        out["members"] = len(opened.manifest.members) + 2
        out["member_bytes"] = sum(f.stat().st_size for f in members.rglob("*") if f.is_file())
        out["bundle_tar"] = tar_stream_size(bundle)
        tar = (
            "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu "
            f'-C "{members}" -cf - .'
        )
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {tar} | wc -c"],
            capture_output=True,
            text=True,
            check=True,
        )
        out["tar"] = int(done.stdout)
        for name, command in COMPRESSORS.items():
            started = time.perf_counter()
            done = subprocess.run(
                ["bash", "-c", f"set -o pipefail; {tar} | {command} | wc -c"],
                capture_output=True,
                text=True,
                check=True,
            )
            out[name] = int(done.stdout)
            out[f"{name} seconds"] = round(time.perf_counter() - started, 2)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a 12 MB SBOM bundle")
    parser.add_argument("--fresh", action="store_true", help="rebuild cached inputs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    missing = [t for t in ("tar", "gzip", "zstd", "wc") if shutil.which(t) is None]
    if missing:
        print(f"bench_verify_size: skipped: {', '.join(missing)} not installed")
        return 0
    count, sbom_size = (3, 4_000_000) if args.quick else (20, 16_000_000)

    m = print_machine()
    demo_cache = cache_dir("size-demo", fresh=args.fresh)
    demo_keys = load_keys(demo_cache / "keys")

    def make_demo(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as work:
            build_demo(tmp, demo_keys, Path(work))

    demo = cached_file(demo_cache / "demo.dhi.tar.zst", make_demo)
    # The same cache entry as bench_verify_large_sbom.py.
    sbom_cache = cache_dir(f"large-sbom-{count}x{sbom_size}", fresh=args.fresh)
    sbom_keys = load_keys(sbom_cache / "keys")
    started = time.perf_counter()
    sbom = cached_file(
        sbom_cache / "bundle.dhi.tar.zst",
        lambda tmp: build_sbom_bundle(
            tmp, sbom_keys, attestations=count, sbom_size=sbom_size, staging=sbom_cache / "staging"
        ),
    )
    print(f"inputs ready in {time.perf_counter() - started:.1f} s")

    results = {
        "demo (2 platforms, 10 attestations)": compressed_sizes(demo, demo_keys),
        f"large SBOM ({count} x {sbom_size / 1e6:g} MB)": compressed_sizes(sbom, sbom_keys),
    }
    rows: list[list[str]] = []
    for name, r in results.items():
        rows.append(
            [
                name,
                str(r["members"]),
                str(r["tar"]),
                str(r["bundle"]),
                f"{r['gzip -6']} ({r['bundle'] / r['gzip -6']:.2f})",
                f"{r['zstd -19 --long']} ({r['bundle'] / r['zstd -19 --long']:.2f})",
                f"{r['zstd -10']} ({r['bundle'] / r['zstd -10']:.2f})",
            ]
        )
    print("\nbytes (bundle / other in parentheses; below 1 means the bundle is smaller)")
    print_table(
        [
            "bundle",
            "members",
            "system tar",
            "bundle",
            "tar | gzip -6",
            "tar | zstd -19 --long",
            "tar | zstd -10",
        ],
        rows,
    )
    for name, r in results.items():
        print(
            f"{name}: compress seconds gzip -6 {r['gzip -6 seconds']}, "
            f"zstd -19 --long {r['zstd -19 --long seconds']}, zstd -10 {r['zstd -10 seconds']}; "
            f"bundle tar stream {r['bundle_tar']} vs system tar {r['tar']}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": m, "bundles": results}, indent=2, sort_keys=True) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
