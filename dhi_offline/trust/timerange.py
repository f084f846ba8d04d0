"""Closed validity intervals (RFC 3339 parsing lives in :mod:`dhi_offline.encoding`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dhi_offline.encoding import format_rfc3339, parse_rfc3339
from dhi_offline.errors import TrustMaterialError


@dataclass(frozen=True)
class TimeRange:
    """A closed interval ``[start, end]``; ``end`` None means open-ended."""

    start: datetime
    end: datetime | None = None

    def contains(self, when: datetime) -> bool:
        """True when ``start <= when <= end`` (both bounds inclusive)."""
        if when < self.start:
            return False
        return self.end is None or when <= self.end

    @classmethod
    def from_json(cls, obj: object, *, what: str) -> TimeRange:
        """Read a sigstore ``validFor`` object; ``start`` is required.

        Raises:
            TrustMaterialError: missing start, or end before start.
        """
        if not isinstance(obj, dict) or obj.get("start") is None:
            raise TrustMaterialError(f"{what}: validFor must have a start")
        start = parse_rfc3339(obj["start"], what=f"{what}.validFor.start")
        end = (
            parse_rfc3339(obj["end"], what=f"{what}.validFor.end")
            if obj.get("end") is not None
            else None
        )
        if end is not None and end < start:
            raise TrustMaterialError(f"{what}: validFor ends before it starts")
        return cls(start=start, end=end)

    def to_json(self) -> dict[str, str]:
        """The sigstore ``validFor`` JSON form."""
        out = {"start": format_rfc3339(self.start)}
        if self.end is not None:
            out["end"] = format_rfc3339(self.end)
        return out
