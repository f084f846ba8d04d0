#!/usr/bin/env python3
"""Benchmark the start-up of ``dhi-offline``: each command as a whole process.

Measured, as the median (and minimum) of ``--runs`` interleaved runs, each a new process
run with :func:`_timing.run_child` (wall time from spawn to exit; its CPU time too):

- ``python -c pass``: the interpreter alone (the venv's), the floor;
- ``dhi-offline --version`` and ``dhi-offline --help`` (the console script);
- ``python -m dhi_offline --help``;
- ``dhi-offline sigstore verify-bundle`` of two sigstore-conformance cases, with the
  command line ``tests/verify/test_conformance.py`` builds: a message signature
  (``happy-path-v0.3``) and an in-toto statement in DSSE (``happy-path-intoto-in-dsse-v3``).

Each is measured twice: as this environment runs it (``PYTHONDONTWRITEBYTECODE=1`` is set
here, so the editable install's sources are compiled again by every run), and with
bytecode cached (``PYTHONPYCACHEPREFIX`` to a scratch directory, warmed first), as a
pip-installed wheel runs: its ``.pyc`` files are written at install.

Target: each dhi-offline command at most 0.15 s, so the sigstore-conformance suite's 140
verify-bundle calls (70 cases, run twice) take under 30 s; that extrapolation uses the
slower of the two cases. Nothing is pinned: start-up is one core's work anyway.

Usage: ``python benchmarks/bench_startup.py [--runs R] [--json FILE]``. To measure another
copy through ``PYTHONPATH``, run it from outside the repository: ``python -m`` puts the
working directory first on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _timing import (
    CACHE_ROOT,
    VENV_BIN,
    dhi_offline_cli,
    interleaved,
    median,
    print_machine,
    report_target,
    run_child,
)

from tests.conftest import CONFORMANCE
from tests.verify.test_conformance import conformance_argv

TARGET_S = 0.15
SUITE_CALLS = 140
SUITE_TARGET_S = 30.0
CASES = {
    "message signature": "happy-path-v0.3",
    "DSSE": "happy-path-intoto-in-dsse-v3",
}


def contenders() -> dict[str, list[str]]:
    """name -> argv of every process measured."""
    python = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
    cli = dhi_offline_cli()
    out = {
        "python -c pass": [python, "-c", "pass"],
        "dhi-offline --version": [*cli, "--version"],
        "dhi-offline --help": [*cli, "--help"],
        "python -m dhi_offline --help": [python, "-m", "dhi_offline", "--help"],
    }
    for what, case in CASES.items():
        out[f"sigstore verify-bundle ({what}: {case})"] = [
            *cli,
            *conformance_argv(CONFORMANCE / case),
        ]
    return out


INSTALLED = "bytecode cached"
"""The mode the targets are judged in: what a pip-installed wheel runs."""


def environments() -> dict[str, dict[str, str]]:
    """mode -> the children's environment."""
    compiled = dict(os.environ)
    compiled.pop("PYTHONDONTWRITEBYTECODE", None)
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    compiled["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="startup-pyc-", dir=CACHE_ROOT)
    return {"as run here": dict(os.environ), INSTALLED: compiled}


def measure(
    commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds of ``runs`` interleaved runs of every command (after one checked run),
    and each run's CPU seconds (user + system: what a busy machine does not inflate)."""
    cpu: dict[str, list[float]] = {name: [] for name in commands}

    def timed(name: str, command: list[str]) -> object:
        done = run_child(command, env=env)
        assert done.returncode == 0, (command, done.stderr.decode(errors="replace"))
        cpu[name].append(done.user + done.system)
        return done

    for name, command in commands.items():
        # The answer must be right; the files (and bytecode) are then cached.
        timed(name, command)
        cpu[name].clear()

    def runner(name: str, command: list[str]) -> Callable[[], object]:
        return lambda: timed(name, command)

    wall = interleaved({n: runner(n, c) for n, c in commands.items()}, runs)
    return wall, cpu


def report(
    commands: dict[str, list[str]],
    times: dict[str, list[float]],
    cpu: dict[str, list[float]],
    *,
    targets: bool,
) -> dict[str, Any]:
    """Print the ``name: median (min) target`` lines; the figures."""
    med = {n: median(t) for n, t in times.items()}
    low = {n: min(t) for n, t in times.items()}
    cpu_med = {n: median(t) for n, t in cpu.items()}
    met: dict[str, bool] = {}
    for name in commands:
        line = f"{name}: {med[name]:.3f} s ({low[name]:.3f} s; cpu {cpu_med[name]:.3f} s)"
        if name.startswith("python -c"):
            print(f"{line} floor")
            continue
        met[name] = med[name] <= TARGET_S
        print(f"{line} target {TARGET_S} s {'met' if met[name] else 'NOT met'}")
    slowest = max(med[n] for n in commands if n.startswith("sigstore verify-bundle"))
    suite = SUITE_CALLS * slowest
    print(
        f"sigstore-conformance suite: {SUITE_CALLS} calls x {slowest:.3f} s = {suite:.1f} s "
        f"target {SUITE_TARGET_S:.0f} s {'met' if suite < SUITE_TARGET_S else 'NOT met'}"
    )
    if targets:
        for name, ok in met.items():
            report_target(3, f"start-up, {name}, bytecode cached", f"{med[name]:.3f} s", ok)
        report_target(
            3,
            f"start-up, sigstore-conformance suite of {SUITE_CALLS} calls < {SUITE_TARGET_S:.0f} s",
            f"{suite:.1f} s",
            suite < SUITE_TARGET_S,
        )
    return {
        "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "median_seconds": {k: round(v, 4) for k, v in med.items()},
        "min_seconds": {k: round(v, 4) for k, v in low.items()},
        "median_cpu_seconds": {k: round(v, 4) for k, v in cpu_med.items()},
        "met": met,
        "suite_seconds": round(suite, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    m = print_machine()
    commands = contenders()
    figures: dict[str, Any] = {
        "machine": m,
        "runs": args.runs,
        "target_s": TARGET_S,
        "argv": commands,
    }
    for mode, env in environments().items():
        times, cpu = measure(commands, env, args.runs)
        print(
            f"\n{mode}: median (min; median CPU) of {args.runs} interleaved runs; "
            f"target {TARGET_S} s"
        )
        figures[mode] = report(commands, times, cpu, targets=mode == INSTALLED)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
