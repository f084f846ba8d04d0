"""``dist verify``: check an offline installer, tarball or unpacked directory.

Plan, in order; each step raises a typed error, the first failure ends it:

1. read every member (a tarball is streamed once and never unpacked to disk; a directory
   is walked without following links): only regular files and directories, all under
   one top directory, no unsafe or repeated name; hash each file;
2. ``SHA256SUMS.sig`` must verify over the exact ``SHA256SUMS`` bytes with the exporter
   key the operator trusts (given by the caller, never read from the installer);
3. only then is ``SHA256SUMS`` believed: parsed strictly, and every file must be listed
   with its digest, and every listed file present (the first bad file is named).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dhi_offline.dist.sums import (
    SIGNATURE,
    SIGNATURE_LIMIT,
    SUMS,
    SUMS_LIMIT,
    UNLISTED,
    check_files,
    check_path,
    parse_sums,
    verify_sums_signature,
)
from dhi_offline.errors import DistIntegrityError, InputError
from dhi_offline.trust.keys import PublicKey

MAX_MEMBERS = 10_000
"""More members than any wheelhouse has: refuse early rather than hash forever."""
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DistCheck:
    """What :func:`verify_dist` established."""

    top: str
    """The installer's top directory name (``dhi-offline-<version>-<platform>-py<XY>``),
    or the directory's own name."""
    files: int
    """Files checked against ``SHA256SUMS``."""
    key_id: str
    """The exporter key that signed ``SHA256SUMS``."""


@dataclass
class _Contents:
    digests: dict[str, str]
    sums: bytes | None = None
    signature: bytes | None = None


def _read_small(f: IO[bytes], name: str, limit: int) -> bytes:
    data = f.read(limit + 1)
    if len(data) > limit:
        raise DistIntegrityError(f"{name} is larger than {limit} bytes")
    return data


def _hash(f: IO[bytes]) -> str:
    h = hashlib.sha256()
    while chunk := f.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _take(contents: _Contents, rel: str, f: IO[bytes]) -> None:
    if (
        rel in contents.digests
        or (rel == SUMS and contents.sums is not None)
        or (rel == SIGNATURE and contents.signature is not None)
    ):
        raise DistIntegrityError(f"{rel}: appears twice")
    if rel == SUMS:
        contents.sums = _read_small(f, SUMS, SUMS_LIMIT)
    elif rel == SIGNATURE:
        contents.signature = _read_small(f, SIGNATURE, SIGNATURE_LIMIT)
    else:
        contents.digests[rel] = _hash(f)


def _read_tarball(path: Path) -> tuple[str, _Contents]:
    contents = _Contents({})
    top: str | None = None
    count = 0
    try:
        # Stream mode: one pass over the file, each member hashed as it is read.
        with tarfile.open(path, mode="r|gz") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise DistIntegrityError(f"more than {MAX_MEMBERS} members")
                name = member.name.removeprefix("./")
                if member.isdir():
                    name = name.rstrip("/")
                head, _, rel = name.partition("/")
                check_path(name)
                if top is None:
                    top = head
                elif head != top:
                    raise DistIntegrityError(f"{name}: outside the top directory {top}/")
                if member.isdir():
                    continue
                if not member.isreg():
                    raise DistIntegrityError(f"{name}: not a regular file (links are refused)")
                if not rel:
                    raise DistIntegrityError(f"{name}: a file where the top directory should be")
                f = tar.extractfile(member)
                if f is None:  # a regular member always has a file object; never trust that
                    raise DistIntegrityError(f"{name}: cannot be read")
                _take(contents, rel, f)
    except FileNotFoundError as e:
        raise InputError(f"{path}: no such file") from e
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise InputError(f"{path}: not a readable .tar.gz ({e})") from e
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    if top is None:
        raise InputError(f"{path}: an empty archive")
    return top, contents


def _read_directory(root: Path) -> _Contents:
    contents = _Contents({})
    count = 0
    try:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                rel = full.relative_to(root).as_posix()
                mode = full.lstat().st_mode
                if stat.S_ISDIR(mode):
                    continue
                count += 1
                if count > MAX_MEMBERS:
                    raise DistIntegrityError(f"more than {MAX_MEMBERS} files")
                check_path(rel)
                if not stat.S_ISREG(mode):
                    raise DistIntegrityError(f"{rel}: not a regular file (links are refused)")
                # O_NOFOLLOW: a file swapped for a link since lstat is refused, not followed.
                fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as f:
                    _take(contents, rel, f)
    except OSError as e:
        raise InputError(f"cannot read {e.filename or root}: {e.strerror or e}") from e
    return contents


def verify_dist(path: Path, key: PublicKey) -> DistCheck:
    """Verify an installer tarball (read in place) or its unpacked top directory.

    Args:
        path: ``dhi-offline-*.tar.gz``, or the directory holding ``SHA256SUMS``.
        key: the exporter public key the operator trusts.

    Raises:
        InputError: ``path`` is missing, unreadable, not a .tar.gz, or a directory
            without ``SHA256SUMS`` (exit 2).
        SignatureError: ``SHA256SUMS.sig`` does not verify with ``key`` (exit 1).
        DistIntegrityError: a file is missing, unlisted, changed, a link, or ``SHA256SUMS``
            or its signature is absent or malformed (exit 1).
    """
    # (1) read and hash every member.
    if path.is_dir():
        if not (path / SUMS).is_file():
            raise InputError(
                f"{path} holds no {SUMS}: give the tarball, or the directory it unpacks to"
            )
        top, contents = path.resolve().name, _read_directory(path)
    else:
        top, contents = _read_tarball(path)
    if contents.sums is None:
        raise DistIntegrityError(f"{SUMS}: missing")
    if contents.signature is None:
        raise DistIntegrityError(f"{SIGNATURE}: missing")
    # (2) the list is believed only once the trusted key's signature verifies over it.
    verify_sums_signature(contents.sums, contents.signature, key)
    # (3) every file, listed or not, against the signed list.
    listed = parse_sums(contents.sums)
    check_files(listed, {p: d for p, d in contents.digests.items() if p not in UNLISTED})
    return DistCheck(top=top, files=len(listed), key_id=key.key_id)
