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
    "images per second:",
    "attestations per second:",
    "time split:",
    "registry requests:",
    "rekor requests: 280 vs minimum 280",
    "bundle bytes:",
    "concurrency: none: the exporter fetches sequentially",
    "client fetch of",
)


def test_quick_benchmark_prints_its_figures(tmp_path: Path) -> None:
    if registry_binary() is None:
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for line in FIGURES:
        assert line in done.stdout, (line, done.stdout)
    doc = json.loads(figures.read_text())
    export = doc["export"]
    assert export["verified"] == export["attestations"] == 320
    assert export["images_per_s"] > 0
    assert export["registry_requests"] >= export["registry_requests_minimum"] > 0
    assert doc["client_fetch"]["latency_speedup"] > 1
