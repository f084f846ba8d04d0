"""``make mutants``: remove each security check in a scratch copy and run its tests.

For every point of :mod:`tests.mutation.points`: copy the package and the tests once
into a scratch directory, apply the point's edit, run the point's tests there (``python
-m pytest`` with the copy first on the path, so subprocesses the tests start run the
mutant too), restore the file. A point is *killed* when at least one of its tests fails,
and prints which; *survived* when all pass. Exit 1 when a point survived, an
acceptance-path point was killed by fewer than two tests, or a point no longer matches
the code. ``--only ID`` runs some points; ``--json PATH`` writes the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.mutation.points import POINTS, Point

REPO = Path(__file__).resolve().parents[2]
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


@dataclass(frozen=True)
class Result:
    """One point after its run."""

    point: Point
    killers: tuple[str, ...]
    seconds: float
    error: str = ""

    @property
    def killed(self) -> bool:
        return bool(self.killers)

    @property
    def enough(self) -> bool:
        return self.killed and (not self.point.acceptance or len(self.killers) >= 2)


def check_points(points: tuple[Point, ...] = POINTS, root: Path = REPO) -> list[str]:
    """Problems with the list itself: code not found exactly once, a bad edit, missing
    tests, duplicate ids (what ``make test`` runs)."""
    problems: list[str] = []
    seen: set[str] = set()
    for p in points:
        if p.id in seen:
            problems.append(f"{p.id}: duplicate id")
        seen.add(p.id)
        source = (root / p.file).read_text(encoding="utf-8")
        count = source.count(p.find)
        if count != 1:
            problems.append(f"{p.id}: the check's code is found {count} times in {p.file}")
            continue
        try:
            compile(source.replace(p.find, p.replace), p.file, "exec")
        except SyntaxError as e:
            problems.append(f"{p.id}: the edit does not compile: {e}")
        problems += [f"{p.id}: no test path {t}" for t in p.tests if not (root / t).exists()]
    return problems


def _scratch() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="dhi-mutants-"))
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc")
    shutil.copytree(REPO / "dhi_offline", tmp / "dhi_offline", ignore=ignore)
    shutil.copytree(REPO / "tests", tmp / "tests", ignore=ignore, symlinks=True)
    shutil.copy2(REPO / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def run_point(point: Point, scratch: Path, timeout: int) -> Result:
    """Apply ``point`` in ``scratch``, run its tests, restore the file."""
    path = scratch / point.file
    original = path.read_text(encoding="utf-8")
    if original.count(point.find) != 1:
        return Result(point, (), 0.0, "code not found exactly once")
    path.write_text(original.replace(point.find, point.replace), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
             "--no-header", *point.tests],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        killers = tuple(dict.fromkeys(_FAILED.findall(proc.stdout)))
        error = ""
        if proc.returncode not in (0, 1):
            error = f"pytest exit {proc.returncode}: {proc.stdout.strip()[-300:]}"
        return Result(point, killers, time.monotonic() - start, error)
    except subprocess.TimeoutExpired:
        return Result(point, ("(timeout)",), time.monotonic() - start, "timed out")
    finally:
        path.write_text(original, encoding="utf-8")


def table(results: list[Result]) -> str:
    """The table ``make mutants`` prints (and docs/security.md shows)."""
    lines = ["| point | check | killed by | verdict |", "|---|---|---|---|"]
    for r in results:
        names = ", ".join(k.split("::", 1)[-1] for k in r.killers[:4])
        more = f" (+{len(r.killers) - 4})" if len(r.killers) > 4 else ""
        if not r.killed:
            verdict = "**SURVIVED**"
        elif not r.enough:
            verdict = "killed by only one test"
        else:
            verdict = f"killed ({len(r.killers)})"
        if r.error:
            verdict += f" [{r.error[:80]}]"
        lines.append(f"| {r.point.id} | {r.point.check} | {names}{more} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign; see the module docstring."""
    parser = argparse.ArgumentParser(prog="make mutants")
    parser.add_argument("--only", action="append", default=[], help="point id (repeatable)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args(argv)
    problems = check_points()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    points = [p for p in POINTS if not args.only or p.id in args.only]
    scratch = _scratch()
    results: list[Result] = []
    try:
        for n, point in enumerate(points, 1):
            result = run_point(point, scratch, args.timeout)
            results.append(result)
            state = "killed" if result.killed else "SURVIVED"
            print(
                f"[{n}/{len(points)}] {point.id}: {state} by {len(result.killers)} test(s) "
                f"in {result.seconds:.0f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(table(results))
    survived = [r.point.id for r in results if not r.killed]
    thin = [r.point.id for r in results if r.killed and not r.enough]
    print(
        f"\n{len(results)} points: {len(results) - len(survived)} killed, "
        f"{len(survived)} survived; acceptance-path points with one killer: {len(thin)}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                [{"id": r.point.id, "killers": list(r.killers), "error": r.error} for r in results],
                indent=1,
            )
        )
    return 1 if survived or thin or any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
