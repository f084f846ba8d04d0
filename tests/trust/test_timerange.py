"""Validity windows (``dhi_offline/trust/timerange.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dhi_offline.errors import TrustMaterialError
from dhi_offline.trust.timerange import TimeRange


def test_time_range_is_closed() -> None:
    r = TimeRange.from_json(
        {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}, what="x"
    )
    assert r.contains(datetime(2025, 1, 1, tzinfo=UTC))
    assert r.contains(datetime(2025, 1, 2, tzinfo=UTC))
    assert not r.contains(datetime(2025, 1, 2, 0, 0, 1, tzinfo=UTC))
    assert TimeRange.from_json({"start": "2025-01-01T00:00:00Z", "end": None}, what="x").end is None
    with pytest.raises(TrustMaterialError):
        TimeRange.from_json({"end": "2025-01-01T00:00:00Z"}, what="x")
    with pytest.raises(TrustMaterialError):
        TimeRange.from_json({"start": "2025-01-01T00:00:00"}, what="x")  # no zone
