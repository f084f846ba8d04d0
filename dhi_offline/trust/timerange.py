"""Closed validity intervals and RFC 3339 time parsing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dhi_offline.errors import TrustMaterialError


def parse_rfc3339(value: object, *, what: str) -> datetime:
    """Parse an RFC 3339 timestamp to an aware UTC datetime.

    Raises:
        TrustMaterialError: not a string, or not RFC 3339 with a time zone.
    """
    if not isinstance(value, str):
        raise TrustMaterialError(f"{what}: expected an RFC 3339 string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise TrustMaterialError(f"{what}: {value!r} is not an RFC 3339 time") from e
    if parsed.tzinfo is None:
        raise TrustMaterialError(f"{what}: {value!r} has no time zone")
    return parsed.astimezone(UTC)


def format_rfc3339(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
