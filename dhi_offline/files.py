"""Reading the files a user names, with errors that name the file (never a traceback)."""

from __future__ import annotations

from pathlib import Path

from dhi_offline.errors import InputError


def read_file(path: Path, *, what: str, limit: int | None = None) -> bytes:
    """Read ``path`` or raise InputError naming it.

    Raises:
        InputError: missing, a directory, unreadable, or larger than ``limit`` bytes.
    """
    try:
        if limit is not None and path.stat().st_size > limit:
            raise InputError(f"{what} {path} is larger than {limit} bytes")
        return path.read_bytes()
    except IsADirectoryError as e:
        raise InputError(f"{what} {path} is a directory") from e
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from e
