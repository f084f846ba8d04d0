"""Write a bundle on the connected machine: deterministic, streaming and atomic.

Two passes over the members. Pass 1 hashes every source (files are streamed, never
loaded whole) to build the manifest, which is signed. Pass 2 writes the tar stream —
``manifest.json``, ``manifest.sig.json``, then every member sorted by path — through a
single-threaded zstd compressor into a temp file next to the output, re-hashing each
source as it goes so a file that changed between the passes is caught, and finally
``os.replace``-s the temp file onto the output.

Determinism: the same members, manifest fields, key and SOURCE_DATE_EPOCH give the
same bytes, with the same dhi-offline, zstandard/libzstd and (for RFC 6979 signatures)
cryptography/OpenSSL versions. Every header field is fixed (see ``tarformat``), the
member order is the path order, the compression parameters are constants, and the
signature is deterministic when :data:`signing.DETERMINISTIC_SIGNATURES` is true.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO, Final, cast

import zstandard

from dhi_offline.bundle import layout, tarformat
from dhi_offline.bundle.manifest import BundleManifest, ImageEntry, Member
from dhi_offline.bundle.reader import Limits
from dhi_offline.bundle.signing import ExporterPrivateKey, public_key_of, sign_manifest
from dhi_offline.errors import InputError, UsageError

MemberSource = bytes | Path
"""A member's content: bytes, or a regular file streamed from disk."""

_CHUNK: Final = 1024 * 1024
_MAX_EPOCH: Final = 8**11 - 1  # the USTAR mtime field


@dataclass(frozen=True)
class WrittenBundle:
    """The bundle file that was written."""

    path: Path
    size: int
    """Size of the compressed file in bytes."""
    sha256: str
    """Hex SHA-256 of the compressed file (an audit record can name the bundle by it)."""


def source_date_epoch_from_env(environ: dict[str, str] | None = None) -> int | None:
    """``SOURCE_DATE_EPOCH`` from the environment (reproducible-builds.org), if set.

    Raises:
        UsageError: set but not a non-negative decimal integer in USTAR range.
    """
    env = os.environ if environ is None else environ
    raw = env.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > _MAX_EPOCH:
        raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is not a Unix time in seconds")
    return int(raw)


