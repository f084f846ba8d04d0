"""Rules for the whole package that no single module's tests would notice."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dhi_offline"


def test_no_assert_in_runtime_code() -> None:
    # ``python -O`` strips asserts: a check written as one disappears in production.
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == [], f"assert in runtime code: {', '.join(found)}"
