"""The one tar header encoding format v1 uses: canonical POSIX USTAR, regular files only.

The writer emits exactly :func:`encode_header`; the reader parses a header, then
re-encodes what it understood and requires the same 512 bytes back. So a reader accepts
one byte representation per member: no pax or GNU extension headers (which could
rename a member behind the reader's back), no links, devices or directories, no owner
names, fixed mode and owner, and zeroed padding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dhi_offline.bundle import layout
from dhi_offline.errors import BundleFormatError

BLOCK = layout.TAR_BLOCK
_NAME_LEN = 100
_PREFIX_LEN = 155
_MAX_OCTAL_11 = 8**11 - 1  # 11 octal digits: sizes and times below 8 GiB / year 2242
_MAGIC = b"ustar\x0000"  # POSIX magic + version; GNU tar's "ustar  \0" is refused

_TYPE_NAMES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"5": "a directory",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"x": "a pax extended header (it could rename or resize the next member)",
    b"g": "a pax global header (it could rename or resize later members)",
    b"L": "a GNU long-name header (it could rename the next member)",
    b"K": "a GNU long-link header",
    b"S": "a GNU sparse file",
    b"\x00": "an old-style regular file (typeflag NUL)",
}


def round_up(n: int, unit: int) -> int:
    """``n`` rounded up to a multiple of ``unit``."""
    return -(-n // unit) * unit


def stream_size(member_sizes: list[int]) -> int:
    """Exact length of the tar stream holding members of these sizes (all of them,
    the manifest and signature included): headers, data, padding, the two end blocks,
    and zeros up to a multiple of :data:`layout.TAR_RECORD`."""
    n = sum(BLOCK + round_up(s, BLOCK) for s in member_sizes) + 2 * BLOCK
    return round_up(n, layout.TAR_RECORD)


def _octal(value: int, width: int) -> bytes:
    # tarfile's USTAR encoding: zero-padded octal digits, then one NUL.
    out = b"%0*o" % (width - 1, value) + b"\x00"
    if len(out) != width:
        raise ValueError(f"{value} does not fit a {width}-byte octal field")
    return out


def _split(path: str) -> tuple[str, str]:
    # The shortest prefix that fits, as Python's tarfile and GNU tar choose.
    if len(path) <= _NAME_LEN:
        return "", path
    for i, ch in enumerate(path):
        if ch == "/" and i <= _PREFIX_LEN and len(path) - i - 1 <= _NAME_LEN:
            return path[:i], path[i + 1 :]
    raise ValueError(f"{path!r} does not fit a USTAR header")


def encode_header(path: str, size: int, mtime: int) -> bytes:
    """The canonical 512-byte USTAR header of a regular-file member.

    Mode 0644, uid/gid 0, empty user/group names, device numbers 0.

    Raises:
        ValueError: the path, size or time does not fit (callers validate first).
    """
    if not 0 <= size <= _MAX_OCTAL_11 or not 0 <= mtime <= _MAX_OCTAL_11:
        raise ValueError("size or mtime out of USTAR range")
    prefix, name = _split(path)
    h = bytearray(BLOCK)
    h[0 : len(name)] = name.encode("ascii")
    h[100:108] = _octal(layout.MEMBER_MODE, 8)
    h[108:116] = _octal(0, 8)  # uid
    h[116:124] = _octal(0, 8)  # gid
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[148:156] = b" " * 8  # checksum is computed with its own field as spaces
    h[156:157] = b"0"
    h[257:265] = _MAGIC
    h[329:337] = _octal(0, 8)  # devmajor
    h[337:345] = _octal(0, 8)  # devminor
    h[345 : 345 + len(prefix)] = prefix.encode("ascii")
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


@dataclass(frozen=True)
class Header:
    """What a member header says, once it passed :func:`parse_header`."""

    path: str
    size: int
    mtime: int


def _field_text(raw: bytes, what: str, offset: int) -> str:
    text, _, rest = raw.partition(b"\x00")
    if rest.strip(b"\x00"):
        raise BundleFormatError(f"tar header at offset {offset}: bytes after the {what} NUL")
    try:
        return text.decode("ascii")
    except UnicodeDecodeError:
        raise BundleFormatError(
            f"tar header at offset {offset}: {what} is not ASCII ({text!r})"
        ) from None


def _field_octal(raw: bytes, what: str, name: str) -> int:
    digits = raw.rstrip(b"\x00 ")
    if not digits or digits.strip(b"01234567"):
        # Includes GNU base-256 numbers (first byte 0x80/0xff): format v1 never needs them.
        raise BundleFormatError(f"member {name!r}: tar {what} field {raw!r} is not octal")
    return int(digits, 8)


def is_zero_block(block: bytes) -> bool:
    """True for an all-zero block (the tar end-of-archive marker)."""
    return not block.strip(b"\x00")


_FIXED_FIELDS = (
    (100, 124, _octal(layout.MEMBER_MODE, 8) + _octal(0, 8) * 2),  # mode, uid, gid
    (156, 265, b"0" + bytes(100) + _MAGIC),  # type, link name, magic and version
    (265, 345, bytes(64) + _octal(0, 8) * 2),  # user/group names, device numbers
    (500, 512, bytes(12)),
)


def _is_canonical(block: bytes, path: str, size: int, mtime: int, checksum: int) -> bool:
    """Whether ``block`` is :func:`encode_header` of these values, field by field (the
    same answer without building a header: this runs once per member). ``checksum`` is
    the header's sum with its checksum field as spaces, computed by the caller."""
    try:
        prefix, name = _split(path)
        if not (0 <= size <= _MAX_OCTAL_11 and 0 <= mtime <= _MAX_OCTAL_11):
            return False
        expected_size, expected_mtime = _octal(size, 12), _octal(mtime, 12)
    except ValueError:
        return False
    name_b, prefix_b = name.encode("ascii"), prefix.encode("ascii")
    if (
        block[0:100] != name_b + bytes(100 - len(name_b))
        or block[345:500] != prefix_b + bytes(155 - len(prefix_b))
        or block[124:136] != expected_size
        or block[136:148] != expected_mtime
        or any(block[a:b] != want for a, b, want in _FIXED_FIELDS)
    ):
        return False
    # The checksum field in tarfile's form, over the header with that field as spaces.
    return block[148:156] == b"%06o\x00 " % checksum