class _HashingWriter:
    """The temp file as the compressor sees it: counts and hashes what is written."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()


def _chunks(source: MemberSource, path: str) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is then refused as not regular.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError(f"source of member {path!r} ({source}) is not a regular file")
            while chunk := fh.read(_CHUNK):
                yield chunk
    except OSError as e:
        raise InputError(f"cannot read {source} for member {path!r}: {e.strerror or e}") from e


def _measure(source: MemberSource, path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in _chunks(source, path):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _collect(members: Iterable[tuple[str, MemberSource]]) -> list[tuple[str, MemberSource]]:
    out: dict[str, MemberSource] = {}
    for path, source in members:
        if not isinstance(path, str):
            raise UsageError(f"member path {path!r} is not a string")
        problem = layout.member_path_problem(path)
        if problem is not None:
            raise UsageError(f"member path {path!r} refused: {problem}")
        if path in (layout.MANIFEST, layout.MANIFEST_SIGNATURE):
            raise UsageError(f"{path} is written by the bundle writer itself")
        if path in out:
            raise UsageError(f"member {path!r} given twice")
        if not isinstance(source, bytes | Path):
            raise UsageError(f"member {path!r}: source must be bytes or a Path")
        out[path] = source
    return sorted(out.items())


def _write_member(
    out: zstandard.ZstdCompressionWriter,
    *,
    path: str,
    source: MemberSource,
    expected: Member | None,
    size: int,
    mtime: int,
) -> None:
    out.write(tarformat.encode_header(path, size, mtime))
    digest = hashlib.sha256()
    written = 0
    for chunk in _chunks(source, path):
        written += len(chunk)
        if written > size:
            break
        digest.update(chunk)
        out.write(chunk)
    if written != size or (expected is not None and digest.hexdigest() != expected.sha256):
        # The tar header and the signed manifest already promise size and digest.
        raise InputError(f"source of member {path!r} changed while the bundle was written")
    pad = tarformat.round_up(size, tarformat.BLOCK) - size
    out.write(b"\x00" * pad)


READER_LIMITS = Limits()
"""What a default reader accepts: a bundle over it is refused before it is written."""


def _check_readable(manifest_bytes: bytes, listed: tuple[Member, ...], tar_size: int) -> None:
    """Refuse to write a bundle the default reader would refuse (``docs/format.md``).

    Raises:
        UsageError: naming the limit, so the export can be split.
    """
    limits = READER_LIMITS
    problems = []
    if len(listed) > limits.max_members:
        problems.append(f"{len(listed)} members, more than {limits.max_members}")
    if len(manifest_bytes) > limits.max_manifest_size:
        problems.append(
            f"a {len(manifest_bytes)}-byte manifest, more than {limits.max_manifest_size}"
        )
    if tar_size > limits.max_total_size:
        problems.append(f"{tar_size} bytes of tar, more than {limits.max_total_size}")
    big = next((m for m in listed if m.size > limits.max_member_size), None)
    if big is not None:
        problems.append(
            f"member {big.path} of {big.size} bytes, more than {limits.max_member_size}"
        )
    if problems:
        raise UsageError(
            "the bundle would hold " + "; ".join(problems) + ": a reader refuses it "
            "(bundle limits, docs/format.md); export fewer images per bundle"
        )


def write_bundle(
    output: Path,
    *,
    tool_version: str,
    created: datetime,
    expires: datetime,
    sequence: int,
    images: Sequence[ImageEntry],
    members: Iterable[tuple[str, MemberSource]],
    private_key: ExporterPrivateKey,
    source_date_epoch: int | None = None,
    flags: Sequence[str] = (),
) -> WrittenBundle:
    """Write a signed bundle to ``output``, atomically: format version 1, or 2 when a
    member is under ``tuf/``.

    Args:
        output: the bundle file (by convention ``*.dhi.tar.zst``). Replaced on success;
            on any failure (KeyboardInterrupt included) left exactly as it was.
        tool_version, created, expires, sequence, images, flags: manifest fields (see
            :class:`BundleManifest`); ``sequence`` from
            :func:`sequence_state.next_sequence`.
        members: ``(path, source)`` pairs, in any order; paths must pass
            :func:`layout.is_valid_member_path`. Path sources are read twice.
        private_key: the exporter key that signs the manifest.
        source_date_epoch: every tar mtime; default ``created`` (whole seconds).

    Raises:
        UsageError: a bad or duplicate member path, or a bad epoch.
        InputError: a source is unreadable or changed between the two passes; the
            output cannot be written.
        BundleFormatError: a manifest field is invalid.
    """
    if source_date_epoch is not None and (
        isinstance(source_date_epoch, bool)
        or not isinstance(source_date_epoch, int)
        or not 0 <= source_date_epoch <= _MAX_EPOCH
    ):
        raise UsageError(f"source_date_epoch {source_date_epoch!r} is out of range")
    entries = _collect(members)
    # Pass 1: sizes and digests for the manifest.
    listed = tuple(Member(path, *_measure(src, path)) for path, src in entries)
    manifest = BundleManifest(
        format_version=layout.format_version_for(m.path for m in listed),
        tool_version=tool_version,
        created=created,
        expires=expires,
        sequence=sequence,
        exporter_key_id=public_key_of(private_key).key_id,
        images=tuple(images),
        members=listed,
        flags=tuple(flags),
    )
    manifest_bytes = manifest.to_json()
    signature = sign_manifest(manifest_bytes, private_key)
    mtime = (
        source_date_epoch if source_date_epoch is not None else int(manifest.created.timestamp())
    )
    if not 0 <= mtime <= _MAX_EPOCH:
        raise UsageError(f"created time {manifest.created} cannot be a tar mtime")
    plan: list[tuple[str, MemberSource, Member | None, int]] = [
        (layout.MANIFEST, manifest_bytes, None, len(manifest_bytes)),
        (layout.MANIFEST_SIGNATURE, signature, None, len(signature)),
    ]
    plan += [(m.path, src, m, m.size) for m, (_, src) in zip(listed, entries, strict=True)]
    tar_size = tarformat.stream_size([size for _, _, _, size in plan])
    _check_readable(manifest_bytes, listed, tar_size)
    # Pass 2, into a temp file in the target directory so os.replace is atomic.
    try:
        fd, tmp_name = tempfile.mkstemp(
            dir=output.parent, prefix=f".{output.name}.", suffix=".partial"
        )
    except OSError as e:
        raise InputError(f"cannot create a file next to {output}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            sink = _HashingWriter(fh)
            # threads=0: libzstd's multi-threaded mode may split jobs differently.
            compressor = zstandard.ZstdCompressor(
                level=layout.ZSTD_LEVEL,
                write_checksum=True,
                write_content_size=True,
                write_dict_id=False,
                threads=0,
            )
            # Not a ``with`` block: on an error its __exit__ would try to end the frame
            # and raise "Src size is incorrect" over the real error.
            out = compressor.stream_writer(cast("IO[bytes]", sink), size=tar_size, closefd=False)
            for path, src, expected, size in plan:
                _write_member(out, path=path, source=src, expected=expected, size=size, mtime=mtime)
            out.write(b"\x00" * (tar_size - _written_before_end(plan)))
            # Ends the frame: libzstd checks the pledged content size and adds the checksum.
            out.flush(zstandard.FLUSH_FRAME)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)  # mkstemp made it 0600; a bundle is not secret
            os.fsync(fh.fileno())
        tmp.replace(output)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise InputError(f"cannot write {output}: {e.strerror or e}") from e
        if isinstance(e, zstandard.ZstdError):
            raise InputError(f"cannot compress {output}: {e}") from e
        raise
    _fsync_dir(output.parent)
    return WrittenBundle(path=output, size=sink.size, sha256=sink.digest.hexdigest())


def _written_before_end(plan: Sequence[tuple[str, MemberSource, Member | None, int]]) -> int:
    return sum(tarformat.BLOCK + tarformat.round_up(size, tarformat.BLOCK) for *_, size in plan)


def _fsync_dir(directory: Path) -> None:
    # Make the rename durable; best effort (some file systems refuse directory fsync).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
