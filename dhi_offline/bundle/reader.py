"""Read a bundle on the air-gapped host: streaming, and safe against hostile archives.

The archive is untrusted until its manifest signature verifies, and each member is
untrusted until its SHA-256 matches the signed manifest. :func:`open_bundle` reads the
file once, front to back, and performs steps 1-3 of the bundle plan (``docs/trust.md``):
1 the archive's format and limits, 2 the manifest signature, 3 the members. Step 1 runs
throughout, so the checks below are labelled by plan step and, within it, by letter, in
the order they run (the same order as ``docs/format.md``, section "Reading"). Each raises
a typed error whose ``step`` (a :class:`~dhi_offline.steps.Step`, printed first on the
one-line message) is the name the report gives that step when it passes:
``BundleFormatError`` ``1 bundle format``, ``BundleLimitError`` ``1 bundle limits``,
``ManifestSignatureError`` ``2 bundle signature``, ``MemberIntegrityError`` ``3 bundle
members``:

  (1a) the file opens and starts with a zstd frame header that declares its content
       size, a content checksum and a window within limits; the declared size and the
       ratio to the file size are within limits (a zstd bomb is refused before
       anything is inflated)                          -> InputError (exit 2) /
                                                         ``1 bundle format`` / ``1 bundle limits``
  (1b) while inflating, the inflated size and the running compression ratio stay
       within limits, and the frame ends exactly at the end of the file
                                                      -> ``1 bundle limits`` / ``1 bundle format``
  (1c) every tar header is a canonical USTAR header of a regular file with a valid
       name; links, devices, directories, pax/GNU headers are refused before any data
       is read                                        -> ``1 bundle format``
  (1d) the first two members are manifest.json and manifest.sig.json, each within
       max_manifest_size                              -> ``1 bundle format`` / ``1 bundle limits``
  (2a) the signature verifies with a TRUSTED exporter key (looked up by keyid, never
       taken from the archive), BEFORE anything is parsed or extracted
                                                      -> ``2 bundle signature``
  (1e) the manifest parses strictly                  -> ``1 bundle format``
  (2b) the manifest names the key that signed it     -> ``2 bundle signature``
  (1f) its member count and sizes are within limits  -> ``1 bundle limits``
  (3a) every further member is listed, appears once, with the listed size (checked
       from the header, before its data), and its SHA-256 matches while it streams
       into ``dest``                                  -> ``3 bundle members``
       (out of path order, over max_member_size       -> ``1 bundle format`` / ``1 bundle limits``)
  (1g) the archive ends with zero blocks only        -> ``1 bundle format``
  (3b) every listed member was seen                  -> ``3 bundle members``

With a ``memory_budget``, members of at most ``memory_member_max`` bytes are kept in
memory (hashed and checked the same way) while the budget lasts, instead of being
written; with ``pack=True`` the small members that no longer fit the budget are
appended to one file, ``dest/.members`` (a name no member can have: a member path's
segments never start with a dot), instead of a file each; :meth:`OpenedBundle.read_bytes`
reads a member from any of the three places. Files are
created only under ``dest``, with ``O_EXCL | O_NOFOLLOW`` relative to
directory descriptors opened without following symlinks, so nothing is written outside
``dest`` whatever the archive or a concurrent process does. On ANY failure ``dest`` may
hold partial output: the caller owns ``dest`` and must delete it. POSIX only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Final, cast

import zstandard

from dhi_offline.bundle import layout, tarformat
from dhi_offline.bundle.manifest import BundleManifest
from dhi_offline.bundle.signing import TrustedExporters, verify_manifest_signature
from dhi_offline.bundle.zstdframe import FrameWalker
from dhi_offline.errors import (
    BundleFormatError,
    BundleLimitError,
    InputError,
    ManifestSignatureError,
    MemberIntegrityError,
    UsageError,
)
from dhi_offline.trust.keys import PublicKey

_MiB: Final = 1024 * 1024
_GiB: Final = 1024 * _MiB
_READ_SIZE: Final = 64 * 1024
_CHUNK: Final = 1 * _MiB
RATIO_FLOOR: Final = 64 * 1024
"""The ratio limit applies to ``max(compressed bytes, RATIO_FLOOR)``: a tiny bundle is
mostly tar padding, which compresses far better than any real content."""

_MAX_FRAME_HEADER: Final = 18  # magic 4 + descriptor 1 + window 1 + dict id 4 + size 8


@dataclass(frozen=True)
class Limits:
    """What a reader accepts from an untrusted bundle. Every field must be positive."""

    max_members: int = 400_000
    """Members the manifest may list (the manifest and its signature not counted). A
    bundle lists about 5.5 members per attestation: 40,000 attestations (2,000 images x
    2 platforms x 10) take ~218,000."""
    max_member_size: int = 1 * _GiB
    """Largest single listed member, in bytes."""
    max_total_size: int = 4 * _GiB
    """Largest inflated tar stream (headers, data and padding), in bytes."""
    max_ratio: int = 200
    """Largest inflated/compressed size ratio; real bundles measure about 10."""
    max_manifest_size: int = 64 * _MiB
    """Largest ``manifest.json`` and, separately, ``manifest.sig.json``. Read whole, and
    its signature checked before it is parsed, so an untrusted bundle costs at most this
    much memory here; a signed manifest takes ~975 bytes per attestation (40,000: 39 MB)."""

    def __post_init__(self) -> None:
        for name in (
            "max_members",
            "max_member_size",
            "max_total_size",
            "max_ratio",
            "max_manifest_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UsageError(f"limit {name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle whose signature and every member verified, extracted under ``root``."""

    manifest: BundleManifest
    manifest_bytes: bytes
    """The exact signed bytes of ``manifest.json``."""
    signer: PublicKey
    """The trusted exporter key that signed the manifest."""
    root: Path
    """The ``dest`` directory: ``root / member.path`` holds each member not in ``memory``."""
    memory: Mapping[str, bytes] = field(default_factory=dict)
    """Member path -> bytes, for the members kept in memory (``memory_budget``)."""
    packed: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Member path -> (offset, size) in ``root / PACK``, for the members packed there."""

    def has(self, path: str) -> bool:
        """Whether the signed manifest lists ``path`` (so it was read and checked)."""
        return self.manifest.member(path) is not None

    def read_bytes(self, path: str) -> bytes:
        """The bytes of the listed member ``path``, from memory or from ``root``.

        Raises:
            FileNotFoundError: ``path`` is not a member of the bundle.
        """
        data = self.memory.get(path)
        if data is not None:
            return data
        data = self.packed_bytes(path)
        if data is not None:
            return data
        if not self.has(path):
            raise FileNotFoundError(path)
        return (self.root / path).read_bytes()

    def packed_bytes(self, path: str) -> bytes | None:
        """The bytes of ``path`` if it was packed (``pack=True``), else None."""
        where = self.packed.get(path)
        if where is None:
            return None
        offset, size = where
        fd = os.open(self.root / PACK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            data = os.pread(fd, size, offset)
        finally:
            os.close(fd)
        if len(data) != size:
            raise InputError(f"{self.root / PACK} is shorter than what was written to it")
        return data

    def unfiled(self, prefix: str) -> Mapping[str, bytes]:
        """The members under ``prefix`` that are not files of their own (kept in memory
        or packed), keyed by the rest of their path; values are read when looked up."""
        return _Unfiled(self, prefix)


class _Unfiled(Mapping[str, bytes]):
    """:meth:`OpenedBundle.unfiled`: a read-only view, nothing copied up front."""

    def __init__(self, opened: OpenedBundle, prefix: str) -> None:
        self._opened = opened
        self._prefix = prefix

    def __getitem__(self, key: str) -> bytes:
        path = self._prefix + key
        data = self._opened.memory.get(path)
        if data is None:
            data = self._opened.packed_bytes(path)
        if data is None:
            raise KeyError(key)
        return data

    def _paths(self) -> Iterator[str]:
        for path in (*self._opened.memory, *self._opened.packed):
            if path.startswith(self._prefix):
                yield path.removeprefix(self._prefix)

    def __iter__(self) -> Iterator[str]:
        return self._paths()

    def __len__(self) -> int:
        return sum(1 for _ in self._paths())


class _CountingSource:
    """The compressed file, as the decompressor reads it: counted and frame-checked."""

    def __init__(self, fh: BinaryIO, walker: FrameWalker) -> None:
        self._fh = fh
        self.walker = walker
        self.error: BundleFormatError | None = None

    @property
    def count(self) -> int:
        return self.walker.consumed

    def read(self, size: int = -1) -> bytes:
        if self.walker.done:
            # The frame is complete: the decompressor gets end-of-input, and any byte
            # still in the file is trailing data.
            if self._fh.read(1):
                self.walker.trailing = True
            return b""
        data = self._fh.read(size)
        try:
            used = self.walker.feed(data)
        except BundleFormatError as e:
            # Raising through the C decompressor is not guaranteed to keep the error
            # intact; hand it over and let the Python side raise it.
            self.error = e
            return b""
        return data[:used]

    def rest_is_empty(self) -> bool:
        return not self._fh.read(1)


class _Inflater:
    """Bounded zstd decompression of one frame: every limit is checked per read."""

    def __init__(
        self, fh: BinaryIO, *, file_size: int, limits: Limits, require_content_size: bool
    ) -> None:
        self._limits = limits
        head = fh.read(_MAX_FRAME_HEADER)
        if len(head) < 4 or head[:4] != zstandard.FRAME_HEADER:
            raise InputError("not a zstd-compressed evidence bundle (no zstd frame header)")
        try:
            header_size = zstandard.frame_header_size(head)
            params = zstandard.get_frame_parameters(head)
        except zstandard.ZstdError as e:
            raise InputError(f"unreadable zstd frame header (truncated file?): {e}") from e
        if params.dict_id != 0:
            raise BundleFormatError("the zstd frame needs a dictionary; format v1 uses none")
        if not params.has_checksum:
            raise BundleFormatError("the zstd frame carries no content checksum")
        if params.window_size > layout.ZSTD_MAX_WINDOW:
            raise BundleLimitError(
                f"zstd window of {params.window_size} bytes exceeds {layout.ZSTD_MAX_WINDOW}"
            )
        declared = params.content_size
        known = declared != zstandard.CONTENTSIZE_UNKNOWN
        if require_content_size and not known:
            raise BundleFormatError("the zstd frame does not declare its content size")
        self._cap = limits.max_total_size
        if known:
            if declared > limits.max_total_size:
                raise BundleLimitError(
                    f"the bundle inflates to {declared} bytes, over the limit of "
                    f"{limits.max_total_size}"
                )
            if declared > limits.max_ratio * max(file_size, RATIO_FLOOR):
                raise BundleLimitError(
                    f"the bundle inflates {declared // max(file_size, 1)}-fold, over the "
                    f"ratio limit of {limits.max_ratio} (zstd bomb?)"
                )
            self._cap = declared
        self._declared = declared if known else None
        fh.seek(0)
        self._source = _CountingSource(
            fh, FrameWalker(header_size=header_size, has_checksum=params.has_checksum)
        )
        dctx = zstandard.ZstdDecompressor(max_window_size=layout.ZSTD_MAX_WINDOW)
        self._reader = dctx.stream_reader(
            cast("IO[bytes]", self._source), read_size=_READ_SIZE, read_across_frames=False
        )
        self.produced = 0
        self._ended = False

    def read(self, size: int) -> bytes:
        """Up to ``size`` inflated bytes; ``b""`` only at a verified end of frame."""
        if self._ended:
            return b""
        try:
            data = self._reader.read(size)
        except zstandard.ZstdError as e:
            raise BundleFormatError(f"compressed stream is corrupt: {e}") from e
        if self._source.error is not None:
            raise self._source.error
        self.produced += len(data)
        if self.produced > self._cap:
            raise BundleLimitError(
                f"the bundle inflates past {self._cap} bytes "
                f"({'its declared size' if self._declared is not None else 'the size limit'})"
            )
        if self.produced > self._limits.max_ratio * max(self._source.count, RATIO_FLOOR):
            raise BundleLimitError(
                f"the bundle inflates over {self._limits.max_ratio}-fold "
                f"({self.produced} bytes from {self._source.count}; zstd bomb?)"
            )
        if not data:
            self._check_end()
        return data

    def _check_end(self) -> None:
        self._ended = True
        walker = self._source.walker
        if not walker.done:
            raise BundleFormatError("compressed stream ends early (truncated file?)")
        if walker.trailing or not self._source.rest_is_empty():
            raise BundleFormatError("bytes follow the zstd frame (one frame only)")
        if self._declared is not None and self.produced != self._declared:
            raise BundleFormatError(
                f"inflated {self.produced} bytes, the frame declares {self._declared}"
            )

    def read_exact(self, size: int, what: str) -> bytes:
        """Exactly ``size`` bytes, or a BundleFormatError naming ``what``."""
        parts: list[bytes] = []
        remaining = size
        while remaining:
            data = self.read(min(remaining, _CHUNK))
            if not data:
                raise BundleFormatError(f"tar stream ends inside {what} (truncated)")
            parts.append(data)
            remaining -= len(data)
        return b"".join(parts)


class _TarStream:
    """Strict sequential USTAR parsing over the inflated stream."""

    def __init__(self, inflater: _Inflater) -> None:
        self._in = inflater
        self.offset = 0

    def next_header(
        self, valid_path: Callable[[str], bool] | None = None
    ) -> tarformat.Header | None:
        """The next member header, or None after a verified end of archive."""
        block = self._in.read_exact(tarformat.BLOCK, f"the tar header at offset {self.offset}")
        at = self.offset
        self.offset += tarformat.BLOCK
        if tarformat.is_zero_block(block):
            self._check_end()
            return None
        return tarformat.parse_header(block, at, valid_path=valid_path)

    def data(self, header: tarformat.Header) -> Iterator[bytes]:
        """The member's bytes in chunks, then its padding (which must be zero)."""
        remaining = header.size
        while remaining:
            chunk = self._in.read_exact(min(remaining, _CHUNK), f"member {header.path!r}")
            remaining -= len(chunk)
            yield chunk
        pad = tarformat.round_up(header.size, tarformat.BLOCK) - header.size
        if pad and not tarformat.is_zero_block(self._in.read_exact(pad, "tar padding")):
            raise BundleFormatError(f"member {header.path!r}: non-zero tar padding")
        self.offset += header.size + pad

    def read_all(self, header: tarformat.Header) -> bytes:
        """The whole member in memory (callers bound its size first)."""
        return b"".join(self.data(header))

    def _check_end(self) -> None:
        # (1g) Two zero blocks, then only zeros up to a record boundary, then the frame
        # ends: nothing unsigned can hide after the archive.
        second = self._in.read_exact(tarformat.BLOCK, "the tar end-of-archive marker")
        self.offset += tarformat.BLOCK
        if not tarformat.is_zero_block(second):
            raise BundleFormatError(f"tar end-of-archive marker at {self.offset} is not zeros")
        while True:
            chunk = self._in.read(_CHUNK)
            if not chunk:
                break
            self.offset += len(chunk)
            if not tarformat.is_zero_block(chunk):
                raise BundleFormatError("data after the tar end-of-archive marker")
        if self.offset % layout.TAR_RECORD:
            raise BundleFormatError(
                f"tar stream of {self.offset} bytes is not padded to {layout.TAR_RECORD}"
            )


