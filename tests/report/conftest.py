"""Fixtures: the passing and failing reports of ``tests/report/fixtures.py``."""

from __future__ import annotations

import pytest

from dhi_offline.verify.result import Refusal, VerificationReport
from tests.report.fixtures import failing_report, passing_report, refusal_report


@pytest.fixture
def passing() -> VerificationReport:
    return passing_report()


@pytest.fixture
def failing() -> VerificationReport:
    return failing_report()


@pytest.fixture
def refused() -> Refusal:
    return refusal_report()


@pytest.fixture
def refused_unsigned() -> Refusal:
    return refusal_report(signed=False)
