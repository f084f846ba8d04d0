"""Fixtures: the passing and failing reports of ``tests/report/fixtures.py``."""

from __future__ import annotations

import pytest

from dhi_offline.verify.result import VerificationReport
from tests.report.fixtures import failing_report, passing_report


@pytest.fixture
def passing() -> VerificationReport:
    return passing_report()


@pytest.fixture
def failing() -> VerificationReport:
    return failing_report()
