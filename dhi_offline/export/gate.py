"""Thread gating for ``--jobs``: stop the workers whose image no longer matters.

Images are fetched by worker threads but taken in request order; once an image fails,
the images after it are not needed (the export fails with the first error in request
order), so their workers stop at their next registry request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from dhi_offline.oci.content import Fetched, ReferrersResult
from dhi_offline.oci.source import Source


class Stopped(Exception):
    """Raised in a worker whose image no longer matters (an earlier image failed)."""


class Gate:
    """Which images may still fetch: those before the first failed one (request order)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limit: int | None = None

    def fail(self, index: int) -> None:
        """Image ``index`` failed: the images after it stop."""
        with self._lock:
            self._limit = index if self._limit is None else min(self._limit, index)

    def stop_all(self) -> None:
        """Every image stops (the export is over)."""
        self.fail(-1)

    def check(self, index: int) -> None:
        """Raise :class:`Stopped` if image ``index`` should stop."""
        with self._lock:
            stopped = self._limit is not None and index > self._limit
        if stopped:
            raise Stopped


class GatedSource:
    """A source that asks the gate before every request, so a stopped worker ends soon."""

    def __init__(self, source: Source, check: Callable[[], None]) -> None:
        self._source = source
        self._check = check
        self.description = source.description

    def resolve(self, tag_or_digest: str) -> Fetched:
        """As :meth:`Source.resolve`."""
        self._check()
        return self._source.resolve(tag_or_digest)

    def manifest(self, digest: str) -> Fetched:
        """As :meth:`Source.manifest`."""
        self._check()
        return self._source.manifest(digest)

    def blob(self, digest: str, size: int | None = None) -> bytes:
        """As :meth:`Source.blob`."""
        self._check()
        return self._source.blob(digest, size)

    def referrers(self, digest: str, artifact_type: str | None = None) -> ReferrersResult:
        """As :meth:`Source.referrers`."""
        self._check()
        return self._source.referrers(digest, artifact_type)

    def tag(self, tag: str) -> Fetched | None:
        """As :meth:`Source.tag`."""
        self._check()
        return self._source.tag(tag)
