"""Rekor completion: inclusion proofs and checkpoints for SET-only log entries.

Evidence often carries only a signed entry timestamp (SET). At export, every such entry
a trusted log can serve is fetched again from Rekor with its inclusion proof, checked
against the signed entry, and packed (``tlog/<log id>/entries/<index>.json``); each
log's newest checkpoint is packed and linked by a consistency proof to the one packed
last time (``state.load_checkpoints``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from dhi_offline.bundle import layout
from dhi_offline.errors import ConsistencyProofError, DhiError, RekorError, VerificationError
from dhi_offline.evidence.records import AttestationRecord, MemoryBlobStore, TlogCompletion
from dhi_offline.tlog.checkpoint import parse_checkpoint
from dhi_offline.tlog.consistency import ConsistencyRecord, verify_consistency_record
from dhi_offline.tlog.rekor_client import RekorClient, verify_rekor_entry
from dhi_offline.trust.trusted_root import LogInstance, TrustedRoot
from dhi_offline.verify.layouts import LogEntryRef, layout_named

EntryKey = tuple[str, int]
"""(hex log id, log index) of a transparency-log entry."""


def log_entries_needing_proof(
    record: AttestationRecord, store: MemoryBlobStore
) -> list[LogEntryRef]:
    """(log id, log index, body) of every SET-only entry this record carries."""
    return layout_named(record.layout).log_entries(record, store)


@dataclass(frozen=True)
class CompletedEntry:
    """A SET-only entry as Rekor served it, with an inclusion proof, checked."""

    raw: bytes
    tree_size: int
    checkpoint: str | None
    """The signed checkpoint the inclusion proof leads to, if the entry carried one."""


@dataclass
class Completion:
    """What completing one image's entries gave: merged in request order."""

    wanted: list[EntryKey] = field(default_factory=list)
    """Every SET-only entry of the image's records that a trusted log can complete, in
    record order, repeats included (the order completions are packed in)."""
    entries: dict[EntryKey, CompletedEntry] = field(default_factory=dict)
    problems: dict[EntryKey, str] = field(default_factory=dict)
    """Why an entry could not be completed (a warning, not an error)."""
    late_error: DhiError | None = None
    """An error met while completing entries: raised after every image is discovered,
    as the sequential export raised it."""


@dataclass(frozen=True)
class Merged:
    """Completed entries of every image, in record order."""

    members: dict[str, bytes]
    """Bundle members: the Rekor responses, and later the checkpoints and links."""
    completions: list[TlogCompletion]
    lookup: dict[EntryKey, bytes]
    """The Rekor response per entry, for verification at export."""
    latest: dict[str, tuple[int, str]]
    """The newest checkpoint per log (hex log id -> tree size, note)."""


