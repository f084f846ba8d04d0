"""Per-exporter-key sequence numbers, kept on the connected (exporting) machine.

Every bundle carries a ``sequence`` that grows with each export by the same key, so an
air-gapped host that remembers the highest sequence it imported can refuse an older
bundle replayed to it (rollback). The counter lives in ``STATE_DIR/sequences.json``:

    {"sequences": {"<key id>": <last issued>}, "version": 1}

It is updated under an exclusive ``flock`` of ``sequences.lock``, the lock of every
exporter state file (``export.state`` keeps the checkpoints under it too), so two exports
at once cannot both get the same number; it is written with a temp file +
``os.replace`` (a crash leaves the old or the new file, never half of one). A state file
that cannot be parsed is an error, not a reason to start again at 1: restarting would
reissue numbers importers already saw.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dhi_offline.errors import InputError, UsageError

STATE_FILE = "sequences.json"
LOCK_FILE = "sequences.lock"
_STATE_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_SEQUENCE = 2**53 - 1  # the manifest's JSON integer range


@contextlib.contextmanager
def locked_state(state_dir: Path) -> Iterator[None]:
    """Hold the exporter state lock (an exclusive ``flock``) for a read-modify-write.

    Raises:
        OSError: the lock file cannot be opened.
    """
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_state(path: Path) -> dict[str, int]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        obj = json.loads(raw)
    except ValueError as e:
        raise InputError(f"{path} is corrupt ({e}); fix or restore it by hand") from e
    seqs = obj.get("sequences") if isinstance(obj, dict) else None
    if (
        not isinstance(obj, dict)
        or obj.get("version") != _STATE_VERSION
        or not isinstance(seqs, dict)
        or not all(
            isinstance(k, str) and type(v) is int and 0 <= v <= _MAX_SEQUENCE
            for k, v in seqs.items()
        )
    ):
        raise InputError(f"{path} is not a version {_STATE_VERSION} sequence state file")
    return seqs


def write_atomic(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` through a synced temp file and ``os.replace``.

    Raises:
        OSError: the file cannot be written (the temp file is removed).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def _check_key_id(key_id: str) -> None:
    if not _HEX64.fullmatch(key_id):
        raise UsageError(f"exporter key id must be 64 lowercase hex characters, got {key_id!r}")


def current_sequence(key_id: str, state_dir: Path) -> int:
    """The last sequence issued for ``key_id`` (0 when none was)."""
    _check_key_id(key_id)
    return _read_state(state_dir / STATE_FILE).get(key_id, 0)


def next_sequence(key_id: str, state_dir: Path) -> int:
    """Issue the next sequence number (>= 1) for ``key_id`` and record it.

    Creates ``state_dir`` (mode 0700) when missing. The number is recorded before it is
    returned, so a failed export burns a number rather than risk reusing it.

    Raises:
        UsageError: ``key_id`` is not a key id.
        InputError: the state cannot be read, is corrupt, or cannot be written.
    """
    _check_key_id(key_id)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with locked_state(state_dir):
            path = state_dir / STATE_FILE
            seqs = _read_state(path)
            value = seqs.get(key_id, 0) + 1
            if value > _MAX_SEQUENCE:
                raise InputError(f"sequence for exporter key {key_id} is exhausted")
            seqs[key_id] = value
            data = {"sequences": seqs, "version": _STATE_VERSION}
            write_atomic(path, json.dumps(data, sort_keys=True, indent=2) + "\n")
    except OSError as e:
        raise InputError(f"cannot update {state_dir / STATE_FILE}: {e.strerror or e}") from e
    return value
