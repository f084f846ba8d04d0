"""Tests mirror the package: every ``dhi_offline/<package>/`` has a ``tests/<package>/``."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dhi_offline"
TESTS = ROOT / "tests"


def test_every_package_has_a_tests_directory() -> None:
    # Packages only (an __init__.py): dhi_offline/data holds shipped files, not code.
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert packages, "no packages found under dhi_offline/"
    missing = [name for name in packages if not (TESTS / name).is_dir()]
    assert missing == [], f"dhi_offline/<package>/ without tests/<package>/: {', '.join(missing)}"
