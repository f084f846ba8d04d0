"""Report files named on the command line (``--html``): opened before the work starts,
replaced atomically when it is done, never left half-written."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from dhi_offline.errors import InputError

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class HtmlTarget:
    """A file to write once: a temporary file beside it, renamed over it on :meth:`write`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._tmp: Path | None = None

    @classmethod
    @contextlib.contextmanager
    def prepare(cls, path: Path | None) -> Iterator[HtmlTarget]:
        """Open the temporary file now, so a bad path fails before anything is done.

        Raises:
            InputError: the directory is missing, read-only or full (naming ``path``).
        """
        target = cls(path)
        try:
            if path is not None:
                # The name is chosen and remembered before the file exists, so a Ctrl-C
                # at any moment after its creation still removes it (with mkstemp, one
                # between its open and its return would leave a file nobody knew of).
                target._tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
                try:
                    os.close(os.open(target._tmp, _CREATE, 0o600))
                except OSError as e:
                    target._tmp = None  # not created (an existing name is not ours)
                    raise InputError(
                        f"cannot write the HTML report {path}: {e.strerror or e}"
                    ) from e
            yield target
        finally:
            if target._tmp is not None:
                with contextlib.suppress(OSError):
                    target._tmp.unlink()

    @property
    def wanted(self) -> bool:
        """A path was given (render the report only then)."""
        return self.path is not None

    def write(self, text: str) -> None:
        """Write ``text`` and put it in place (no-op when no path was given).

        Raises:
            InputError: the write or the rename failed (naming the path).
        """
        if self.path is None or self._tmp is None:
            return
        try:
            with self._tmp.open("w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            self._tmp.replace(self.path)
        except OSError as e:
            raise InputError(f"cannot write the HTML report {self.path}: {e.strerror or e}") from e
        self._tmp = None
