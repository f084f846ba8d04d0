"""A small mutation campaign inside ``make test`` (the large one is ``make fuzz``).

150 mutations with a fixed seed over the three valid bundles of ``mutate.py``: none may
crash the CLI, print more than one line or a traceback, or be accepted with a meaning
other than the original's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.adversarial import mutate

N = 150
SEED = 20260301


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return mutate.campaign(N, SEED)


def test_every_mutation_was_tried_and_classified(report: dict[str, Any]) -> None:
    assert report["tried"] == N
    classified = report["rejected"] + report["accepted"] + report["crashes"]
    assert classified + report["badStderr"] == N
    assert set(report["byKind"]) == set(mutate.KINDS)


def test_no_crash_no_changed_meaning(report: dict[str, Any]) -> None:
    shown = json.dumps(report["examples"], indent=1)[:4000]
    assert report["crashes"] == 0, shown
    assert report["badStderr"] == 0, shown
    assert report["acceptedDifferentMeaning"] == 0, shown


def test_nothing_left_in_the_temporary_directory(report: dict[str, Any]) -> None:
    assert report["tmpLeftovers"] == []


def test_meaning_ignores_only_the_file_identity() -> None:
    doc = {"bundle": {"path": "a", "sha256": "b", "size": 1, "sequence": 3}, "verdict": "PASS"}
    other: dict[str, Any] = {
        "bundle": {"path": "x", "sha256": "y", "size": 2, "sequence": 3},
        "verdict": "PASS",
    }
    assert mutate.meaning(doc) == mutate.meaning(other)
    other["bundle"]["sequence"] = 4
    assert mutate.meaning(doc) != mutate.meaning(other)
