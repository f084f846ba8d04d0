"""The evidence archive on the air-gapped host.

Layout under the archive directory (platformdirs data dir, or ``--archive DIR``)::

    bundles/<sha256>.dhi.tar.zst   every imported bundle, by the sha256 of its bytes
    receipts/<n>-<sha256>.json     one receipt per import: what was verified, when, how
    log.jsonl                      append-only, hash-chained log of imports
    state.json                     rollback state: highest sequence per exporter key,
                                   newest checkpoint per transparency log

Each log line is ``{"index", "time", "bundle", "receipt", "receiptSha256", "prev", "hash"}``
where ``hash`` is SHA-256 over the canonical JSON of the other fields and ``prev`` the
previous line's hash: changing, removing or reordering any line, receipt or bundle is
detected by :meth:`Archive.verify`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dhi_offline.errors import InputError, VerificationError
from dhi_offline.trust.timerange import format_rfc3339

GENESIS = "0" * 64


class ArchiveIntegrityError(VerificationError):
    """A stored bundle, receipt or log line was changed after it was written."""

    step = "archive integrity"


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass(frozen=True)
class LogLine:
    """One import recorded in the log."""

    index: int
    time: str
    bundle: str
    receipt: str
    receipt_sha256: str
    verdict: str
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The fields the hash covers."""
        return {
            "index": self.index,
            "time": self.time,
            "bundle": self.bundle,
            "receipt": self.receipt,
            "receiptSha256": self.receipt_sha256,
            "verdict": self.verdict,
            "prev": self.prev,
        }


@dataclass(frozen=True)
class Archive:
    """An evidence archive rooted at ``root``."""

    root: Path

    @property
    def log_path(self) -> Path:
        """The hash-chained log."""
        return self.root / "log.jsonl"

    def bundle_path(self, sha256: str) -> Path:
        """Where the bundle with this sha256 is kept."""
        return self.root / "bundles" / f"{sha256}.dhi.tar.zst"

    # -- rollback state -------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """``{"sequences": {exporter key id: n}, "checkpoints": {log id: note}}``."""
        path = self.root / "state.json"
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return {"sequences": {}, "checkpoints": {}}
        except (OSError, ValueError, RecursionError) as e:
            raise InputError(f"archive state {path} is unreadable: {e}") from e
        if not isinstance(doc, dict):
            raise InputError(f"archive state {path} is malformed")
        doc.setdefault("sequences", {})
        doc.setdefault("checkpoints", {})
        return doc

    def last_sequence(self, exporter_key_id: str) -> int | None:
        """The highest sequence imported from this exporter, if any."""
        value = self.state()["sequences"].get(exporter_key_id)
        return value if isinstance(value, int) else None

    def seen_checkpoints(self) -> dict[str, str]:
        """The newest checkpoint note imported per transparency log (hex log id)."""
        cps = self.state()["checkpoints"]
        return {k: v for k, v in cps.items() if isinstance(v, str)}

    # -- import ---------------------------------------------------------------
    def record_import(
        self,
        *,
        bundle_file: Path,
        bundle_sha256: str,
        receipt: dict[str, Any],
        verdict: str,
        when: datetime,
        exporter_key_id: str,
        sequence: int,
        checkpoints: dict[str, str],
    ) -> dict[str, Any]:
        """Store the bundle and receipt, append the log line, advance the state.

        The bundle is copied first, then the receipt, then the log line, then the
        state: an interruption leaves at worst an unreferenced file, never a log line
        pointing at something missing.

        Returns:
            The receipt as stored (with its log index).
        """
        lines = self.read_log()
        prev = lines[-1].hash if lines else GENESIS
        index = len(lines)
        target = self.bundle_path(bundle_sha256)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(bundle_file, tmp)
            if _sha256_file(tmp) != bundle_sha256:
                tmp.unlink()
                raise InputError(f"{bundle_file} changed while it was being imported")
            tmp.replace(target)
        stored = {**receipt, "logIndex": index}
        receipt_bytes = json.dumps(stored, indent=1, sort_keys=True).encode() + b"\n"
        receipt_rel = f"receipts/{index:06d}-{bundle_sha256[:16]}.json"
        _atomic_write(self.root / receipt_rel, receipt_bytes)
        body = {
            "index": index,
            "time": format_rfc3339(when),
            "bundle": bundle_sha256,
            "receipt": receipt_rel,
            "receiptSha256": hashlib.sha256(receipt_bytes).hexdigest(),
            "verdict": verdict,
            "prev": prev,
        }
        line = {**body, "hash": hashlib.sha256(_canonical(body)).hexdigest()}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if verdict == "PASS":
            state = self.state()
            old = state["sequences"].get(exporter_key_id)
            state["sequences"][exporter_key_id] = max(sequence, old if isinstance(old, int) else 0)
            state["checkpoints"].update(checkpoints)
            _atomic_write(
                self.root / "state.json", json.dumps(state, indent=1, sort_keys=True).encode()
            )
        return stored

    # -- reading and checking -------------------------------------------------
    def read_log(self) -> list[LogLine]:
        """Every log line, parsed (not yet checked).

        Raises:
            ArchiveIntegrityError: a line is not valid JSON of the expected shape.
        """
        try:
            text = self.log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out: list[LogLine] = []
        for n, raw in enumerate(text.splitlines()):
            try:
                d = json.loads(raw)
                out.append(
                    LogLine(
                        index=int(d["index"]),
                        time=str(d["time"]),
                        bundle=str(d["bundle"]),
                        receipt=str(d["receipt"]),
                        receipt_sha256=str(d["receiptSha256"]),
                        verdict=str(d["verdict"]),
                        prev=str(d["prev"]),
                        hash=str(d["hash"]),
                    )
                )
            except (ValueError, KeyError, TypeError, RecursionError) as e:
                raise ArchiveIntegrityError(f"log line {n + 1} is malformed") from e
        return out

    def receipt(self, line: LogLine) -> dict[str, Any]:
        """The receipt a log line points at (not checked; see :meth:`verify`)."""
        try:
            doc = json.loads((self.root / line.receipt).read_text())
        except (OSError, ValueError, RecursionError) as e:
            raise ArchiveIntegrityError(f"receipt {line.receipt} is unreadable") from e
        if not isinstance(doc, dict):
            raise ArchiveIntegrityError(f"receipt {line.receipt} is malformed")
        return doc

    def verify(self) -> int:
        """Check the chain, every receipt's hash and every bundle's hash.

        Returns:
            The number of log lines checked.

        Raises:
            ArchiveIntegrityError: the first line, receipt or bundle that was changed.
        """
        prev = GENESIS
        lines = self.read_log()
        for n, line in enumerate(lines):
            if line.index != n:
                raise ArchiveIntegrityError(
                    f"log line {n + 1} has index {line.index}: lines were removed or reordered"
                )
            if line.prev != prev:
                raise ArchiveIntegrityError(
                    f"log line {n + 1} does not chain to the line before it"
                )
            if hashlib.sha256(_canonical(line.body())).hexdigest() != line.hash:
                raise ArchiveIntegrityError(f"log line {n + 1} was changed (hash mismatch)")
            receipt_path = self.root / line.receipt
            if not receipt_path.is_file() or _sha256_file(receipt_path) != line.receipt_sha256:
                raise ArchiveIntegrityError(f"receipt {line.receipt} was changed or removed")
            bundle = self.bundle_path(line.bundle)
            if not bundle.is_file() or _sha256_file(bundle) != line.bundle:
                raise ArchiveIntegrityError(f"bundle {line.bundle[:16]}… was changed or removed")
            prev = line.hash
        return len(lines)