class _Extractor:
    """Creates member files under one directory descriptor, never following links."""

    _DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    _FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

    def __init__(self, dest: Path) -> None:
        try:
            st = dest.lstat()
        except FileNotFoundError:
            raise UsageError(f"destination {dest} does not exist") from None
        if not stat.S_ISDIR(st.st_mode):
            raise UsageError(f"destination {dest} is not a directory (or is a symlink)")
        if st.st_uid != os.geteuid():
            raise UsageError(f"destination {dest} is not owned by the current user")
        try:
            fd = os.open(dest, self._DIR_FLAGS)
        except OSError as e:
            raise UsageError(f"cannot open the destination {dest}: {e.strerror or e}") from e
        fst = os.fstat(fd)
        with os.scandir(fd) as entries:
            empty = next(entries, None) is None
        if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino) or not empty:
            os.close(fd)
            raise UsageError(f"destination {dest} must be an empty directory")
        self._dirs: dict[str, int] = {"": fd}

    def _dir(self, rel: str) -> int:
        fd = self._dirs.get(rel)
        if fd is not None:
            return fd
        parent, _, name = rel.rpartition("/")
        parent_fd = self._dir(parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        fd = os.open(name, self._DIR_FLAGS, dir_fd=parent_fd)
        self._dirs[rel] = fd
        return fd

    def create(self, path: str) -> BinaryIO:
        """A new file ``path`` under the destination, open for writing."""
        parent, _, name = path.rpartition("/")
        try:
            fd = os.open(name, self._FILE_FLAGS, 0o644, dir_fd=self._dir(parent))
        except FileExistsError:
            raise MemberIntegrityError(f"member {path!r} appears twice") from None
        except OSError as e:
            raise InputError(f"cannot create {path} under the destination: {e}") from e
        return os.fdopen(fd, "wb")

    def write(self, path: str, chunks: Iterator[bytes]) -> tuple[int, str]:
        """Stream ``chunks`` into a new file ``path``; return its size and SHA-256."""
        out_file = self.create(path)
        digest = hashlib.sha256()
        size = 0
        with out_file as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                try:
                    out.write(chunk)
                except OSError as e:
                    raise InputError(f"cannot write {path} under the destination: {e}") from e
        return size, digest.hexdigest()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()


@contextlib.contextmanager
def _inflate(path: Path, limits: Limits, *, require_content_size: bool) -> Iterator[_Inflater]:
    # (1a) Open the file; the frame header checks run in _Inflater.__init__.
    try:
        # O_NONBLOCK: a FIFO must not hang the open; it is refused as not a regular file.
        fh = os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb")
    except OSError as e:
        raise InputError(f"cannot open the bundle {path}: {e.strerror or e}") from e
    with fh:
        try:
            st = os.fstat(fh.fileno())
        except OSError as e:
            raise InputError(f"cannot read the bundle {path}: {e.strerror or e}") from e
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path} is not a regular file")
        try:
            yield _Inflater(
                fh,
                file_size=st.st_size,
                limits=limits,
                require_content_size=require_content_size,
            )
        except OSError as e:
            raise InputError(f"cannot read the bundle {path}: {e.strerror or e}") from e