class LogEntries:
    """Completes SET-only entries from Rekor for every worker (thread-safe).

    One Rekor client per log URL, shared. An entry one image has completed is not
    fetched again for another; which worker fetched it does not matter, because the
    main thread packs completions in record order (:func:`merge_entries`).
    """

    def __init__(self, trusted_root: TrustedRoot, make: Callable[[str], RekorClient]) -> None:
        self._trusted_root = trusted_root
        self._make = make
        self._lock = threading.Lock()
        self._clients: dict[str, RekorClient] = {}
        self._completed: set[EntryKey] = set()

    def client(self, base_url: str) -> RekorClient:
        """The client for the log at ``base_url``, made on first use."""
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                client = self._clients[base_url] = self._make(base_url)
            return client

    def close(self) -> None:
        """Close every client made."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def complete(
        self,
        records: list[AttestationRecord],
        store: MemoryBlobStore,
        work: Completion,
        check: Callable[[], None],
    ) -> None:
        """Fetch an inclusion proof for every SET-only entry ``records`` carry, into ``work``."""
        for record in records:
            try:
                needed = log_entries_needing_proof(record, store)
            except DhiError:
                continue  # malformed evidence: verification reports it
            for log_id, index, body in needed:
                logs = [t for t in self._trusted_root.tlog_by_id(log_id) if t.key is not None]
                if not logs:
                    continue
                key = (log_id.hex(), index)
                work.wanted.append(key)
                with self._lock:
                    if key in self._completed:
                        continue
                check()
                self._fetch(logs[0], key, body, work)

    def _fetch(self, log: LogInstance, key: EntryKey, body: bytes, work: Completion) -> None:
        index = key[1]
        try:
            entry = self.client(log.base_url).entry_by_index(index)
            checkpoint = verify_rekor_entry(entry, log, expected_body=body)
        except (RekorError, VerificationError) as e:
            work.problems[key] = (
                f"log entry {index} of {log.base_url} not completed: {e.one_line()}"
            )
            return
        envelope = entry.inclusion_proof.checkpoint if entry.inclusion_proof else None
        work.entries[key] = CompletedEntry(entry.raw, checkpoint.tree_size, envelope or None)
        with self._lock:
            self._completed.add(key)


def merge_entries(works: list[Completion], warn: Callable[[str], None]) -> Merged:
    """Completed entries in record order: members, completions, lookup, newest checkpoints.

    The order (and the newest checkpoint per log, the first of the largest tree) is the
    one a sequential export produces, whichever worker fetched an entry.

    Raises:
        DhiError: the first image's ``late_error``, in request order.
    """
    fetched: dict[EntryKey, CompletedEntry] = {}
    problems: dict[EntryKey, str] = {}
    for work in works:
        for key, entry in work.entries.items():
            fetched.setdefault(key, entry)
        for key, problem in work.problems.items():
            problems.setdefault(key, problem)
    members: dict[str, bytes] = {}
    completions: list[TlogCompletion] = []
    lookup: dict[EntryKey, bytes] = {}
    latest: dict[str, tuple[int, str]] = {}
    for work in works:
        for key in work.wanted:
            if key in lookup:
                continue
            completed = fetched.get(key)
            if completed is None:
                warn(problems.get(key, f"log entry {key[1]} not completed"))
                continue
            log_id_hex, index = key
            path = layout.tlog_entry_path(log_id_hex, index)
            members[path] = completed.raw
            lookup[key] = completed.raw
            completions.append(TlogCompletion(log_id=log_id_hex, log_index=index, path=path))
            if completed.checkpoint and completed.tree_size > latest.get(log_id_hex, (0, ""))[0]:
                latest[log_id_hex] = (completed.tree_size, completed.checkpoint)
        if work.late_error is not None:
            raise work.late_error
    return Merged(members, completions, lookup, latest)


def link_checkpoints(
    latest: dict[str, tuple[int, str]],
    members: dict[str, bytes],
    previous: dict[str, str],
    trusted_root: TrustedRoot,
    entries: LogEntries,
) -> None:
    """Pack each log's newest checkpoint, linked to ``previous``, the one packed last time.

    Raises:
        ConsistencyProofError: the log forked, or cannot prove one tree extends the other.
    """
    for log_id_hex, (size, envelope) in latest.items():
        members[layout.checkpoint_path(log_id_hex)] = envelope.encode()
        old = previous.get(log_id_hex)
        known = trusted_root.tlog_by_id(bytes.fromhex(log_id_hex))
        if old is None or not known:
            continue
        log = known[0]
        seen = parse_checkpoint(old)
        if seen.tree_size == size:
            if seen.root_hash != parse_checkpoint(envelope).root_hash:
                raise ConsistencyProofError(
                    f"{log.base_url} signed two different trees of size {size}: the log forked"
                )
            continue
        # Prove the smaller tree is a prefix of the larger, whichever came first.
        small, large = (old, envelope) if seen.tree_size < size else (envelope, old)
        try:
            proof = entries.client(log.base_url).consistency_proof(
                parse_checkpoint(small).tree_size, parse_checkpoint(large).tree_size
            )
        except RekorError as e:
            # Two signed tree heads we cannot link: packing either would hide a fork.
            raise ConsistencyProofError(
                f"{log.base_url} cannot prove its tree of size {parse_checkpoint(small).tree_size} "
                f"is a prefix of its tree of size {parse_checkpoint(large).tree_size}: {e.message}"
            ) from e
        link = ConsistencyRecord(old_checkpoint=small, new_checkpoint=large, hashes=proof.hashes)
        # A log that cannot prove one tree extends the other has forked.
        verify_consistency_record(link, log)
        if seen.tree_size < size:
            members[layout.consistency_path(log_id_hex, seen.tree_size, size)] = (
                link.to_json_bytes()
            )
