"""The fast part of the mutation harness, run by ``make test``: every point still names
code that exists exactly once, its edit compiles, its tests exist; and the harness itself
kills a point (the runner is not vacuous)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.mutation.points import POINTS, Point
from tests.mutation.run import check_points, run_point


def test_every_point_matches_the_code() -> None:
    assert check_points() == []
    assert len(POINTS) >= 30


def test_a_point_whose_code_moved_is_reported(tmp_path: Path) -> None:
    (tmp_path / "dhi_offline").mkdir()
    (tmp_path / "dhi_offline" / "x.py").write_text("if a:\n    raise E\n")
    moved = Point("x", "x", "dhi_offline/x.py", "if b:\n", "if False:\n", ())
    twice = Point("y", "y", "dhi_offline/x.py", "a", "b", ())
    problems = check_points((moved, twice), tmp_path)
    assert problems == [
        "x: the check's code is found 0 times in dhi_offline/x.py",
        "y: the check's code is found 2 times in dhi_offline/x.py",
    ]


def test_runner_kills_and_spares(tmp_path: Path) -> None:
    """A tiny package and test in a scratch dir: the mutant is killed, the identity edit
    survives, and the file is restored either way."""
    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    (scratch / "dhi_offline").mkdir()
    code = "def check(x):\n    if x < 0:\n        raise ValueError\n"
    (scratch / "dhi_offline" / "__init__.py").write_text(code)
    (scratch / "tests").mkdir()
    (scratch / "tests" / "test_x.py").write_text(
        "import pytest\nfrom dhi_offline import check\n\n"
        "def test_refuses():\n    with pytest.raises(ValueError):\n        check(-1)\n"
    )
    killed = run_point(
        Point("k", "k", "dhi_offline/__init__.py", "if x < 0:", "if False:", ("tests",)),
        scratch,
        120,
    )
    assert killed.killers == ("tests/test_x.py::test_refuses",)
    spared = run_point(
        Point("s", "s", "dhi_offline/__init__.py", "if x < 0:", "if x < 0:", ("tests",)),
        scratch,
        120,
    )
    assert spared.killers == () and spared.error == ""
    assert (scratch / "dhi_offline" / "__init__.py").read_text() == code
