"""The evidence archive on the air-gapped host.

Layout under the archive directory (platformdirs data dir, or ``--archive DIR``)::

    log.jsonl                      append-only, hash-chained log: one line per attempt
    receipts/<n>-<sha256[:16]>.json one receipt per attempt: what was verified, when, how
    bundles/<sha256>.dhi.tar.zst   every bundle that was verified (PASS or FAIL)
    quarantine/<sha256>.dhi.tar.zst bundles refused at steps 1-4, size-capped
    .lock                          serialises writers (``flock``); readers share it

Each log line is a JSON object whose ``hash`` is SHA-256 over the canonical JSON
(sorted keys, no spaces) of every other field, and whose ``prev`` is the previous
line's hash (``0`` x 64 for the first). A line names the bundle's sha256, where the
bundle was kept, the receipt and its sha256, the verdict, and for every verified bundle
its exporter key id, sequence and the newest checkpoint per transparency log.

The rollback state (highest sequence per exporter, newest checkpoint per log) is
**derived from the log** each time it is needed, after the chain is checked; there is no
separate state file to reset or edit. What an attacker with write access to this
directory can and cannot do undetected is in ``docs/trust.md`` ("Evidence archive").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dhi_offline.encoding import format_rfc3339
from dhi_offline.errors import ArchiveIntegrityError, InputError, UsageError
from dhi_offline.tlog.checkpoint import parse_checkpoint

__all__ = ["Archive", "ArchiveCheck", "ArchiveIntegrityError", "History", "LogLine", "parse_head"]

GENESIS = "0" * 64
LOG = "log.jsonl"
LOCK = ".lock"
RECEIPTS = "receipts"
BUNDLES = "bundles"
QUARANTINE = "quarantine"
QUARANTINE_MAX_FILE = 256 * 1024 * 1024
"""A refused bundle larger than this is not kept (its sha256 and size still are)."""
QUARANTINE_MAX_TOTAL = 2 * 1024 * 1024 * 1024
"""The quarantine folder stops growing here: refused bundles past it are not kept."""
LOG_VERSION = 2


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _line_hash(raw: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in raw.items() if k != "hash"})).hexdigest()


def _sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _os_error(root: Path, e: OSError) -> InputError:
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        reason = "no space left on device"
    return InputError(f"cannot write to the evidence archive {root}: {reason}")


def _write_new(path: Path, data: bytes) -> None:
    """Write ``path`` through a unique temporary file and ``os.replace``, fsynced."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def parse_head(value: str) -> tuple[int, str]:
    """``INDEX:HASH`` as printed by ``import`` and ``archive verify``.

    Raises:
        UsageError: not of that form.
    """
    index, sep, digest = value.partition(":")
    if (
        not sep
        or not index.isascii()
        or not index.isdigit()
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise UsageError(
            f"--expect-head {value!r} is not INDEX:SHA256 (as 'archive verify' prints)"
        )
    return int(index), digest


@dataclass(frozen=True)
class LogLine:
    """One attempt recorded in the log, as written (``raw``) and parsed."""

    raw: dict[str, Any]

    @property
    def index(self) -> int:
        """Position in the log, from 0."""
        return int(self.raw["index"])

    @property
    def time(self) -> str:
        """Wall-clock time of the import (RFC 3339)."""
        return str(self.raw["time"])

    @property
    def bundle(self) -> str:
        """The bundle file's sha256 (hex)."""
        return str(self.raw["bundle"])

    @property
    def receipt(self) -> str:
        """The receipt's path, relative to the archive."""
        return str(self.raw["receipt"])

    @property
    def receipt_sha256(self) -> str:
        """The receipt file's sha256."""
        return str(self.raw["receiptSha256"])

    @property
    def verdict(self) -> str:
        """``PASS``, ``UNSAFE-PASS`` or ``FAIL``."""
        return str(self.raw["verdict"])

    @property
    def stored(self) -> str:
        """Where the bundle was kept: ``bundles``, ``quarantine`` or ``none``."""
        return str(self.raw.get("stored", BUNDLES))

    @property
    def prev(self) -> str:
        """The previous line's hash."""
        return str(self.raw["prev"])

    @property
    def hash(self) -> str:
        """SHA-256 over the canonical JSON of the other fields."""
        return str(self.raw["hash"])

    @property
    def accepted(self) -> bool:
        """The bundle passed (advances the rollback state)."""
        return self.verdict in ("PASS", "UNSAFE-PASS")

    @property
    def head(self) -> str:
        """``index:hash``: the value to record elsewhere and give to ``--expect-head``."""
        return f"{self.index}:{self.hash}"

    def body(self) -> dict[str, Any]:
        """The fields the hash covers."""
        return {k: v for k, v in self.raw.items() if k != "hash"}


@dataclass(frozen=True)
class History:
    """The rollback state, derived from a checked log."""

    lines: tuple[LogLine, ...]
    sequences: dict[str, int] = field(default_factory=dict)
    """Exporter key id -> highest sequence accepted."""
    checkpoints: dict[str, str] = field(default_factory=dict)
    """Log id (hex) -> the newest checkpoint note accepted."""

    @property
    def head(self) -> str:
        """``index:hash`` of the last line, or ``empty``."""
        return self.lines[-1].head if self.lines else "empty"

    def find(self, bundle_sha256: str) -> LogLine | None:
        """The first line that verified this bundle (not a refusal), if any."""
        for line in self.lines:
            if line.bundle == bundle_sha256 and line.raw.get("refused") is not True:
                return line
        return None


@dataclass(frozen=True)
class ArchiveCheck:
    """What :meth:`Archive.verify` checked."""

    count: int
    head: str
    bundles: int
    quarantined: int


@dataclass(frozen=True)
class Archive:
    """An evidence archive rooted at ``root``."""

    root: Path

    @property
    def log_path(self) -> Path:
        """The hash-chained log."""
        return self.root / LOG

    def bundle_path(self, sha256: str, where: str = BUNDLES) -> Path:
        """Where the bundle with this sha256 is kept."""
        return self.root / where / f"{sha256}.dhi.tar.zst"

    def require(self) -> None:
        """Refuse a missing archive, or a directory that holds no archive.

        Raises:
            InputError: ``root`` is missing, not a directory, or has no log.
            ArchiveIntegrityError: the log is missing but receipts remain (deleted).
        """
        if not self.root.exists():
            raise InputError(f"no evidence archive at {self.root}: the directory does not exist")
        if not self.root.is_dir():
            raise InputError(f"evidence archive {self.root} is not a directory")
        if not self.log_path.is_file():
            if self._files(RECEIPTS):
                raise ArchiveIntegrityError(
                    f"the log {self.log_path} is missing but receipts remain: the log was deleted"
                )
            raise InputError(
                f"no evidence archive at {self.root}: it holds no {LOG} (nothing was ever "
                "imported there, or the log was deleted)"
            )

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the archive lock: exclusive to write, shared to read.

        A reader on an archive it cannot write (read-only media) reads without the lock:
        nobody can be writing there through this host either.

        Raises:
            InputError: a writer cannot create the archive or its lock file.
        """
        if exclusive:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise _os_error(self.root, e) from e
        else:
            try:
                fd = os.open(self.root / LOCK, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                yield
                return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- reading ---------------------------------------------------------------
    def read_log(self) -> list[LogLine]:
        """Every log line, parsed (not yet checked; see :meth:`history`).

        Raises:
            ArchiveIntegrityError: a line is not a JSON object of the expected shape.
            InputError: the log exists but cannot be read.
        """
        try:
            text = self.log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the evidence archive log {self.log_path}: {e}") from e
        out: list[LogLine] = []
        for n, raw in enumerate(text.splitlines()):
            try:
                d = json.loads(raw)
                if not isinstance(d, dict):
                    raise TypeError("not an object")
                line = LogLine(d)
                for attr in _REQUIRED:
                    getattr(line, attr)
            except (ValueError, KeyError, TypeError, RecursionError) as e:
                raise ArchiveIntegrityError(f"log line {n + 1} is malformed") from e
            out.append(line)
        return out

    def history(self) -> History:
        """The log, its chain checked, and the rollback state derived from it.

        Cheap (no bundle is hashed): run before every verification that uses the state.

        Raises:
            ArchiveIntegrityError: a line was changed, removed or reordered.
        """
        lines = self.read_log()
        if not lines:
            # An empty log over kept receipts is a deleted log, not a new archive:
            # starting a new chain here would reset the rollback state.
            left = sorted(self._files(RECEIPTS))
            if left:
                raise ArchiveIntegrityError(
                    f"the log {self.log_path} is missing or empty but {len(left)} receipt(s) "
                    "remain: the log was deleted or truncated"
                )
        _check_chain(lines)
        sequences: dict[str, int] = {}
        checkpoints: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for line in lines:
            if not line.accepted:
                continue
            key, seq = line.raw.get("exporterKeyId"), line.raw.get("sequence")
            if key is None:  # a line written before the log carried the state (v1)
                receipt = self.receipt(line)
                key, seq = receipt.get("exporterKeyId"), receipt.get("sequence")
            if isinstance(key, str) and type(seq) is int:
                sequences[key] = max(seq, sequences.get(key, 0))
            cps = line.raw.get("checkpoints") or {}
            if not isinstance(cps, dict):
                raise ArchiveIntegrityError(f"log line {line.index + 1}: checkpoints malformed")
            for log_id, note in cps.items():
                if not isinstance(note, str):
                    continue
                size = parse_checkpoint(note).tree_size
                if size >= sizes.get(log_id, -1):
                    sizes[log_id], checkpoints[log_id] = size, note
        return History(tuple(lines), sequences, checkpoints)

    def receipt(self, line: LogLine) -> dict[str, Any]:
        """The receipt a log line points at (its hash is checked by :meth:`verify`)."""
        try:
            doc = json.loads((self.root / line.receipt).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise ArchiveIntegrityError(f"receipt {line.receipt} is missing or unreadable") from e
        if not isinstance(doc, dict):
            raise ArchiveIntegrityError(f"receipt {line.receipt} is malformed")
        return doc

    def stored_bundle(self, line: LogLine) -> Path | None:
        """The kept copy of the bundle of ``line``, or None when it was not kept."""
        if line.stored == "none":
            return None
        return self.bundle_path(line.bundle, line.stored)

    def verify(self, *, expect_head: str | None = None) -> ArchiveCheck:
        """Check the chain, every receipt and kept bundle, files the log does not name,
        and (when given) that the log ends at ``expect_head``.

        Raises:
            InputError: there is no archive at ``root``.
            ArchiveIntegrityError: the first change found.
            UsageError: ``expect_head`` is not ``INDEX:HASH``.
        """
        expected = parse_head(expect_head) if expect_head is not None else None
        self.require()
        with self.lock(exclusive=False):
            history = self.history()
            lines = history.lines
            if not lines:
                raise ArchiveIntegrityError(
                    f"the log {self.log_path} is empty: every line was removed"
                )
            named: dict[str, set[str]] = {RECEIPTS: set(), BUNDLES: set(), QUARANTINE: set()}
            for line in lines:
                receipt_path = self.root / line.receipt
                if not receipt_path.is_file() or _sha256_file(receipt_path) != line.receipt_sha256:
                    raise ArchiveIntegrityError(f"receipt {line.receipt} was changed or removed")
                named[RECEIPTS].add(Path(line.receipt).name)
                self._check_receipt_agrees(line)
                kept = self.stored_bundle(line)
                if kept is not None:
                    if not kept.is_file() or _sha256_file(kept) != line.bundle:
                        raise ArchiveIntegrityError(
                            f"{line.stored}/{line.bundle[:16]}… was changed or removed"
                        )
                    named[line.stored].add(kept.name)
            for folder, names in named.items():
                for extra in sorted(self._files(folder) - names):
                    raise ArchiveIntegrityError(
                        f"{folder}/{extra} is not named by any log line: log lines were "
                        "removed (or an import was interrupted; see docs/trust.md)"
                    )
            last = lines[-1]
            if expected is not None:
                index, digest = expected
                if index >= len(lines):
                    raise ArchiveIntegrityError(
                        f"the log ends at {last.head}, before the expected head {index}:"
                        f"{digest[:16]}…: lines were removed"
                    )
                if lines[index].hash != digest:
                    raise ArchiveIntegrityError(
                        f"log line {index} is not the expected head {index}:{digest[:16]}…: "
                        "the log was rewritten"
                    )
            return ArchiveCheck(
                count=len(lines),
                head=last.head,
                bundles=len(named[BUNDLES]),
                quarantined=len(named[QUARANTINE]),
            )

    def _check_receipt_agrees(self, line: LogLine) -> None:
        """The line's own fields say what its receipt says (a line edited and re-hashed
        by someone who knows the format still has to agree with its receipt)."""
        receipt = self.receipt(line)
        pairs = [
            ("logIndex", line.index),
            ("bundleSha256", line.bundle),
            ("verdict", line.verdict),
        ]
        if "exporterKeyId" in line.raw:
            pairs += [
                ("exporterKeyId", line.raw.get("exporterKeyId")),
                ("sequence", line.raw.get("sequence")),
            ]
        for key, value in pairs:
            if receipt.get(key) != value:
                raise ArchiveIntegrityError(
                    f"log line {line.index + 1} does not match its receipt ({key})"
                )

    def _files(self, folder: str) -> set[str]:
        try:
            return {p.name for p in (self.root / folder).iterdir() if not p.name.startswith(".")}
        except FileNotFoundError:
            return set()
        except OSError as e:
            raise InputError(f"cannot list {self.root / folder}: {e.strerror or e}") from e

    # -- writing (call with the exclusive lock held) ----------------------------
    def record(
        self,
        *,
        history: History,
        bundle_file: Path,
        bundle_sha256: str,
        bundle_size: int,
        receipt: dict[str, Any],
        verdict: str,
        refused: bool,
        exporter_key_id: str | None = None,
        sequence: int | None = None,
        checkpoints: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Keep the bundle, write the receipt, append the log line.

        ``history`` must be the one read under the same exclusive lock. The bundle is
        copied first, then the receipt, then the log line: an interruption leaves at
        worst an unreferenced file (which :meth:`verify` reports), never a log line
        pointing at something missing.

        Returns:
            The receipt as stored (with ``logIndex`` and ``head``).

        Raises:
            InputError: the archive cannot be written (read-only, full disk), or the
                bundle changed while it was being copied.
        """
        lines = history.lines
        prev = lines[-1].hash if lines else GENESIS
        index = len(lines)
        try:
            stored = self._keep(bundle_file, bundle_sha256, bundle_size, refused=refused)
            doc = {**receipt, "logIndex": index, "bundleStored": stored}
            receipt_bytes = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
            receipt_rel = f"{RECEIPTS}/{index:06d}-{bundle_sha256[:16]}.json"
            (self.root / RECEIPTS).mkdir(parents=True, exist_ok=True)
            _write_new(self.root / receipt_rel, receipt_bytes)
            body: dict[str, Any] = {
                "v": LOG_VERSION,
                "index": index,
                "time": format_rfc3339(datetime.now(UTC).replace(microsecond=0)),
                "bundle": bundle_sha256,
                "bundleSize": bundle_size,
                "stored": stored,
                "receipt": receipt_rel,
                "receiptSha256": hashlib.sha256(receipt_bytes).hexdigest(),
                "verdict": verdict,
                "refused": refused,
                "exporterKeyId": exporter_key_id,
                "sequence": sequence,
                "checkpoints": checkpoints or {},
                "prev": prev,
            }
            line = {**body, "hash": _line_hash(body)}
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise _os_error(self.root, e) from e
        return {**doc, "head": f"{index}:{line['hash']}"}

    def _keep(self, bundle_file: Path, sha256: str, size: int, *, refused: bool) -> str:
        where = QUARANTINE if refused else BUNDLES
        if refused:
            used = (
                sum(p.stat().st_size for p in (self.root / QUARANTINE).glob("*.dhi.tar.zst"))
                if (self.root / QUARANTINE).is_dir()
                else 0
            )
            if size > QUARANTINE_MAX_FILE or used + size > QUARANTINE_MAX_TOTAL:
                return "none"
        target = self.bundle_path(sha256, where)
        if target.exists():
            return where
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(bundle_file, tmp)
            if _sha256_file(Path(tmp)) != sha256:
                raise InputError(f"{bundle_file} changed while it was being imported")
            Path(tmp).replace(target)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise
        return where


_REQUIRED = ("index", "time", "bundle", "receipt", "receipt_sha256", "verdict", "prev", "hash")


def _check_chain(lines: list[LogLine]) -> None:
    prev = GENESIS
    for n, line in enumerate(lines):
        if line.index != n:
            raise ArchiveIntegrityError(
                f"log line {n + 1} has index {line.index}: lines were removed or reordered"
            )
        if line.prev != prev:
            raise ArchiveIntegrityError(f"log line {n + 1} does not chain to the line before it")
        if _line_hash(line.raw) != line.hash:
            raise ArchiveIntegrityError(f"log line {n + 1} was changed (hash mismatch)")
        prev = line.hash