def _read_fixed_member(tar: _TarStream, expected: str, limits: Limits, position: str) -> bytes:
    header = tar.next_header()
    if header is None:
        raise BundleFormatError(f"the tar stream ends before its {position} member {expected}")
    if header.path != expected:
        raise BundleFormatError(f"the {position} member must be {expected}, found {header.path!r}")
    if header.size > limits.max_manifest_size:
        raise BundleLimitError(
            f"{expected} declares {header.size} bytes, over the limit of {limits.max_manifest_size}"
        )
    return tar.read_all(header)


def _check_manifest_limits(manifest: BundleManifest, limits: Limits) -> None:
    if len(manifest.members) > limits.max_members:
        raise BundleLimitError(
            f"the manifest lists {len(manifest.members)} members, over the limit of "
            f"{limits.max_members}"
        )
    for m in manifest.members:
        if m.size > limits.max_member_size:
            raise BundleLimitError(
                f"member {m.path!r} is {m.size} bytes, over the limit of {limits.max_member_size}"
            )
    if manifest.total_size > limits.max_total_size:
        raise BundleLimitError(
            f"the members total {manifest.total_size} bytes, over the limit of "
            f"{limits.max_total_size}"
        )


def open_bundle(
    path: Path,
    *,
    trusted_exporters: TrustedExporters,
    dest: Path,
    limits: Limits | None = None,
    memory_budget: int = 0,
    memory_member_max: int = _MiB,
    pack: bool = False,
    on_extracted: Callable[[str, int], None] | None = None,
    on_signed: Callable[[BundleManifest, PublicKey], None] | None = None,
) -> OpenedBundle:
    """Verify a bundle and extract it into ``dest``; see the module docstring for steps.

    Args:
        path: the ``.dhi.tar.zst`` file.
        trusted_exporters: key id -> trusted exporter public key, or None. The only
            source of the verification key.
        dest: an existing, empty directory owned by the caller. On failure it may hold
            partial output, which the caller must delete.
        limits: reader limits (defaults: :class:`Limits`).
        memory_budget: total bytes of members that may be kept in memory instead of
            written under ``dest`` (0: every member is written). Small members are
            most of a bundle's count and cost a file creation each.
        memory_member_max: only members of at most this size are kept in memory.
        pack: members of at most ``memory_member_max`` bytes that the budget no longer
            takes are appended to one file (``dest/.members``) instead of a file each.
        on_extracted: called with (path, size) after a member is written under ``dest``
            and its SHA-256 matched the manifest (never for members kept in memory).
        on_signed: called with the manifest and its signer once the manifest signature
            verified, before any other member is read (a later refusal can still
            report who signed the bundle).

    Raises:
        UsageError: ``dest`` is not an empty directory owned by the caller.
        InputError: the file cannot be read or is not zstd; ``dest`` cannot be written.
        BundleFormatError: a structural problem, or one of its subclasses:
            ManifestSignatureError, MemberIntegrityError, BundleLimitError.
    """
    limits = limits or Limits()
    extractor = _Extractor(dest)
    try:
        with _inflate(path, limits, require_content_size=True) as inflater:
            tar = _TarStream(inflater)
            # (1d) The manifest and its signature come first, size-capped, in memory.
            manifest_bytes = _read_fixed_member(tar, layout.MANIFEST, limits, "first")
            sig_bytes = _read_fixed_member(tar, layout.MANIFEST_SIGNATURE, limits, "second")
            # (2a) Verify before parsing: the strict parser only ever sees signed bytes.
            signer = verify_manifest_signature(sig_bytes, manifest_bytes, trusted_exporters)
            # (1e), (2b), (1f)
            manifest = BundleManifest.from_json(manifest_bytes)
            if manifest.exporter_key_id != signer.key_id:
                raise ManifestSignatureError(
                    f"the manifest names exporter key {manifest.exporter_key_id} but was "
                    f"signed by {signer.key_id}"
                )
            if on_signed is not None:
                on_signed(manifest, signer)
            _check_manifest_limits(manifest, limits)
            extractor.write(layout.MANIFEST, iter((manifest_bytes,)))
            extractor.write(layout.MANIFEST_SIGNATURE, iter((sig_bytes,)))
            # (3a), (1g), (3b)
            memory = _Memory(memory_budget, memory_member_max)
            packed = _Pack(extractor, memory_member_max) if pack else None
            try:
                _extract_members(
                    tar, manifest, extractor, limits, memory, pack=packed, on_extracted=on_extracted
                )
            except BaseException:
                if packed is not None:
                    with contextlib.suppress(InputError):  # the first error is the one to show
                        packed.close()
                raise
            if packed is not None:
                packed.close()  # a write the buffer deferred (a full disk) fails here
            return OpenedBundle(
                manifest=manifest,
                manifest_bytes=manifest_bytes,
                signer=signer,
                root=dest,
                memory=memory.members,
                packed=packed.members if packed is not None else {},
            )
    finally:
        extractor.close()


