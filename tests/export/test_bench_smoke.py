"""``benchmarks/bench_export.py --quick`` runs and prints its figures (a smoke test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.registry import registry_binary

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_export.py"
FIGURES = (
    "machine:",
    "workload: 20 images x 2 platforms x 8 attestations = 320 attestations (320 verified)",
    "export loopback --jobs 1: 20 images in",
    "export loopback --jobs 8: 20 images in",
    "export +20 ms --jobs 1: 6 images in",
    "export +20 ms --jobs 8: 6 images in",
    "images per second:",
    "attestations per second:",
    "time split (loopback, --jobs 1):",
    "registry requests:",
    "rekor requests: 280 vs minimum 280",
    "bundle bytes:",
    "same requests for every --jobs: yes",
    "same bundle bytes for every --jobs: yes",
)


def test_quick_benchmark_prints_its_figures(tmp_path: Path) -> None:
    if registry_binary() is None:
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    for line in FIGURES:
        assert line in done.stdout, (line, done.stdout)
    doc = json.loads(figures.read_text())
    export = doc["export"]
    assert (export["route"], export["jobs"]) == ("loopback", 1)
    assert export["verified"] == export["attestations"] == 320
    assert export["images_per_s"] > 0
    assert export["registry_requests"] >= export["registry_requests_minimum"] > 0
    assert [(r["route"], r["jobs"], r["images"]) for r in doc["runs"]] == [
        ("loopback", 1, 20),
        ("loopback", 8, 20),
        ("latency", 1, 6),
        ("latency", 8, 6),
    ]
    for run in doc["runs"]:
        assert run["verified"] == run["attestations"] == 16 * run["images"]
        assert run["seconds"] > 0 and run["speedup"] > 0
        # The referrers API is asked once per registry (distribution 2.8 has none).
        assert run["requests_by_kind"]["referrers API"] == 2
    assert doc["same_bundle_for_every_jobs"] and doc["same_requests_for_every_jobs"]
