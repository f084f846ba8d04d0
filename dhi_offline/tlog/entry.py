"""Rekor v1 API log entries (``GET /api/v1/log/entries?logIndex=N``) as verifiable entries.

The exporter stores the exact response bytes; the verifier parses them here into the
same :class:`~dhi_offline.evidence.sigstore_bundle.TlogEntry` a sigstore bundle yields,
so one code path verifies both.
"""

from __future__ import annotations

from dhi_offline.evidence.sigstore_bundle import TlogEntry
from dhi_offline.tlog.rekor_api import parse_log_entry, to_tlog_entry


def parse_rekor_entry(raw: bytes) -> TlogEntry:
    """Parse a Rekor ``{uuid: LogEntry}`` response holding exactly one entry.

    Raises:
        MalformedEvidenceError: not the documented shape.
    """
    return to_tlog_entry(parse_log_entry(raw))