class _Memory:
    """Members kept in memory while the budget lasts."""

    def __init__(self, budget: int, member_max: int) -> None:
        self.left = budget
        self.member_max = member_max
        self.members: dict[str, bytes] = {}

    def takes(self, size: int) -> bool:
        return size <= self.member_max and size <= self.left

    def write(self, path: str, data: bytes) -> tuple[int, str]:
        self.left -= len(data)
        self.members[path] = data
        return len(data), hashlib.sha256(data).hexdigest()


PACK = ".members"
"""The file under ``dest`` that packed members are appended to (``pack=True``)."""


class _Pack:
    """Small members past the memory budget, appended to one file: a file each cost
    ~110 µs of kernel time on an ext4 volume (docs/performance.md, "Scale")."""

    def __init__(self, extractor: _Extractor, member_max: int) -> None:
        self._extractor = extractor
        self.member_max = member_max
        self.members: dict[str, tuple[int, int]] = {}
        self._out: BinaryIO | None = None
        self._offset = 0

    def takes(self, size: int) -> bool:
        return size <= self.member_max

    def write(self, path: str, data: bytes) -> tuple[int, str]:
        if self._out is None:
            self._out = self._extractor.create(PACK)
        try:
            self._out.write(data)
        except OSError as e:
            raise InputError(f"cannot write {PACK} under the destination: {e}") from e
        self.members[path] = (self._offset, len(data))
        self._offset += len(data)
        return len(data), hashlib.sha256(data).hexdigest()

    def close(self) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except OSError as e:
                raise InputError(f"cannot write {PACK} under the destination: {e}") from e
            self._out = None