def parse_header(
    block: bytes, offset: int, *, valid_path: Callable[[str], bool] | None = None
) -> Header:
    """Parse and validate one non-zero 512-byte header found at ``offset``.

    Checks, in order: checksum; POSIX USTAR magic; name readable; member type is a
    regular file; name valid per :func:`layout.member_path_problem` (unless
    ``valid_path`` says it was already checked: a path the signed manifest lists); octal
    size and time; the header is byte-for-byte the canonical encoding.

    Raises:
        BundleFormatError: naming the member (when its name is readable) and the check.
    """
    if len(block) != BLOCK:
        raise BundleFormatError(f"tar header at offset {offset} is truncated")
    stored = block[148:156]
    computed = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    stored_digits = stored.rstrip(b"\x00 ")
    if not stored_digits or stored_digits.strip(b"01234567") or int(stored_digits, 8) != computed:
        raise BundleFormatError(
            f"tar header at offset {offset}: bad checksum (corrupt archive, or not a tar)"
        )
    if block[257:265] != _MAGIC:
        raise BundleFormatError(
            f"tar header at offset {offset}: not a POSIX ustar header (magic {block[257:265]!r})"
        )
    name = _field_text(block[0:100], "name", offset)
    prefix = _field_text(block[345:500], "prefix", offset)
    path = f"{prefix}/{name}" if prefix else name
    typeflag = block[156:157]
    if typeflag != b"0":
        kind = _TYPE_NAMES.get(typeflag, f"of unknown type {typeflag!r}")
        raise BundleFormatError(f"member {path!r} is {kind}; only regular files are allowed")
    if valid_path is None or not valid_path(path):
        problem = layout.member_path_problem(path)
        if problem is not None:
            raise BundleFormatError(f"member name {path!r} refused: {problem}")
    size = _field_octal(block[124:136], "size", path)
    mtime = _field_octal(block[136:148], "mtime", path)
    if not _is_canonical(block, path, size, mtime, computed):
        raise BundleFormatError(
            f"member {path!r}: tar header is not the canonical format-v1 encoding "
            "(mode 0644, owner 0:0, no user/group names, no link name)"
        )
    return Header(path=path, size=size, mtime=mtime)
