"""Follow the block structure of one zstd frame (RFC 8878) as its bytes stream past.

``zstandard``'s streaming reader returns end-of-data on a truncated frame without an
error, and goes on decoding into whatever follows a frame. The reader must refuse
both, so :class:`FrameWalker` watches the compressed bytes on their way to the
decompressor: it knows where the frame ends (last block + 4-byte checksum), so the
decompressor is never handed a byte past it, and a file that stops early or carries
trailing bytes is detected. It only skips over block contents, so it costs a few
operations per 128 KiB block.
"""

from __future__ import annotations

from typing import Final

from dhi_offline.errors import BundleFormatError

MAX_BLOCK_SIZE: Final = 128 * 1024
_RAW, _RLE, _COMPRESSED, _RESERVED = 0, 1, 2, 3
_CHECKSUM_SIZE = 4


class FrameWalker:
    """Tracks one zstd frame; feed it every compressed byte in order.

    Args:
        header_size: length of the frame header (magic included).
        has_checksum: whether the frame ends with a 4-byte content checksum.
    """

    def __init__(self, *, header_size: int, has_checksum: bool) -> None:
        self._has_checksum = has_checksum
        self._skip = header_size  # bytes to pass over before the next block header
        self._block_header = bytearray()
        self._last_seen = False  # the block being skipped is the last one
        self._checksum_pending = False
        self.done = False
        """The whole frame, checksum included, has gone past."""
        self.trailing = False
        """Bytes followed the end of the frame."""
        self.consumed = 0

    def feed(self, data: bytes) -> int:
        """Account for the next compressed bytes; return how many belong to the frame.

        Bytes past the end of the frame are not counted as consumed and set
        :attr:`trailing`.

        Raises:
            BundleFormatError: a reserved block type or an oversized block.
        """
        view = memoryview(data)
        i, n = 0, len(view)
        while i < n and not self.done:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                if self._skip == 0:
                    self._after_skip()
                continue
            take = min(3 - len(self._block_header), n - i)
            self._block_header += view[i : i + take]
            i += take
            if len(self._block_header) == 3:
                self._start_block(int.from_bytes(self._block_header, "little"))
                self._block_header.clear()
        if i < n:
            self.trailing = True
        self.consumed += i
        return i

    def _after_skip(self) -> None:
        if self._checksum_pending:
            self._checksum_pending = False
            self.done = True
        elif self._last_seen:
            self._end_of_blocks()

    def _end_of_blocks(self) -> None:
        self._last_seen = False
        if self._has_checksum:
            self._checksum_pending = True
            self._skip = _CHECKSUM_SIZE
        else:
            self.done = True

    def _start_block(self, header: int) -> None:
        last = bool(header & 1)
        kind = (header >> 1) & 3
        size = header >> 3
        if kind == _RESERVED:
            raise BundleFormatError("compressed stream is corrupt: reserved zstd block type")
        if size > MAX_BLOCK_SIZE:
            raise BundleFormatError("compressed stream is corrupt: zstd block over 128 KiB")
        content = 1 if kind == _RLE else size
        self._last_seen = last
        self._skip = content
        if content == 0:
            self._after_skip()