def _extract_members(
    tar: _TarStream,
    manifest: BundleManifest,
    extractor: _Extractor,
    limits: Limits,
    memory: _Memory,
    *,
    pack: _Pack | None,
    on_extracted: Callable[[str, int], None] | None,
) -> None:
    listed = {m.path: m for m in manifest.members}
    seen: set[str] = set()
    previous = layout.MANIFEST_SIGNATURE
    # A path the signed manifest lists passed the same path rules when it was parsed.
    while (header := tar.next_header(listed.__contains__)) is not None:
        path = header.path
        if path in seen or path in (layout.MANIFEST, layout.MANIFEST_SIGNATURE):
            raise MemberIntegrityError(f"member {path!r} appears twice")
        member = listed.get(path)
        if member is None:
            raise MemberIntegrityError(f"member {path!r} is not listed in the signed manifest")
        if seen and path < previous:
            raise BundleFormatError(f"member {path!r} is out of order (after {previous!r})")
        if header.size > limits.max_member_size:
            raise BundleLimitError(
                f"member {path!r} declares {header.size} bytes, over the limit of "
                f"{limits.max_member_size}"
            )
        if header.size != member.size:
            # Checked from the header, before a single data byte is read.
            raise MemberIntegrityError(
                f"member {path!r} is {header.size} bytes, the manifest says {member.size}"
            )
        seen.add(path)
        previous = path
        filed = False
        if memory.takes(header.size):
            size, sha256 = memory.write(path, tar.read_all(header))
        elif pack is not None and pack.takes(header.size):
            size, sha256 = pack.write(path, tar.read_all(header))
        else:
            size, sha256 = extractor.write(path, tar.data(header))
            filed = True
        if size != member.size or sha256 != member.sha256:
            raise MemberIntegrityError(
                f"member {path!r} has sha256 {sha256}, the manifest says {member.sha256}"
            )
        if on_extracted is not None and filed:
            on_extracted(path, size)
    # (1g) The end of the archive was verified by next_header(); now (3b) completeness.
    missing = sorted(listed.keys() - seen)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise MemberIntegrityError(f"member {missing[0]!r}{more} listed but not in the bundle")


def inspect_bundle(path: Path, *, limits: Limits | None = None) -> BundleManifest:
    """Read ONLY the manifest, WITHOUT verifying its signature or any member.

    For ``dhi-offline inspect``: whatever it shows must be labelled unverified. Nothing
    is extracted and only the first member is inflated.

    Raises:
        InputError: the file cannot be read or is not zstd.
        BundleFormatError: the manifest is missing, oversized or malformed.
    """
    limits = limits or Limits()
    with _inflate(path, limits, require_content_size=True) as inflater:
        tar = _TarStream(inflater)
        return BundleManifest.from_json(_read_fixed_member(tar, layout.MANIFEST, limits, "first"))
