"""Parse large statements in worker processes while the bundle is still being read.

A bundle of SBOMs spends most of its verification checking that each multi-megabyte
statement is well-formed JSON (:func:`dhi_offline.evidence.intoto.parse_top_level`),
which holds the GIL. As soon as the reader has extracted a large blob and checked its
SHA-256, it is handed to a process pool; the verifier later looks the result up by the
SHA-256 of the exact bytes it parses, so a result can only stand for those bytes. A
worker that fails, or a blob that is not a statement, only means the verifier does the
work itself: nothing here can make a statement verify that would not otherwise.

Workers are forked (they inherit the loaded modules; they only compute) and only
started when there is more than one CPU to run on and a blob large enough to be worth
it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Final

from dhi_offline.bundle import layout
from dhi_offline.errors import DhiError
from dhi_offline.evidence.dsse import envelope_from_bytes
from dhi_offline.evidence.intoto import TopLevel, parse_top_level

MIN_SIZE: Final = 2 * 1024 * 1024
"""Blobs smaller than this are parsed in place: shipping them costs more than it saves."""

Result = tuple[str, TopLevel] | None
_HEX = frozenset("0123456789abcdef")


def prepare_file(path: str) -> Result:
    """In a worker: the SHA-256 and top level of the statement ``path`` holds, if any.

    ``path`` is a bare statement (DHI layout) or a DSSE envelope around one (cosign).
    A bare statement's SHA-256 is its blob name: the reader checked the file against it
    as it wrote it (as ``DirectoryBlobStore(checked=True)`` relies on), so it is not
    hashed again here. A DSSE payload is hashed.
    """
    file = Path(path)
    data = file.read_bytes()
    head = data[:4096]
    if b'"payloadType"' in head or b'"signatures"' in head:
        try:
            data = envelope_from_bytes(data).payload
        except DhiError:
            return None
        digest = hashlib.sha256(data).hexdigest()
    else:
        digest = file.name
        if len(digest) != 64 or not set(digest) <= _HEX:
            digest = hashlib.sha256(data).hexdigest()
    top = parse_top_level(data)
    if top is None:
        return None
    return digest, top


def worker_init() -> None:
    """Worker initializer: SIGINT ignored (the main process handles Ctrl-C)."""
    # Ctrl-C reaches the whole process group: the main process reports it in one line
    # and stops the pool; a worker must not print a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class StatementPrefetch:
    """Large blobs of an opened bundle, parsed ahead in worker processes.

    :meth:`close` (``contextlib.closing``) shuts the pool down, pending work cancelled.
    """

    def __init__(self, root: Path, *, workers: int, min_size: int | None = None) -> None:
        """``root``: the reader's destination; ``workers`` 0 turns prefetching off."""
        self._root = root
        self._workers = workers
        self._min_size = MIN_SIZE if min_size is None else min_size
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[Future[Result]] = []
        self._done: dict[str, TopLevel] = {}
        self.submitted = 0
        self.hits = 0

    def close(self) -> None:
        """Stop the workers; what they have not finished is dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()

    def member_extracted(self, path: str, size: int) -> None:
        """Reader hook: ``path`` (relative to ``root``) was written and its hash checked."""
        if self._workers <= 0 or size < self._min_size or not path.startswith(layout.BLOBS_PREFIX):
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=worker_init,
            )
        self._pending.append(self._pool.submit(prepare_file, str(self._root / path)))
        self.submitted += 1

    def lookup(self, payload: bytes, sha256: str | None = None) -> TopLevel | None:
        """The prepared top level of exactly ``payload``, waiting for workers if needed.

        ``sha256``: the payload's hex SHA-256, when the caller has checked it.
        """
        if not self._pending and not self._done:
            return None
        digest = sha256 or hashlib.sha256(payload).hexdigest()
        while digest not in self._done and self._pending:
            future = self._pending.pop(0)
            try:
                result = future.result()
            except Exception:
                result = None
            if result is not None:
                self._done[result[0]] = result[1]
        found = self._done.pop(digest, None)
        self.hits += found is not None
        return found
