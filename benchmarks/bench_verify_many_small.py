#!/usr/bin/env python3
"""Benchmark verification of many small attestations, against the raw signature checks.

Workload: N Docker Hardened Images-layout attestations (default 2,000: 100 images x 2
platforms x 10 attestations: CTRF tests, CycloneDX SBOM of 40 packages, SLSA provenance,
in-toto vulnerabilities, OpenVEX, and 5 small custom predicates), each signed by the
publisher key with a cosign simple-signing signature, no transparency-log entry (as DHI
may publish them), in one bundle written with ``write_bundle``.

The floor and the "1 worker" measures run pinned to ONE CPU (children inherit it);
"2 workers" and the process measures run on every CPU the script may use (the verifier
then forks workers: ``dhi_offline/verify/parallel.py``). Measured, each as the median of
``--runs`` interleaved runs:

- floor: ``cryptography`` ECDSA P-256 verification of the same N (payload, signature)
  pairs with the publisher key, nothing else;
- ``verify_bundle_file`` in-process, policy ``dhi-default``, publisher keyring holding
  the publisher key only (as the shipped keyring holds DHI's active key first), with the
  time of ``open_bundle`` (stream, hash, extract) reported separately;
- the same with the CLI's keyring: the shipped DHI keyring (dhi-2, dhi-1) with the
  publisher key appended, which is what ``--trust-publisher`` gives;
- ``dhi-offline verify`` as a subprocess (interpreter start and imports included).

Rates are attestations per second, ratios against the ONE-core floor. Targets: at least
0.5x in-process with two workers, 0.35x as a process.

Usage: ``python benchmarks/bench_verify_many_small.py [--attestations N | --quick]
[--runs R] [--fresh] [--profile] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _publish import BundleBuilder, Keys, load_keys
from _timing import (
    cache_dir,
    cached_file,
    cli_env,
    interleaved,
    median,
    pin_to_one_core,
    print_machine,
    print_table,
    profile,
    report_target,
    run_child,
    verify_argv,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.reader import open_bundle
from dhi_offline.trust.keyring import Keyring, KeyringEntry, shipped_dhi_keyring
from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.verify.bundle import (
    PLATFORM_WORKERS_ENV,
    BundleTrust,
    VerifyOptions,
    verify_bundle_file,
)
from dhi_offline.verify.policy import parse_policy
from tests.support.publisher import (
    CTRF_TESTS,
    CYCLONEDX,
    INTOTO_VULNS,
    OPENVEX,
    SLSA_PROVENANCE_V1,
    ImageRef,
    ctrf_tests,
    cyclonedx_sbom,
    intoto_vulns,
    openvex,
    slsa_provenance_v1,
    statement,
)

PLATFORMS = ("linux/amd64", "linux/arm64")
PER_PLATFORM = 10
SHM = Path("/dev/shm")  # noqa: S108
"""A tmpfs, to show what extraction costs on a file system with cheap file creation."""
EXTRA_TYPES = tuple(f"https://example.com/bench/extra-{i}/v1" for i in range(5))


def predicates(ref: ImageRef) -> list[tuple[str, Any]]:
    """The 10 predicates of one platform."""
    out: list[tuple[str, Any]] = [
        (CTRF_TESTS, ctrf_tests()),
        (CYCLONEDX, cyclonedx_sbom(ref, n_components=40)),
        (SLSA_PROVENANCE_V1, slsa_provenance_v1(ref)),
        (INTOTO_VULNS, intoto_vulns({"CVE-2025-0001": "LOW", "CVE-2025-0002": "MEDIUM"})),
        (OPENVEX, openvex(ref, [("CVE-2025-0002", "not_affected")])),
    ]
    out += [(t, {"bench": i, "digest": ref.digest}) for i, t in enumerate(EXTRA_TYPES)]
    return out


def build(bundle: Path, keys: Keys, attestations: int) -> list[tuple[bytes, bytes]]:
    """Write the bundle; returns every (payload, signature) the publisher made."""
    per_image = len(PLATFORMS) * PER_PLATFORM
    images = max(1, attestations // per_image)
    builder = BundleBuilder(keys)
    for i in range(images):
        index, refs = builder.add_image(f"dhi.io/bench-small-{i:04d}", PLATFORMS)
        for ref in refs:
            iref = ImageRef(name=ref.name, digest=ref.digest, size=ref.size)
            for ptype, predicate in predicates(iref):
                builder.add_attestation(index, ref, ptype, statement(ref, ptype, predicate))
    builder.write(bundle)
    return builder.signed


def inputs(attestations: int, fresh: bool) -> tuple[Keys, Path, list[tuple[bytes, bytes]]]:
    cache = cache_dir(f"many-small-{attestations}", fresh=fresh)
    keys = load_keys(cache / "keys")
    signed_file = cache / "signed.json"

    def make(tmp: Path) -> None:
        signed = build(tmp, keys, attestations)
        signed_file.write_text(
            json.dumps(
                [[base64.b64encode(p).decode(), base64.b64encode(s).decode()] for p, s in signed]
            )
        )

    if not signed_file.exists():
        (cache / "bundle.dhi.tar.zst").unlink(missing_ok=True)
    bundle = cached_file(cache / "bundle.dhi.tar.zst", make)
    signed = [
        (base64.b64decode(p), base64.b64decode(s)) for p, s in json.loads(signed_file.read_text())
    ]
    return keys, bundle, signed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attestations", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 attestations")
    parser.add_argument("--runs", type=int, default=None, help="runs per measure (default 5)")
    parser.add_argument("--fresh", action="store_true", help="rebuild cached inputs")
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile")
    parser.add_argument(
        "--no-tmpfs", action="store_true", help="do not also measure with the workdir on /dev/shm"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    n_wanted = 200 if args.quick else args.attestations
    runs = args.runs or (2 if args.quick else 5)

    all_cpus = sorted(os.sched_getaffinity(0))
    cpu = pin_to_one_core()
    m = print_machine()
    started = time.perf_counter()
    keys, bundle, signed = inputs(n_wanted, args.fresh)
    n = len(signed)
    print(
        f"workload: {n} DHI-layout attestations ({n // (len(PLATFORMS) * PER_PLATFORM)} images x "
        f"{len(PLATFORMS)} platforms x {PER_PLATFORM}), bundle {bundle.stat().st_size} bytes; "
        f"inputs ready in {time.perf_counter() - started:.1f} s"
    )
    print(f"pinned to CPU {cpu}" if cpu is not None else "NOT pinned (sched_setaffinity refused)")

    publisher = keys.publisher.public_key()
    ecdsa = ec.ECDSA(hashes.SHA256())
    exporter = keys.exporter_public()
    own = Keyring("bench", (KeyringEntry("bench-publisher", keys.publisher_public()),))
    cli_like = shipped_dhi_keyring().with_entry(
        KeyringEntry("publisher.pub", keys.publisher_public())
    )
    root = shipped_trusted_root("production")
    policy = parse_policy(
        (
            Path(__file__).resolve().parents[1] / "dhi_offline/data/policies/dhi-default.toml"
        ).read_bytes(),
        source="dhi-default",
    )
    bases = [("disk", Path(tempfile.gettempdir()))]
    if SHM.is_dir() and os.access(SHM, os.W_OK) and not args.no_tmpfs:
        bases.append(("tmpfs", SHM))
    works = {
        name: Path(tempfile.mkdtemp(prefix="bench-verify-small-", dir=base)) for name, base in bases
    }
    opened: dict[str, list[float]] = {name: [] for name in works}

    def floor() -> None:
        cores(1)
        for payload, sig in signed:
            publisher.verify(sig, payload, ecdsa)

    def cores(n: int) -> None:
        """Run on one CPU (the pinned one) or on all of them, from now on."""
        if cpu is not None:
            os.sched_setaffinity(0, {cpu} if n == 1 else set(all_cpus))

    def verify_with(keyring: Keyring, where: str, n_cores: int = 1) -> None:
        cores(n_cores)
        # The platform pool is opt-in (verify/bundle.py): on for the two-core rows only.
        os.environ[PLATFORM_WORKERS_ENV] = "1" if n_cores > 1 else "0"
        trust = BundleTrust(
            exporters={exporter.key_id: ("bench", exporter)},
            publishers=keyring,
            trusted_root=root,
            trusted_root_source="shipped",
        )
        dest = Path(tempfile.mkdtemp(dir=works[where]))
        try:
            result = verify_bundle_file(
                bundle,
                trust=trust,
                options=VerifyOptions(at=datetime.now(UTC), policy=policy),
                workdir=dest,
            )
        finally:
            shutil.rmtree(dest)
        verified = sum(
            1
            for i in result.report.images
            for p in i.platforms
            for a in p.attestations
            if a.verified
        )
        if verified != n or not result.report.passed:
            raise SystemExit(f"bench_verify_many_small: only {verified} of {n} verified")

    def open_only(where: str) -> None:
        cores(1)
        dest = Path(tempfile.mkdtemp(dir=works[where]))
        try:
            t = time.perf_counter()
            open_bundle(
                bundle,
                trusted_exporters=lambda k: exporter if k == exporter.key_id else None,
                dest=dest,
            )
            opened[where].append(time.perf_counter() - t)
        finally:
            shutil.rmtree(dest)

    def cli(where: str, n_cores: int = 1) -> None:
        cores(n_cores)
        env = cli_env(works[where])
        env["TMPDIR"] = str(works[where])  # where the CLI extracts (tempfile.mkdtemp)
        env[PLATFORM_WORKERS_ENV] = "1" if n_cores > 1 else "0"
        done = run_child(verify_argv(bundle, keys, works[where], policy=None), env=env)
        if done.returncode != 0:
            raise SystemExit(
                f"dhi-offline verify failed ({done.returncode}): {done.stderr.decode()[-400:]}"
            )

    contenders: dict[str, Any] = {"floor": floor}
    for where in works:
        contenders[f"own/{where}"] = lambda w=where: verify_with(own, w)
        contenders[f"open/{where}"] = lambda w=where: open_only(w)
        contenders[f"cli/{where}"] = lambda w=where: cli(w)
    contenders[f"dhi+own/{bases[-1][0]}"] = lambda: verify_with(cli_like, bases[-1][0])
    if len(all_cpus) > 1:
        contenders["own2/disk"] = lambda: verify_with(own, "disk", 2)
        contenders["cli2/disk"] = lambda: cli("disk", 2)
    try:
        verify_with(own, bases[-1][0])  # warm up: page cache, imports, first-call costs
        times = interleaved(contenders, runs)
        if args.profile:
            profile(lambda: verify_with(own, bases[-1][0]))
    finally:
        for w in works.values():
            shutil.rmtree(w, ignore_errors=True)

    for where in works:
        times[f"open/{where}"] = opened[where]
    med = {k: median(v) for k, v in times.items()}
    rate = {k: n / v for k, v in med.items()}
    floor_rate = rate["floor"]

    def met(key: str, target: float) -> str:
        return "met" if rate[key] >= floor_rate * target else "NOT met"

    def row(label: str, key: str, *, target: float | None = None) -> list[str]:
        return [
            label,
            f"{med[key]:.3f}",
            f"{rate[key]:,.0f}",
            f"{rate[key] / floor_rate:.3f}",
            f"{met(key, target)} ({target}x)" if target else "",
        ]

    rows = [row("floor: ECDSA P-256 verify only (cryptography), 1 core", "floor")]
    for where, base in bases:
        rows.append(
            row(
                f"verify_bundle_file 1 core, keyring = publisher, workdir {where} ({base})",
                f"own/{where}",
            )
        )
        rows.append(
            row(
                f"  open_bundle alone (stream, hash, extract), {where}",
                f"open/{where}",
            )
        )
    rows.append(
        row(
            f"verify_bundle_file 1 core, keyring = DHI + publisher, {bases[-1][0]}",
            f"dhi+own/{bases[-1][0]}",
        )
    )
    for where, _ in bases:
        rows.append(
            row(f"dhi-offline verify (subprocess) 1 core, TMPDIR on {where}", f"cli/{where}")
        )
    if "own2/disk" in med:
        rows.append(row("verify_bundle_file 2 cores (workers), disk", "own2/disk", target=0.5))
        rows.append(row("dhi-offline verify (subprocess) 2 cores, disk", "cli2/disk", target=0.35))
    print(
        f"\n{n} attestations, median of {runs} interleaved runs, ratios against the ONE-core "
        "floor (shared machine: other jobs may run on either core)"
    )
    print_table(["measure", "seconds", "att/s", "x floor", "target"], rows)
    print(f"\nraw P-256 verify rate (1 core): {floor_rate:,.0f}/s")
    print(f"in-process 1 worker: {rate['own/disk'] / floor_rate:.3f}")
    two = "own2/disk" if "own2/disk" in med else "own/disk"
    proc = "cli2/disk" if "cli2/disk" in med else "cli/disk"
    on = "2 cores" if two == "own2/disk" else "1 core"
    report_target(
        4,
        f"many small attestations in-process, {on}, >= 0.5x the 1-core P-256 rate",
        f"{rate[two] / floor_rate:.3f}x ({rate[two]:,.0f}/s vs {floor_rate:,.0f}/s)",
        rate[two] >= 0.5 * floor_rate,
    )
    report_target(
        4,
        f"many small attestations, dhi-offline verify process, {on}, >= 0.35x",
        f"{rate[proc] / floor_rate:.3f}x ({rate[proc]:,.0f}/s)",
        rate[proc] >= 0.35 * floor_rate,
    )
    figures = {
        "machine": m,
        "attestations": n,
        "bundle_bytes": bundle.stat().st_size,
        "runs": runs,
        "pinned_cpu": cpu,
        "workdirs": {name: str(base) for name, base in bases},
        "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "median_seconds": {k: round(v, 4) for k, v in med.items()},
        "rate_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_to_floor": {k: round(v / floor_rate, 3) for k, v in rate.items()},
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
